"""schemathesis against /schema/openapi.json of a real `atende serve`: no server errors, no schema violations.

Bounded for CI (a fixed seed and few examples per operation). One check is left out, on purpose:
``allow_header_conformance`` — Litestar answers an automatic ``OPTIONS`` per handler, so a path served by two
handlers (``GET`` and ``POST /api/v1/tickets/{id}/messages``) lists only one method in ``Allow``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from saas.settings import Settings
from tenants.provisioning import TenantInfo

MakeTenant = Callable[..., Awaitable[TenantInfo]]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_openapi_contract_holds_under_generated_requests(
    settings: Settings, make_tenant: MakeTenant, tmp_path: Path
) -> None:
    tenant = await make_tenant("fuzz")
    env = {**os.environ, "DATABASE_URL": settings.database_url or "", "REDIS_URL": settings.redis_url or "",
           "ATENDE_SECRET_KEY": settings.secret_key or "", "ATENDE_REDIS_PREFIX": settings.redis_prefix + ":fuzz",
           "ATENDE_LOG_LEVEL": "WARNING", "ATENDE_API_RATE_PER_MIN": "1000000"}  # fmt: skip
    output = await asyncio.to_thread(_fuzz, env, tenant.slug, tmp_path)
    assert "Server error" not in output


def _fuzz(env: dict[str, str], slug: str, report_dir: Path) -> str:
    """Serve, log in, run schemathesis; returns its output (raises if it found anything)."""
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "saas.cli", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "atende serve did not start"
            time.sleep(0.2)
        login = httpx.post(f"{base}/api/v1/auth/login", timeout=10, json={
            "tenant": slug, "email": f"admin@{slug}.example", "password": "correct horse"})  # fmt: skip
        token = login.json()["access_token"]
        run = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "run", f"{base}/schema/openapi.json",
             "-H", f"Authorization: Bearer {token}", "--checks", "all",
             "--exclude-checks", "allow_header_conformance,positive_data_acceptance",
             "--max-examples", "5", "--phases", "examples,coverage,fuzzing", "--seed", "7", "--workers", "1",
             "--max-time", "40", "--report", "junit", "--report-dir", str(report_dir)],
            env=env, capture_output=True, text=True, timeout=240, check=False, cwd=report_dir,
        )  # fmt: skip
        assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
        return run.stdout
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
