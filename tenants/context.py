"""The one place that switches a transaction into a tenant's schema.

Guarantees:

* A tenant context is exactly one database transaction; the schema is set with ``set_config(...,
  is_local => true)`` (``SET LOCAL``), so it ends with the transaction and never leaks to the next user
  of a pooled connection.
* The tenant is looked up and the path switched in one round trip, and only an *active* tenant gets a
  context: a suspended or unknown tenant raises before any tenant query can run.
* Contexts do not nest. Piccolo would silently reuse an outer transaction, which here would mean
  re-pointing another tenant's transaction, so a nested context is refused.
* Schema names are validated (``tenants.naming``) before they are used as identifiers.

Nothing else in Atende touches ``search_path``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import asyncpg
from piccolo.engine.postgres import PostgresTransaction

from tenants.db import DB
from tenants.errors import NoTenantContext, TenantNotFound, TenantSuspended
from tenants.naming import is_tenant_schema, quote_ident

__all__ = [
    "SchemaSession",
    "TenantRef",
    "TenantSession",
    "current_tenant",
    "require_tenant",
    "schema_transaction",
    "tenant_context",
]


@dataclass(frozen=True, slots=True)
class TenantRef:
    """Who the current transaction belongs to."""

    id: int
    slug: str
    schema: str


@dataclass(frozen=True, slots=True)
class TenantSession:
    """An open tenant transaction: ``conn`` is its asyncpg connection (Piccolo queries use it too)."""

    tenant: TenantRef
    conn: asyncpg.Connection


@dataclass(frozen=True, slots=True)
class SchemaSession:
    """An open transaction switched into ``schema`` for migrations and provisioning."""

    schema: str
    conn: asyncpg.Connection


_current: ContextVar[TenantRef | None] = ContextVar("atende_current_tenant", default=None)

# Look the tenant up and, only if it is active, switch this transaction's path to its schema.
_SWITCH_BY = """
SELECT id, slug, schema_name, status,
       CASE WHEN status = 'active' AND schema_name ~ '^t_[a-z][a-z0-9_]+$'
            THEN set_config('search_path', quote_ident(schema_name), true) END AS switched
FROM public.tenants WHERE {column} = $1
"""
_SWITCH_BY_SLUG = _SWITCH_BY.format(column="slug")
_SWITCH_BY_ID = _SWITCH_BY.format(column="id")


def current_tenant() -> TenantRef | None:
    """The tenant of the running context, or None outside one."""
    return _current.get()


def require_tenant() -> TenantRef:
    """The tenant of the running context; raises ``NoTenantContext`` outside one."""
    tenant = _current.get()
    if tenant is None:
        raise NoTenantContext("tenant data accessed outside a tenant context")
    return tenant


@asynccontextmanager
async def _transaction() -> AsyncIterator[asyncpg.Connection]:
    if _current.get() is not None or DB.current_transaction.get() is not None:
        raise NoTenantContext("tenant contexts do not nest; finish the open transaction first")
    txn: PostgresTransaction
    async with DB.transaction(allow_nested=False) as txn:
        yield txn.connection


@asynccontextmanager
async def tenant_context(slug: str | None = None, *, tenant_id: int | None = None) -> AsyncIterator[TenantSession]:
    """Open one transaction in an active tenant's schema, by ``slug`` or ``tenant_id``."""
    if (slug is None) == (tenant_id is None):
        raise TypeError("pass exactly one of slug or tenant_id")
    async with _transaction() as conn:
        if slug is not None:
            row = await conn.fetchrow(_SWITCH_BY_SLUG, slug)
        else:
            row = await conn.fetchrow(_SWITCH_BY_ID, tenant_id)
        key = slug if slug is not None else tenant_id
        if row is None:
            raise TenantNotFound(f"tenant {key!r} does not exist", tenant=key)
        if row["status"] != "active":
            raise TenantSuspended(f"tenant {row['slug']!r} is {row['status']}", tenant=row["slug"])
        if row["switched"] is None or not is_tenant_schema(row["schema_name"]):
            raise NoTenantContext(f"tenant {row['slug']!r} has an invalid schema name")
        ref = TenantRef(id=row["id"], slug=row["slug"], schema=row["schema_name"])
        token = _current.set(ref)
        try:
            yield TenantSession(ref, conn)
        finally:
            _current.reset(token)


@asynccontextmanager
async def schema_transaction(schema: str, *, create: bool = False) -> AsyncIterator[SchemaSession]:
    """Open one transaction switched into ``schema`` whatever the tenant's status (migrations, provisioning).

    With ``create=True`` the schema is created in the same transaction, so a failure later in the
    transaction leaves no schema behind.
    """
    ident = quote_ident(schema)  # validates
    async with _transaction() as conn:
        if create:
            await conn.execute(f"CREATE SCHEMA {ident}")
        await conn.execute("SELECT set_config('search_path', $1, true)", ident)
        yield SchemaSession(schema, conn)
