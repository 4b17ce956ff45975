"""The one Piccolo engine and its connection pool.

The engine is created unconfigured at import (Piccolo binds tables to an engine when their classes are
defined) and is pointed at a database only by :func:`start` — settings are never read at import time.

Every pooled connection starts with ``search_path`` set to :data:`NO_TENANT_SCHEMA`, a schema that
never exists, so an unqualified (tenant) table name used outside :func:`tenants.context.tenant_context`
fails with "relation does not exist" instead of reaching some tenant's data. Public tables are always
schema-qualified. asyncpg's pool runs ``RESET ALL`` when a connection is released, and the tenant
context only ever uses ``SET LOCAL``, so a pooled connection never carries a tenant's path onward.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from piccolo.engine.postgres import PostgresEngine

__all__ = ["DB", "NO_TENANT_SCHEMA", "connect", "pool", "start", "stop"]

NO_TENANT_SCHEMA = "atende_no_tenant"

DB = PostgresEngine(config={}, extensions=())


def connection_config(dsn: str) -> dict[str, Any]:
    """asyncpg keyword arguments for a connection to ``dsn`` that sees no tenant by default."""
    return {
        "dsn": dsn,
        "server_settings": {"search_path": NO_TENANT_SCHEMA, "application_name": "atende"},
        "statement_cache_size": 256,
    }


async def start(dsn: str, *, min_size: int = 1, max_size: int = 10) -> None:
    """Point the engine at ``dsn`` and open its pool (closing any earlier pool first)."""
    if DB.pool is not None:
        await stop()
    DB.config = connection_config(dsn)
    DB.pool = await asyncpg.create_pool(min_size=min_size, max_size=max_size, **DB.config)


def pool() -> asyncpg.Pool:
    """The open pool; raises if :func:`start` has not run."""
    if DB.pool is None:
        raise RuntimeError("the database pool is not started (tenants.db.start)")
    return DB.pool


async def stop() -> None:
    """Close the pool if one is open."""
    pool, DB.pool = DB.pool, None
    if pool is not None:
        await pool.close()


async def connect(dsn: str) -> asyncpg.Connection:
    """A single connection outside the pool (CLI, admin tasks), configured like pooled ones."""
    return await asyncpg.connect(**connection_config(dsn))
