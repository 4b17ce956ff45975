"""Tenant schema: one-time tokens for invitations and password resets; where audited actions came from."""

from __future__ import annotations

import asyncpg

DESCRIPTION = "invitation and password-reset tokens, audit origin"


async def forwards(conn: asyncpg.Connection) -> None:
    await conn.execute(
        """
        CREATE TABLE user_tokens (
            id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            user_id     bigint NOT NULL REFERENCES users (id),
            kind        text NOT NULL CHECK (kind IN ('invite', 'reset')),
            token_hash  bytea NOT NULL UNIQUE,  -- sha256 of the token; the token itself is shown once
            created_by  bigint REFERENCES users (id),
            created_at  timestamptz NOT NULL DEFAULT now(),
            expires_at  timestamptz NOT NULL,
            used_at     timestamptz
        );
        CREATE INDEX user_tokens_user ON user_tokens (user_id, kind) WHERE used_at IS NULL;
        ALTER TABLE audit_log ADD COLUMN origin text;  -- client address the action came from
        """
    )
