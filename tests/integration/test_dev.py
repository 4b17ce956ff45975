"""`atende dev` on a machine with nothing configured: embedded PostgreSQL and Redis, demo tenant, clean stop."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _processes_using(path: Path) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(path) in cmdline:
            found.append(f"{pid}: {cmdline}")
    return found


def _run_dev_once(data_dir: Path, port: int) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "ATENDE_DEMO_PASSWORD")}
    env.update({"ATENDE_DATA_DIR": str(data_dir), "ATENDE_LOG_FORMAT": "console"})
    process = subprocess.Popen(
        [sys.executable, "-m", "saas.cli", "dev", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.communicate()[0]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "atende dev did not become ready in 60 s"
            time.sleep(0.2)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).json()
        assert ready["checks"] == {"postgres": "ok", "redis": "ok"}
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    return output


@pytest.mark.slow
def test_dev_runs_on_embedded_services_and_stops_cleanly(tmp_path: Path) -> None:
    data_dir = tmp_path / "atende-data"
    first = _run_dev_once(data_dir, _free_port())
    password = re.search(r"admin: admin@demo\.local\s+password: (\S+)", first)
    assert password, first
    assert "demo tenant created" in first
    assert not _processes_using(data_dir), "something outlived atende dev"

    second = _run_dev_once(data_dir, _free_port())
    assert "demo tenant ready" in second  # the data was reused
    assert f"password: {password.group(1)}" in second
    assert not _processes_using(data_dir)
