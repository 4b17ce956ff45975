"""Tenant schema: users and the audit log."""

from __future__ import annotations

import asyncpg

DESCRIPTION = "users, audit log"


async def forwards(conn: asyncpg.Connection) -> None:
    await conn.execute(
        """
        CREATE TABLE users (
            id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            email          text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
            name           text NOT NULL DEFAULT '',
            password_hash  text,
            role           text NOT NULL CHECK (role IN ('admin', 'supervisor', 'agent')),
            active         boolean NOT NULL DEFAULT true,
            token_version  integer NOT NULL DEFAULT 0,
            created_at     timestamptz NOT NULL DEFAULT now(),
            updated_at     timestamptz NOT NULL DEFAULT now()
        );
        CREATE UNIQUE INDEX users_email ON users (lower(email));

        CREATE TABLE audit_log (
            id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            at          timestamptz NOT NULL DEFAULT now(),
            actor_id    bigint,
            action      text NOT NULL,
            target      text NOT NULL DEFAULT '',
            details     jsonb NOT NULL DEFAULT '{}'
        );
        CREATE INDEX audit_log_at ON audit_log (at DESC);
        """
    )
