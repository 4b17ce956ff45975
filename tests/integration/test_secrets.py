"""Secrets at rest against real PostgreSQL: data keys in ``public.tenant_keys``, ciphertexts in tenant schemas.

Each test works in a database of its own: master key rotation walks every tenant's keys, so it must not meet keys
that other tests wrapped with other master keys. The shared pool is pointed back at the run's database afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tenants import db
from tenants.context import tenant_context
from tenants.errors import TenantNotFound
from tenants.migrations import migrate_public
from tenants.provisioning import TenantInfo, create_tenant
from tenants.secrets import (
    DataKey,
    DataKeyNotFound,
    MasterKeys,
    MasterKeyUnknown,
    SecretCorrupt,
    TenantCipher,
    TenantRotation,
    clear_key_cache,
    data_key,
    decrypt,
    encrypt,
    is_sealed,
    key_version,
    keys_rotate_main,
    rotate_data_key,
    rotate_master_keys,
    tenant_cipher,
)
from tests.conftest import admin_connection

OLD = "old-master-key-0123456789abcdefghijklmnop"
NEW = "new-master-key-0123456789abcdefghijklmnop"
STRANGER = "a-master-key-nobody-configured-0123456789"

NewTenant = Callable[[], Awaitable[TenantInfo]]


@pytest.fixture
async def keys_db(create_database: Callable[[], Awaitable[str]], database_url: str) -> AsyncIterator[str]:
    """A fresh database with the public schema migrated and the shared pool on it; restored to the run's after."""
    url = await create_database()
    await db.start(url)
    clear_key_cache()
    try:
        await migrate_public()
        yield url
    finally:
        clear_key_cache()
        await db.start(database_url)


@pytest.fixture
def new_tenant(keys_db: str, unique_slug: Callable[[str], str]) -> NewTenant:
    async def make() -> TenantInfo:
        slug = unique_slug("sec")
        return await create_tenant(slug, name=slug, admin_email=f"admin@{slug}.example", admin_password="correct horse")

    return make


async def store_credentials(tenant: TenantInfo, masters: MasterKeys, secret: bytes, number: str) -> int:
    """Seal ``secret`` and store it where a connection's credentials live; returns the connection id."""
    async with tenant_context(tenant.slug) as session:
        cipher = await tenant_cipher(session.conn, tenant.id, masters)
        connection_id: int = await session.conn.fetchval(
            "INSERT INTO connections (name, provider, business_number, connection_key, credentials)"
            " VALUES ('main', 'simulator', $1, $1, $2) RETURNING id",
            number,
            cipher.encrypt(secret),
        )
    return connection_id


async def stored_blob(tenant: TenantInfo, connection_id: int) -> bytes:
    async with tenant_context(tenant.slug) as session:
        blob: bytes = await session.conn.fetchval("SELECT credentials FROM connections WHERE id = $1", connection_id)
    return blob


async def read_credentials(tenant: TenantInfo, masters: MasterKeys, connection_id: int) -> bytes:
    async with tenant_context(tenant.slug) as session:
        blob = await session.conn.fetchval("SELECT credentials FROM connections WHERE id = $1", connection_id)
        return (await tenant_cipher(session.conn, tenant.id, masters)).decrypt(blob)


async def cipher_of(tenant: TenantInfo, masters: MasterKeys) -> TenantCipher:
    async with tenant_context(tenant.slug) as session:
        return await tenant_cipher(session.conn, tenant.id, masters)


async def key_rows(url: str) -> list[tuple[int, int, str, bool]]:
    async with admin_connection(url) as conn:
        rows = await conn.fetch(
            "SELECT tenant_id, version, master_kid, rotated_at IS NOT NULL AS rotated FROM public.tenant_keys"
            " ORDER BY tenant_id, version"
        )
    return [(r["tenant_id"], r["version"], r["master_kid"], r["rotated"]) for r in rows]


async def test_a_data_key_is_created_once_under_concurrency(keys_db: str, new_tenant: NewTenant) -> None:
    tenant = await new_tenant()
    masters = MasterKeys.from_strings(OLD)

    async def get_key() -> DataKey:
        async with tenant_context(tenant_id=tenant.id) as session:
            return await data_key(session.conn, tenant.id, masters)

    keys = await asyncio.gather(*(get_key() for _ in range(10)))
    assert {k.version for k in keys} == {1}
    assert await key_rows(keys_db) == [(tenant.id, 1, masters.active_kid, False)]
    # Every caller got the key that was stored: what any of them sealed opens with the key unwrapped afresh.
    clear_key_cache()
    stored = await cipher_of(tenant, masters)
    for key in keys:
        assert stored.decrypt(encrypt(b"probe", tenant_id=tenant.id, key=key)) == b"probe"


async def test_secrets_are_bound_to_their_tenant(new_tenant: NewTenant) -> None:
    a, b = await new_tenant(), await new_tenant()
    masters = MasterKeys.from_strings(OLD)
    secret = b'{"creds": "whatsapp session of tenant a"}'
    in_a = await store_credentials(a, masters, secret, "+5511900000001")

    blob = await stored_blob(a, in_a)
    assert is_sealed(blob) and secret not in blob
    assert await read_credentials(a, masters, in_a) == secret

    # B's keys cannot open A's secret, whether B's cipher or A's tenant id with B's key is tried.
    b_cipher = await cipher_of(b, masters)
    with pytest.raises(SecretCorrupt):
        b_cipher.decrypt(blob)
    with pytest.raises(SecretCorrupt):
        decrypt(blob, tenant_id=b.id, keys=b_cipher.active)

    # A ciphertext copied into B's own table fails to decrypt there.
    in_b = await store_credentials(b, masters, b"b's own", "+5511900000002")
    async with tenant_context(b.slug) as session:
        await session.conn.execute("UPDATE connections SET credentials = $2 WHERE id = $1", in_b, blob)
    with pytest.raises(SecretCorrupt) as caught:
        await read_credentials(b, masters, in_b)
    assert caught.value.code == "secret_corrupt"


async def test_master_key_rotation_rewraps_every_tenant_and_the_old_key_can_go(
    keys_db: str, new_tenant: NewTenant
) -> None:
    old = MasterKeys.from_strings(OLD)
    tenants = [await new_tenant() for _ in range(4)]
    stored: dict[int, int] = {}  # tenant id -> connection id; the fourth tenant has no secrets, so no key
    for i, tenant in enumerate(tenants[:3]):
        stored[tenant.id] = await store_credentials(tenant, old, f"secret {i}".encode(), f"+55119000000{i:02d}")
    async with tenant_context(tenant_id=tenants[0].id) as session:  # one tenant with two data key versions
        await rotate_data_key(session.conn, tenants[0].id, old)
    blobs_before = {t.id: await stored_blob(t, stored[t.id]) for t in tenants[:3]}

    rotating = MasterKeys.from_strings(NEW, [OLD])
    seen: list[tuple[int, int, TenantRotation]] = []
    report = await rotate_master_keys(rotating, concurrency=2, progress=lambda d, t, r: seen.append((d, t, r)))

    assert not report.failed and report.remaining == {}
    assert report.rewrapped == 4
    assert [(r.tenant_id, r.rewrapped) for r in report.tenants] == [(tenants[0].id, 2), (tenants[1].id, 1),
                                                                    (tenants[2].id, 1)]  # fmt: skip
    assert sorted(d for d, _, _ in seen) == [1, 2, 3] and {t for _, t, _ in seen} == {3}
    assert {kid for _, _, kid, _ in await key_rows(keys_db)} == {rotating.active_kid}
    assert all(rotated for *_, rotated in await key_rows(keys_db))

    # The ciphertexts were not touched, and the new master key alone opens them: the old one may be dropped
    # (and once dropped it opens nothing, not even through the process's cache).
    only_new = MasterKeys.from_strings(NEW)
    for i, tenant in enumerate(tenants[:3]):
        assert await stored_blob(tenant, stored[tenant.id]) == blobs_before[tenant.id]
        assert await read_credentials(tenant, only_new, stored[tenant.id]) == f"secret {i}".encode()
    with pytest.raises(MasterKeyUnknown) as caught:
        await read_credentials(tenants[1], old, stored[tenants[1].id])
    assert caught.value.code == "master_key_unknown"

    # Idempotent: a second run finds nothing to re-wrap.
    again = await rotate_master_keys(rotating)
    assert again.tenants == [] and again.rewrapped == 0 and again.remaining == {}


async def test_rotate_command_reports_what_it_cannot_unwrap_and_resumes(
    keys_db: str, new_tenant: NewTenant, capsys: pytest.CaptureFixture[str]
) -> None:
    known, strange = await new_tenant(), await new_tenant()
    await store_credentials(known, MasterKeys.from_strings(OLD), b"known", "+5511900000010")
    strange_id = await store_credentials(strange, MasterKeys.from_strings(STRANGER), b"strange", "+5511900000011")
    stranger_kid = MasterKeys.from_strings(STRANGER).active_kid
    new_kid = MasterKeys.from_strings(NEW).active_kid

    assert await keys_rotate_main(NEW, [OLD], verbose=True) == 1
    out = capsys.readouterr().out
    assert f"tenant {known.id}: re-wrapped 1 data keys" in out
    assert f"tenant {strange.id}: FAILED master_key_unknown" in out
    assert f"re-wrapped 1 data keys of 2 tenants with master key {new_kid}" in out and "1 failed" in out
    assert f"1 under {stranger_kid}; keep those keys configured" in out
    assert OLD not in out and NEW not in out and STRANGER not in out

    # With the missing key configured, a re-run finishes the job and touches only what was left.
    assert await keys_rotate_main(NEW, [OLD, STRANGER]) == 0
    out = capsys.readouterr().out
    assert "re-wrapped 1 data keys of 1 tenants" in out and "0 failed" in out
    assert "previous master keys may be removed" in out
    assert await read_credentials(strange, MasterKeys.from_strings(NEW), strange_id) == b"strange"

    assert await keys_rotate_main(NEW, []) == 0
    assert "re-wrapped 0 data keys of 0 tenants" in capsys.readouterr().out


async def test_data_key_rotation_keeps_old_ciphertexts_readable(keys_db: str, new_tenant: NewTenant) -> None:
    tenant = await new_tenant()
    masters = MasterKeys.from_strings(OLD)
    first = await store_credentials(tenant, masters, b"sealed with v1", "+5511900000020")

    async def rotate() -> DataKey:
        async with tenant_context(tenant_id=tenant.id) as session:
            return await rotate_data_key(session.conn, tenant.id, masters)

    assert (await rotate()).version == 2
    second = await store_credentials(tenant, masters, b"sealed with v2", "+5511900000021")
    assert key_version(await stored_blob(tenant, first)) == 1
    assert key_version(await stored_blob(tenant, second)) == 2

    # Concurrent rotations each get a version of their own; none overwrites another.
    assert sorted(k.version for k in await asyncio.gather(rotate(), rotate(), rotate())) == [3, 4, 5]
    clear_key_cache()
    assert (await cipher_of(tenant, masters)).versions == (1, 2, 3, 4, 5)
    assert await read_credentials(tenant, masters, first) == b"sealed with v1"
    assert await read_credentials(tenant, masters, second) == b"sealed with v2"
    assert [v for _, v, _, _ in await key_rows(keys_db)] == [1, 2, 3, 4, 5]


async def test_missing_tenants_and_keys_are_clear_errors(keys_db: str, new_tenant: NewTenant) -> None:
    tenant = await new_tenant()
    masters = MasterKeys.from_strings(OLD)
    async with db.pool().acquire() as conn:
        with pytest.raises(DataKeyNotFound):
            await data_key(conn, tenant.id, masters, create=False)
        with pytest.raises(TenantNotFound):
            await data_key(conn, 10**12, masters)
        assert (await data_key(conn, tenant.id, masters)).version == 1  # outside a transaction, too
    # Keys go with their tenant.
    async with admin_connection(keys_db) as admin:
        await admin.execute("DELETE FROM public.tenants WHERE id = $1", tenant.id)
    assert await key_rows(keys_db) == []
