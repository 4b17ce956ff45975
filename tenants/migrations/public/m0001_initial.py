"""Public schema: plans, tenants, platform operators and the session registry."""

from __future__ import annotations

import asyncpg

DESCRIPTION = "plans, tenants, platform operators, session registry"


async def forwards(conn: asyncpg.Connection) -> None:
    await conn.execute(
        """
        CREATE TABLE plans (
            id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            slug             text NOT NULL UNIQUE CHECK (slug ~ '^[a-z][a-z0-9_-]{0,39}$'),
            name             text NOT NULL,
            max_users        integer CHECK (max_users IS NULL OR max_users >= 0),
            max_connections  integer CHECK (max_connections IS NULL OR max_connections >= 0),
            max_queues       integer CHECK (max_queues IS NULL OR max_queues >= 0),
            created_at       timestamptz NOT NULL DEFAULT now()
        );
        COMMENT ON COLUMN plans.max_users IS 'NULL means unlimited';

        INSERT INTO plans (slug, name, max_users, max_connections, max_queues) VALUES
            ('free', 'Free', 3, 1, 3),
            ('pro', 'Pro', 25, 5, 25),
            ('enterprise', 'Enterprise', NULL, NULL, NULL);

        CREATE TABLE tenants (
            id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            slug          text NOT NULL UNIQUE,
            name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
            schema_name   text NOT NULL UNIQUE CHECK (schema_name ~ '^t_[a-z][a-z0-9_]{1,39}$'),
            plan_id       bigint NOT NULL REFERENCES plans (id),
            status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
            dedicated_host boolean NOT NULL DEFAULT false,
            created_at    timestamptz NOT NULL DEFAULT now(),
            suspended_at  timestamptz
        );

        CREATE TABLE platform_operators (
            id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            email          text NOT NULL,
            name           text NOT NULL DEFAULT '',
            password_hash  text NOT NULL,
            active         boolean NOT NULL DEFAULT true,
            token_version  integer NOT NULL DEFAULT 0,
            created_at     timestamptz NOT NULL DEFAULT now()
        );
        CREATE UNIQUE INDEX platform_operators_email ON platform_operators (lower(email));

        -- Which tenant owns a WhatsApp connection, what it should be doing and where it runs.
        CREATE TABLE session_registry (
            id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            tenant_id         bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            connection_id     bigint NOT NULL,
            connection_key    text NOT NULL UNIQUE,
            provider          text NOT NULL,
            desired_state     text NOT NULL DEFAULT 'running' CHECK (desired_state IN ('running', 'stopped')),
            state             text NOT NULL DEFAULT 'STOPPED',
            host              text,
            lease_owner       text,
            lease_token       bigint NOT NULL DEFAULT 0,
            lease_expires_at  timestamptz,
            updated_at        timestamptz NOT NULL DEFAULT now(),
            UNIQUE (tenant_id, connection_id)
        );
        """
    )
