"""`atende dev` on a machine with nothing configured: embedded PostgreSQL and Redis, demo tenant, clean stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
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


def _run_dev_once(data_dir: Path, port: int, exercise: Callable[[str, dict[str, str]], None] | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "ATENDE_DEMO_PASSWORD")}
    env.update({"ATENDE_DATA_DIR": str(data_dir), "ATENDE_LOG_FORMAT": "console",
                "ATENDE_SIMULATOR_URL": f"http://127.0.0.1:{_free_port()}", "ATENDE_DEMO_PASSWORD": "demo password 1"})  # fmt: skip
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
        if exercise is not None:
            exercise(f"http://127.0.0.1:{port}", env)
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    return output


def _phones_talk_to_the_demo_inbox(base: str, env: dict[str, str]) -> None:
    """The README's walk-through: phones write via `atende sim send`, the demo's menu answers them and routes the
    choice to a queue, the agent sees tickets and replies, the phone receives the reply (`atende sim inbox`),
    closing sends the farewell and the survey, and the phone's rating is stored."""

    def sim(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "saas.cli", "sim", *args], env=env, capture_output=True,
                              text=True, timeout=60, check=True)  # fmt: skip
        return done.stdout

    login = httpx.post(f"{base}/api/v1/auth/login", json={"tenant": "demo", "email": "admin@demo.local",
                                                          "password": "demo password 1"}, timeout=10)  # fmt: skip
    auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
    deadline = time.monotonic() + 60
    while "CONNECTED" not in httpx.get(f"{base}/metrics", timeout=5).text:  # the demo session paired itself
        assert time.monotonic() < deadline, "the demo connection never connected"
        time.sleep(0.3)
    for phone in range(3):
        sim("send", "--to", "+5511900000000", "--from", f"+55119777700{phone:02d}", "--text", f"oi {phone}",
            "--count", "2")  # fmt: skip
    while True:
        tickets = httpx.get(f"{base}/api/v1/tickets", headers=auth, timeout=10).json()["items"]
        if (
            len(tickets) == 3
            and all(t["unread_count"] == 2 for t in tickets)
            and all("1 - Vendas" in sim("inbox", "--phone", t["contact"]["phone"]) for t in tickets)
        ):
            break
        assert time.monotonic() < deadline, f"tickets never arrived: {tickets}"
        time.sleep(0.2)
    ticket = tickets[0]
    phone = ticket["contact"]["phone"]
    assert "1 - Vendas" in sim("inbox", "--phone", phone)  # the chatbot menu answered the first message
    sim("send", "--to", "+5511900000000", "--from", phone, "--text", "2")
    while httpx.get(f"{base}/api/v1/tickets/{ticket['id']}", headers=auth, timeout=10).json()["queue_id"] is None:
        assert time.monotonic() < deadline, "the menu choice never routed the ticket"
        time.sleep(0.2)
    reply = httpx.post(
        f"{base}/api/v1/tickets/{ticket['id']}/messages", headers=auth, json={"text": "Olá!"}, timeout=10
    )
    assert reply.status_code == 201
    while '"Olá!"' not in (inbox := sim("inbox", "--phone", ticket["contact"]["phone"])):
        assert time.monotonic() < deadline, "the reply never reached the phone"
        time.sleep(0.2)
    assert '"from":"+5511900000000"' in inbox
    assert "fila de Suporte" in inbox  # the queue's greeting
    closed = httpx.post(f"{base}/api/v1/tickets/{ticket['id']}/close", headers=auth, json={}, timeout=10)
    assert closed.status_code == 200, closed.text
    while "nota de 1 a 5" not in sim("inbox", "--phone", phone):
        assert time.monotonic() < deadline, "the survey never reached the phone"
        time.sleep(0.2)
    sim("send", "--to", "+5511900000000", "--from", phone, "--text", "5")
    while httpx.get(f"{base}/api/v1/dashboard", headers=auth, timeout=10).json()["satisfaction"]["answered"] != 1:
        assert time.monotonic() < deadline, "the rating was never stored"
        time.sleep(0.2)


@pytest.mark.slow
def test_dev_runs_on_embedded_services_and_stops_cleanly(tmp_path: Path) -> None:
    data_dir = tmp_path / "atende-data"
    first = _run_dev_once(data_dir, _free_port(), _phones_talk_to_the_demo_inbox)
    assert "password: demo password 1" in first
    assert "demo tenant created" in first
    assert not _processes_using(data_dir), "something outlived atende dev"

    second = _run_dev_once(data_dir, _free_port())
    assert "demo tenant ready" in second  # the data was reused
    assert not _processes_using(data_dir)
