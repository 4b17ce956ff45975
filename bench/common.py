"""Scratch resources for benchmarks: a throw-away database and Redis prefix, child processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from redis.asyncio import Redis

__all__ = ["free_port", "scratch_database", "scratch_redis_prefix", "spawn", "stop", "wait_until"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def scratch_database(server_url: str, stem: str = "bench") -> AsyncIterator[str]:
    """A new database on the server of ``server_url``; dropped afterwards."""
    name = f"atende_{stem}_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield urlunsplit(urlsplit(server_url)._replace(path="/" + name))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@contextlib.asynccontextmanager
async def scratch_redis_prefix(redis_url: str, stem: str = "bench") -> AsyncIterator[str]:
    prefix = f"atende_{stem}_{uuid.uuid4().hex[:8]}"
    try:
        yield prefix
    finally:
        client = Redis.from_url(redis_url)
        try:
            async for key in client.scan_iter(match=f"{prefix}*", count=1000):
                await client.delete(key)
        finally:
            await client.aclose()


def spawn(verb: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``atende VERB`` in its own process group, quiet unless it fails."""
    return subprocess.Popen([sys.executable, "-m", "saas.cli", *verb], env={**os.environ, **env},
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True)  # fmt: skip


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


async def wait_until(check: Callable[[], Awaitable[Any]], within_s: float, what: str) -> Any:
    """Poll ``check`` until it returns something truthy; a benchmark that cannot finish says what it missed."""
    deadline = time.monotonic() + within_s
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"benchmark timed out waiting for {what}")
        await asyncio.sleep(0.1)
