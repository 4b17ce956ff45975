"""Tenant schema: API tokens for integrations (scoped, stored as a hash, revocable)."""

from __future__ import annotations

import asyncpg

DESCRIPTION = "API tokens"


async def forwards(conn: asyncpg.Connection) -> None:
    await conn.execute(
        """
        CREATE TABLE api_tokens (
            id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
            display       text NOT NULL,            -- the first characters, to recognise a token in a list
            token_hash    bytea NOT NULL UNIQUE,    -- sha256 of the token; the token itself is shown once
            scopes        text[] NOT NULL,
            created_by    bigint NOT NULL REFERENCES users (id),
            created_at    timestamptz NOT NULL DEFAULT now(),
            expires_at    timestamptz,
            last_used_at  timestamptz,
            revoked_at    timestamptz
        );
        """
    )
