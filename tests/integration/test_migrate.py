"""`atende migrate` across many tenant schemas: public first, parallel, resumable, a no-op when current."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Awaitable, Callable

from tenants.migrations import tenant_migrations
from tests.conftest import admin_connection

TENANTS = 50


def atende(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "ATENDE_LOG_LEVEL": "WARNING"}
    return subprocess.run(
        [sys.executable, "-m", "saas.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_migrate_fifty_tenants_twice_and_resume_after_a_failure(
    create_database: Callable[[], Awaitable[str]],
) -> None:
    url = await create_database()
    first = atende("migrate", database_url=url)  # empty database: public only
    assert first.returncode == 0, first.stderr
    assert "public: 0001_initial" in first.stdout

    # Fifty tenants that predate their migrations (bare schemas), one of them with a conflicting table.
    async with admin_connection(url) as conn:
        for i in range(TENANTS):
            await conn.execute(
                "INSERT INTO public.tenants (slug, name, schema_name, plan_id)"
                " SELECT $1, $1, $2, id FROM public.plans WHERE slug = 'free'",
                f"m{i:03d}",
                f"t_m{i:03d}",
            )
            await conn.execute(f"CREATE SCHEMA t_m{i:03d}")
        await conn.execute("CREATE TABLE t_m007.users (conflict int)")

    broken = atende("migrate", "--concurrency", "6", database_url=url)
    assert broken.returncode == 1
    assert "t_m007: FAILED" in broken.stdout
    per_tenant = len(tenant_migrations())
    assert f"{(TENANTS - 1) * per_tenant} migrations applied, 1 failed" in broken.stdout

    async with admin_connection(url) as conn:
        migrated = await conn.fetchval(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'atende_migrations'"
            " AND table_schema LIKE 't\\_m%'"
        )
        assert migrated == TENANTS - 1  # the failed tenant rolled back whole, history included
        await conn.execute("DROP TABLE t_m007.users")

    resumed = atende("migrate", database_url=url)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"t_m007: applied {', '.join(m.id for m in tenant_migrations())}" in resumed.stdout
    assert f"{per_tenant} migrations applied, 0 failed" in resumed.stdout

    again = atende("migrate", database_url=url)
    assert again.returncode == 0
    assert "public: up to date" in again.stdout
    assert f"public + {TENANTS} tenant schemas" in again.stdout
    assert "0 migrations applied, 0 failed" in again.stdout

    async with admin_connection(url) as conn:
        for i in range(TENANTS):
            ids = [r["id"] for r in await conn.fetch(f"SELECT id FROM t_m{i:03d}.atende_migrations ORDER BY id")]
            assert ids == [m.id for m in tenant_migrations()]
            assert await conn.fetchval(f"SELECT count(*) FROM t_m{i:03d}.users") == 0


async def test_ticketing_migration_keys_existing_contacts(database: str, unique_slug: Callable[[str], str]) -> None:
    """m0007 on a schema with data: phone keys and LIDs are filled in, two rows of one person keep one key."""
    from tenants.context import schema_transaction
    from tenants.migrations import apply_pending
    from tenants.naming import schema_for

    schema = schema_for(unique_slug("old"))
    before = [m for m in tenant_migrations() if m.id < "0007"]
    async with schema_transaction(schema, create=True) as session:
        await apply_pending(session.conn, schema, before)
        await session.conn.execute(
            "INSERT INTO contacts (wa_id, phone) VALUES ('551188887777@s.whatsapp.net', '+551188887777'),"
            " ('5511988887777@s.whatsapp.net', '+5511988887777'), ('551133334444@s.whatsapp.net', '+551133334444'),"
            " ('777@lid', NULL), ('120363000@g.us', NULL)"
        )
        # Open conversations: one answered then written to again, one never answered; and a closed one.
        await session.conn.execute(
            """
            INSERT INTO connections (name, provider, business_number, connection_key)
                VALUES ('Main', 'simulator', '+5511900000000', 'k1');
            INSERT INTO tickets (contact_id, connection_id, status) VALUES (1, 1, 'open'), (3, 1, 'pending'),
                                                                           (4, 1, 'closed');
            INSERT INTO messages (ticket_id, connection_id, from_me, kind, status, status_rank, occurred_at) VALUES
                (1, 1, false, 'text', 'RECEIVED', 0, '2026-01-01 10:00Z'),
                (1, 1, true, 'text', 'SENT', 2, '2026-01-01 10:05Z'),
                (1, 1, false, 'text', 'RECEIVED', 0, '2026-01-01 11:00Z'),
                (1, 1, false, 'text', 'RECEIVED', 0, '2026-01-01 11:30Z'),
                (2, 1, false, 'text', 'RECEIVED', 0, '2026-01-02 09:00Z'),
                (3, 1, false, 'text', 'RECEIVED', 0, '2026-01-03 09:00Z');
            """
        )
    async with schema_transaction(schema) as session:
        assert await apply_pending(session.conn, schema, tenant_migrations()) == [
            "0007_ticketing",
            "0008_webhook_secrets",
        ]
        rows = await session.conn.fetch("SELECT wa_id, phone_key, lid FROM contacts ORDER BY id")
        waiting = await session.conn.fetch("SELECT waiting_since FROM tickets ORDER BY id")
    assert [w["waiting_since"] and w["waiting_since"].isoformat() for w in waiting] == [
        "2026-01-01T11:00:00+00:00", "2026-01-02T09:00:00+00:00", None]  # fmt: skip
    assert [(r["phone_key"], r["lid"]) for r in rows] == [
        ("5511988887777", None),  # the legacy 12-digit mobile, keyed with the 9th digit
        (None, None),  # the same person again: the older row keeps the key; the router resolves to it from now on
        ("551133334444", None),  # a landline stays 12 digits
        (None, "777@lid"),
        (None, None),
    ]
    async with admin_connection(database) as conn:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
