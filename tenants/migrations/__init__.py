"""Migrations for the public schema and for every tenant schema, each schema keeping its own history.

A migration is a module ``mNNNN_name.py`` in ``public/`` or ``tenant/`` with a ``DESCRIPTION`` string
and ``async def forwards(conn)``; it runs inside one transaction whose ``search_path`` is the target
schema, so tenant migrations use unqualified names. Migrations are frozen once released: they hold
their own SQL instead of deriving it from the current table classes.

History lives in ``atende_migrations`` inside each schema. (We do not use Piccolo's migration runner:
its ``migration`` table check matches a table of that name in *any* schema, it has no notion of running
one app across thousands of schemas, and its per-run overhead would blow the 1,000-tenant budget.)

``migrate_all`` runs public first, then every tenant in parallel batches. Each schema migrates in its
own transaction under an advisory lock, so a crash or a failing tenant leaves the others done and a
re-run resumes where it stopped; an up-to-date schema costs one short transaction.
"""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Protocol, cast

import asyncpg

from tenants.context import schema_transaction
from tenants.db import pool

__all__ = [
    "Migration",
    "MigrationReport",
    "SchemaResult",
    "apply_pending",
    "migrate_all",
    "migrate_public",
    "migrate_tenant",
    "public_migrations",
    "tenant_migrations",
]

_HISTORY_DDL = """
CREATE TABLE IF NOT EXISTS atende_migrations (
    id          text PRIMARY KEY,
    description text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


class _MigrationModule(Protocol):
    DESCRIPTION: str

    async def forwards(self, conn: asyncpg.Connection) -> None: ...


@dataclass(frozen=True, slots=True)
class Migration:
    id: str
    description: str
    forwards: Callable[[asyncpg.Connection], Awaitable[None]]


@dataclass(slots=True)
class SchemaResult:
    schema: str
    applied: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass(slots=True)
class MigrationReport:
    public: SchemaResult
    tenants: list[SchemaResult]
    seconds: float

    @property
    def failed(self) -> list[SchemaResult]:
        return [r for r in [self.public, *self.tenants] if r.error is not None]

    @property
    def applied_count(self) -> int:
        return sum(len(r.applied) for r in [self.public, *self.tenants])


def _load(package: str) -> tuple[Migration, ...]:
    pkg = importlib.import_module(package)
    found = []
    for info in pkgutil.iter_modules(pkg.__path__):
        if not info.name.startswith("m"):
            continue
        module = cast(_MigrationModule, importlib.import_module(f"{package}.{info.name}"))
        found.append(Migration(id=info.name[1:], description=module.DESCRIPTION, forwards=module.forwards))
    found.sort(key=lambda m: m.id)
    return tuple(found)


@cache
def public_migrations() -> tuple[Migration, ...]:
    return _load("tenants.migrations.public")


@cache
def tenant_migrations() -> tuple[Migration, ...]:
    return _load("tenants.migrations.tenant")


async def apply_pending(conn: asyncpg.Connection, schema: str, migrations: Sequence[Migration]) -> list[str]:
    """Apply what ``schema`` lacks, in the caller's transaction (whose path is ``schema``)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('atende.migrate.' || $1))", schema)
    await conn.execute(_HISTORY_DDL)
    done = {r["id"] for r in await conn.fetch("SELECT id FROM atende_migrations")}
    applied = []
    for migration in migrations:
        if migration.id in done:
            continue
        await migration.forwards(conn)
        await conn.execute(
            "INSERT INTO atende_migrations (id, description) VALUES ($1, $2)",
            migration.id,
            migration.description,
        )
        applied.append(migration.id)
    return applied


async def migrate_public() -> SchemaResult:
    """Bring the public schema up to date."""
    async with schema_transaction("public") as session:
        return SchemaResult("public", await apply_pending(session.conn, "public", public_migrations()))


async def migrate_tenant(schema: str) -> SchemaResult:
    """Bring one tenant schema up to date; errors are reported in the result, not raised."""
    try:
        async with schema_transaction(schema) as session:
            applied = await apply_pending(session.conn, schema, tenant_migrations())
    except Exception as exc:  # one broken tenant must not stop the others
        return SchemaResult(schema, error=f"{type(exc).__name__}: {exc}")
    return SchemaResult(schema, applied)


async def migrate_all(
    *, concurrency: int = 8, progress: Callable[[int, int, SchemaResult], None] | None = None
) -> MigrationReport:
    """Public first, then every tenant schema (whatever its status), ``concurrency`` at a time."""
    started = time.perf_counter()
    public = await migrate_public()
    rows = await pool().fetch("SELECT schema_name FROM public.tenants ORDER BY id")
    schemas = [r["schema_name"] for r in rows]
    total = len(schemas)
    results: list[SchemaResult] = []
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(schema: str) -> None:
        async with gate:
            result = await migrate_tenant(schema)
        results.append(result)
        if progress is not None:
            progress(len(results), total, result)

    async with asyncio.TaskGroup() as group:
        for schema in schemas:
            group.create_task(one(schema))
    results.sort(key=lambda r: r.schema)
    return MigrationReport(public, results, time.perf_counter() - started)
