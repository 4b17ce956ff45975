"""Public schema: every tenant's data keys, stored only wrapped by a master key (see ``tenants.secrets``).

The wrapped keys live in the public schema, not in each tenant's schema, so that loading a tenant's keys is
one indexed lookup and a master key rotation walks one table instead of thousands of schemas; the tenant
schemas hold only ciphertexts, which are useless without this table *and* the master key.
"""

from __future__ import annotations

import asyncpg

DESCRIPTION = "tenant data keys wrapped by a master key"


async def forwards(conn: asyncpg.Connection) -> None:
    await conn.execute(
        """
        CREATE TABLE tenant_keys (
            tenant_id    bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            version      integer NOT NULL CHECK (version >= 1),
            wrapped_key  bytea NOT NULL,
            master_kid   text NOT NULL CHECK (master_kid ~ '^[0-9a-f]{16}$'),
            created_at   timestamptz NOT NULL DEFAULT now(),
            rotated_at   timestamptz,
            PRIMARY KEY (tenant_id, version)
        );
        -- Master key rotation looks for keys wrapped by any kid but the active one.
        CREATE INDEX tenant_keys_master_kid ON tenant_keys (master_kid);
        COMMENT ON TABLE tenant_keys IS
            'Per-tenant AES-256 data keys, AES-256-GCM-wrapped by the master key master_kid; newest version encrypts';
        COMMENT ON COLUMN tenant_keys.rotated_at IS 'when the key was last re-wrapped by another master key';
        """
    )
