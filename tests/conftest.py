"""Real PostgreSQL and Redis for every test: the URLs in the environment, else the services on their
default local ports, else embedded ones. Each run gets its own database and Redis key prefix and removes
them at the end."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from litestar.types import ASGIApp
from redis.asyncio import Redis

from saas.embedded import postgres_server, redis_server
from saas.settings import Settings
from tenants import db
from tenants.migrations import migrate_public
from tenants.provisioning import TenantInfo, create_tenant

PASSWORD = "correct horse"  # every test tenant's admin (admin@<slug>.example) and the agents tests add


def with_database(url: str, database: str) -> str:
    """``url`` pointed at another database (works for TCP and Unix-socket URLs)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


@pytest.fixture(scope="session")
def scratch_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("atende")


@pytest.fixture(scope="session")
def pg_server_url(scratch_dir: Path) -> Iterator[str]:
    """A URL to a maintenance database on a real PostgreSQL server."""
    with postgres_server(os.environ.get("DATABASE_URL"), scratch_dir / "pg") as url:
        yield url


@pytest.fixture(scope="session")
def create_database(pg_server_url: str) -> Iterator[Callable[[], Awaitable[str]]]:
    """Factory of fresh databases on the test server; all are dropped at the end of the run."""
    created: list[str] = []

    async def make() -> str:
        name = f"atende_test_{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(pg_server_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        created.append(name)
        return with_database(pg_server_url, name)

    yield make

    async def drop_all() -> None:
        conn = await asyncpg.connect(pg_server_url)
        try:
            for name in created:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop_all())


@pytest.fixture(scope="session")
async def database_url(create_database: Callable[[], Awaitable[str]]) -> AsyncIterator[str]:
    """The run's main database, with the public schema migrated."""
    url = await create_database()
    await db.start(url)
    await migrate_public()
    yield url
    await db.stop()


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[str]:
    """The main database with the shared pool open (tests may restart the pool; it is reopened here)."""
    if db.DB.pool is None or db.DB.config.get("dsn") != database_url:
        await db.start(database_url)
    yield database_url
    if db.DB.pool is None or db.DB.config.get("dsn") != database_url:
        await db.start(database_url)


@pytest.fixture(scope="session")
def redis_url(scratch_dir: Path) -> Iterator[str]:
    with redis_server(os.environ.get("REDIS_URL"), scratch_dir / "redis") as url:
        yield url


@pytest.fixture(scope="session")
def redis_prefix(redis_url: str) -> Iterator[str]:
    prefix = f"atende_test_{uuid.uuid4().hex[:12]}"
    yield prefix

    async def cleanup() -> None:
        client = Redis.from_url(redis_url)
        try:
            async for key in client.scan_iter(match=f"{prefix}*", count=500):
                await client.delete(key)
        finally:
            await client.aclose()

    asyncio.run(cleanup())


@pytest.fixture
def settings(database: str, redis_url: str, redis_prefix: str, tmp_path: Path) -> Settings:
    return Settings(
        env="test",
        database_url=database,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        data_dir=tmp_path,
        secret_key="test-secret-key-" + "x" * 32,
        master_key="test-master-key-" + "m" * 32,
    )


@pytest.fixture
def unique_slug() -> Callable[[str], str]:
    def make(stem: str = "t") -> str:
        return f"{stem}_{uuid.uuid4().hex[:10]}"

    return make


@pytest.fixture
def make_tenant(database: str, unique_slug: Callable[[str], str]) -> Callable[..., Awaitable[TenantInfo]]:
    async def make(stem: str = "acme", **kwargs: str) -> TenantInfo:
        slug = unique_slug(stem)
        options = {"name": f"Tenant {slug}", "admin_email": f"admin@{slug}.example", "admin_password": PASSWORD,
                   **kwargs}  # fmt: skip
        return await create_tenant(slug, **options)

    return make


@contextlib.asynccontextmanager
async def admin_connection(url: str) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection with the default search path (for assertions about the database itself)."""
    conn = await asyncpg.connect(url)
    try:
        yield conn
    finally:
        await conn.close()


async def login(client: httpx.AsyncClient, tenant_slug: str, email: str | None = None,
                password: str = PASSWORD) -> dict[str, str]:  # fmt: skip
    """Log in through the API (the tenant's admin unless ``email`` is given); the bearer headers of the session."""
    response = await client.post("/api/v1/auth/login", json={"tenant": tenant_slug, "password": password,
                                                             "email": email or f"admin@{tenant_slug}.example"})  # fmt: skip
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@contextlib.asynccontextmanager
async def app_client(app: ASGIApp) -> AsyncIterator[httpx.AsyncClient]:
    """Run ``app``'s lifespan and an HTTP client against it, all on the test's own event loop.

    (Litestar's test client runs the app on a thread of its own, which would put the shared asyncpg
    pool on two loops.)"""
    to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    lifespan: asyncio.Task[None] = asyncio.create_task(app(scope, to_app.get, from_app.put))  # type: ignore[arg-type]
    await to_app.put({"type": "lifespan.startup"})
    started = await from_app.get()
    if started["type"] != "lifespan.startup.complete":
        await lifespan
        raise RuntimeError(f"app failed to start: {started}")
    try:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client
    finally:
        await to_app.put({"type": "lifespan.shutdown"})
        await from_app.get()
        await lifespan


@contextlib.asynccontextmanager
async def live_server(app: ASGIApp) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port, in the test's event loop; yields the base URL."""
    import socket

    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started:
                break
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def xrange(redis: Redis, key: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """``XRANGE key - +`` with the types a test wants (redis-py's stubs are wider)."""
    entries: Any = await redis.xrange(key)
    return list(entries)


async def eventually(check: Callable[[], Awaitable[Any]], within_s: float = 20.0, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy (returned), or fail saying what never happened."""
    import time

    deadline = time.monotonic() + within_s
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()
