"""Scratch resources for benchmarks: a throw-away database and Redis prefix, child processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from redis.asyncio import Redis

from saas.embedded import postgres_server, redis_server
from saas.settings import Settings

__all__ = ["free_port", "run_in_scratch", "scratch_database", "scratch_redis_prefix", "spawn", "stop", "wait_until"]


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


Measure = Callable[[str, str, str], Awaitable[dict[str, Any]]]


def run_in_scratch(settings: Settings, stem: str, measure: Measure, *, with_ray: bool = False) -> dict[str, Any]:
    """Run ``measure(database_url, redis_url, prefix)`` against a scratch database and Redis prefix (on the
    configured servers, else local defaults, else embedded ones), optionally with a local Ray; clean up after."""

    async def main(server_url: str, redis_url: str) -> dict[str, Any]:
        async with scratch_database(server_url, stem) as database_url, scratch_redis_prefix(redis_url, stem) as prefix:
            return await measure(database_url, redis_url, prefix)

    with (
        tempfile.TemporaryDirectory(prefix="atende-bench-") as scratch,
        postgres_server(settings.database_url, Path(scratch) / "pg") as server_url,
        redis_server(settings.redis_url, Path(scratch) / "redis") as redis_url,
    ):
        started_ray = False
        if with_ray:
            from supervisor.cluster import connect_ray

            started_ray = connect_ray(settings.ray_address)
        try:
            return asyncio.run(main(server_url, redis_url))
        finally:
            if started_ray:
                import ray

                ray.shutdown()
