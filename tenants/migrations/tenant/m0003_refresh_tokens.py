"""Tenant schema: refresh tokens, rotated on every use, grouped in families for reuse detection."""

from __future__ import annotations

import asyncpg

DESCRIPTION = "refresh tokens"


async def forwards(conn: asyncpg.Connection) -> None:
    await conn.execute(
        """
        CREATE TABLE refresh_tokens (
            jti         text PRIMARY KEY,
            family      text NOT NULL,
            user_id     bigint NOT NULL REFERENCES users (id),
            issued_at   timestamptz NOT NULL DEFAULT now(),
            expires_at  timestamptz NOT NULL,
            used_at     timestamptz,
            revoked_at  timestamptz
        );
        CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
        CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id) WHERE revoked_at IS NULL;
        """
    )
