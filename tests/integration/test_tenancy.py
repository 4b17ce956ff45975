"""The tenancy guarantees: provisioning, isolation, the one schema switch and its failure modes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from tenants import db, provisioning
from tenants.context import current_tenant, require_tenant, schema_transaction, tenant_context
from tenants.errors import (
    InvalidInput,
    InvalidSlug,
    NoTenantContext,
    PlanNotFound,
    TenantExists,
    TenantNotFound,
    TenantSuspended,
)
from tenants.migrations import Migration, tenant_migrations
from tenants.provisioning import TenantInfo, create_tenant, list_tenants, set_tenant_status
from tests.conftest import admin_connection

MakeTenant = Callable[..., Awaitable[TenantInfo]]


async def _schema_exists(url: str, schema: str) -> bool:
    async with admin_connection(url) as conn:
        return bool(await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema))


async def _tenant_row_exists(url: str, slug: str) -> bool:
    async with admin_connection(url) as conn:
        return bool(await conn.fetchval("SELECT 1 FROM public.tenants WHERE slug = $1", slug))


async def test_provisioning_creates_schema_tables_history_and_admin(database: str, make_tenant: MakeTenant) -> None:
    tenant = await make_tenant(plan="pro")
    assert tenant.schema == f"t_{tenant.slug}" and tenant.plan == "pro" and tenant.status == "active"
    async with admin_connection(database) as conn:
        tables = {
            r["table_name"]
            for r in await conn.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", tenant.schema
            )
        }
        assert {"users", "audit_log", "atende_migrations"} <= tables
        history = await conn.fetch(f'SELECT id FROM "{tenant.schema}".atende_migrations ORDER BY id')
        assert [r["id"] for r in history] == [m.id for m in tenant_migrations()]
        admin = await conn.fetchrow(f'SELECT email, role, password_hash FROM "{tenant.schema}".users')
    assert admin is not None
    assert admin["email"] == f"admin@{tenant.slug}.example" and admin["role"] == "admin"
    assert admin["password_hash"].startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert tenant.slug in {t.slug for t in await list_tenants()}


async def test_two_tenants_rows_never_mix(make_tenant: MakeTenant) -> None:
    a, b = await make_tenant("alpha"), await make_tenant("beta")
    async with tenant_context(a.slug) as session:
        await session.conn.execute("INSERT INTO users (email, role) VALUES ('only-a@x.io', 'agent')")
    async with tenant_context(b.slug) as session:
        await session.conn.execute("INSERT INTO users (email, role) VALUES ('only-b@x.io', 'agent')")
    async with tenant_context(a.slug) as session:
        seen_a = {r["email"] for r in await session.conn.fetch("SELECT email FROM users")}
        assert session.tenant == current_tenant() == require_tenant()
    async with tenant_context(tenant_id=b.id) as session:
        seen_b = {r["email"] for r in await session.conn.fetch("SELECT email FROM users")}
        assert session.tenant.slug == b.slug
    assert seen_a == {f"admin@{a.slug}.example", "only-a@x.io"}
    assert seen_b == {f"admin@{b.slug}.example", "only-b@x.io"}


async def test_concurrent_contexts_stay_in_their_own_tenant(make_tenant: MakeTenant) -> None:
    tenants = [await make_tenant(f"conc{i}") for i in range(4)]

    async def whoami(slug: str) -> tuple[str, str]:
        async with tenant_context(slug) as session:
            await asyncio.sleep(0.01)
            return slug, await session.conn.fetchval("SELECT email FROM users")

    for slug, email in await asyncio.gather(*(whoami(t.slug) for _ in range(5) for t in tenants)):
        assert email == f"admin@{slug}.example"


async def test_no_tenant_context_is_an_error(database: str, make_tenant: MakeTenant) -> None:
    await make_tenant()
    assert current_tenant() is None
    with pytest.raises(NoTenantContext):
        require_tenant()
    # Tenant tables are unreachable from a pooled connection outside a context ...
    with pytest.raises(asyncpg.UndefinedTableError):
        await db.pool().fetch("SELECT * FROM users")
    # ... and from a fresh connection made with the same configuration.
    conn = await db.connect(database)
    try:
        with pytest.raises(asyncpg.UndefinedTableError):
            await conn.fetch("SELECT * FROM users")
    finally:
        await conn.close()


async def test_contexts_do_not_nest(make_tenant: MakeTenant) -> None:
    a, b = await make_tenant("outer"), await make_tenant("inner")
    async with tenant_context(a.slug):
        with pytest.raises(NoTenantContext, match="do not nest"):
            async with tenant_context(b.slug):
                pass


async def test_pooled_connection_never_carries_a_tenant_path(database: str, make_tenant: MakeTenant) -> None:
    a, b = await make_tenant("poola"), await make_tenant("poolb")
    await db.start(database, min_size=1, max_size=1)  # every acquire below reuses the one connection
    try:
        async with tenant_context(a.slug) as session:
            backend = await session.conn.fetchval("SELECT pg_backend_pid()")
            assert await session.conn.fetchval("SHOW search_path") == a.schema
        assert await db.pool().fetchval("SELECT pg_backend_pid()") == backend
        assert await db.pool().fetchval("SHOW search_path") == db.NO_TENANT_SCHEMA
        with pytest.raises(asyncpg.UndefinedTableError):
            await db.pool().fetch("SELECT * FROM users")

        # An error inside a context rolls back and resets the path too.
        with pytest.raises(ZeroDivisionError):  # noqa: PT012 - the insert must happen inside the failing context
            async with tenant_context(a.slug) as session:
                await session.conn.execute("INSERT INTO users (email, role) VALUES ('rolled@back.io', 'agent')")
                raise ZeroDivisionError
        assert await db.pool().fetchval("SHOW search_path") == db.NO_TENANT_SCHEMA

        async with tenant_context(b.slug) as session:
            assert await session.conn.fetchval("SELECT pg_backend_pid()") == backend
            emails = [r["email"] for r in await session.conn.fetch("SELECT email FROM users")]
        assert emails == [f"admin@{b.slug}.example"]
        async with tenant_context(a.slug) as session:
            assert await session.conn.fetchval("SELECT count(*) FROM users WHERE email = 'rolled@back.io'") == 0
    finally:
        await db.start(database)


@pytest.mark.parametrize("slug", ['acme"x', "acme'x", "public", "pg_temp", "x" * 41, "açaí", "Acme", "a"])
async def test_rejected_slugs_leave_nothing(database: str, slug: str) -> None:
    with pytest.raises(InvalidSlug):
        await create_tenant(slug, name="Bad", admin_email="a@b.io", admin_password="correct horse")
    assert not await _tenant_row_exists(database, slug)


async def test_duplicate_slug_is_a_clear_error(database: str, make_tenant: MakeTenant) -> None:
    tenant = await make_tenant("dup")
    with pytest.raises(TenantExists) as info:
        await create_tenant(tenant.slug, name="Other", admin_email="x@y.io", admin_password="correct horse")
    assert info.value.code == "tenant_exists"
    async with tenant_context(tenant.slug) as session:
        assert await session.conn.fetchval("SELECT email FROM users") == f"admin@{tenant.slug}.example"


async def test_concurrent_creates_of_one_slug_make_one_tenant(database: str, unique_slug: Callable[[str], str]) -> None:
    slug = unique_slug("race")
    results = await asyncio.gather(
        *(
            create_tenant(slug, name=f"R{i}", admin_email=f"a{i}@r.io", admin_password="correct horse")
            for i in range(4)
        ),
        return_exceptions=True,
    )
    assert sum(isinstance(r, TenantInfo) for r in results) == 1
    assert all(isinstance(r, TenantExists) for r in results if not isinstance(r, TenantInfo))


async def test_failed_provisioning_leaves_no_row_and_no_schema(
    database: str, unique_slug: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def explode(conn: asyncpg.Connection) -> None:
        await conn.execute("CREATE TABLE half_written (id int)")
        raise RuntimeError("disk on fire")

    broken = (*tenant_migrations(), Migration("9999_explode", "fails half-way", explode))
    monkeypatch.setattr(provisioning, "tenant_migrations", lambda: broken)
    slug = unique_slug("broken")
    with pytest.raises(RuntimeError, match="disk on fire"):
        await create_tenant(slug, name="Broken", admin_email="a@b.io", admin_password="correct horse")
    assert not await _tenant_row_exists(database, slug)
    assert not await _schema_exists(database, f"t_{slug}")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"plan": "platinum"}, PlanNotFound),
        ({"admin_email": "not-an-email"}, InvalidInput),
        ({"admin_password": "short"}, InvalidInput),
        ({"name": "   "}, InvalidInput),
    ],
)
async def test_bad_input_is_rejected_before_anything_is_written(
    database: str, unique_slug: Callable[[str], str], kwargs: dict[str, str], error: type[Exception]
) -> None:
    slug = unique_slug("bad")
    options = {"name": "Bad", "admin_email": "a@b.io", "admin_password": "correct horse", **kwargs}
    with pytest.raises(error):
        await create_tenant(slug, **options)
    assert not await _tenant_row_exists(database, slug)
    assert not await _schema_exists(database, f"t_{slug}")


async def test_suspended_tenant_gets_no_context(make_tenant: MakeTenant) -> None:
    tenant = await make_tenant("susp")
    await set_tenant_status(tenant.slug, "suspended")
    with pytest.raises(TenantSuspended) as info:
        async with tenant_context(tenant.slug):
            pass
    assert info.value.code == "tenant_suspended"
    with pytest.raises(TenantSuspended):
        async with tenant_context(tenant_id=tenant.id):
            pass
    # Migrations still reach a suspended tenant's schema.
    async with schema_transaction(tenant.schema) as session:
        assert await session.conn.fetchval("SELECT count(*) FROM users") == 1
    await set_tenant_status(tenant.slug, "active")
    async with tenant_context(tenant.slug) as session:
        assert session.tenant.slug == tenant.slug


async def test_unknown_tenant(database: str) -> None:
    with pytest.raises(TenantNotFound):
        async with tenant_context("nobody_here"):
            pass
    with pytest.raises(TenantNotFound):
        await set_tenant_status("nobody_here", "suspended")
