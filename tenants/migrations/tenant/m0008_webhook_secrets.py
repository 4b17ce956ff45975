"""Tenant schema: the secrets that prove a provider's webhook deliveries, sealed with the tenant's data key."""

from __future__ import annotations

import asyncpg

DESCRIPTION = "webhook secrets of connections"


async def forwards(conn: asyncpg.Connection) -> None:
    await conn.execute(
        """
        ALTER TABLE connections
            ADD COLUMN webhook_secret        bytea,  -- HMAC key (Cloud API app secret, WAHA) or API key (Evolution)
            ADD COLUMN webhook_verify_token  bytea;  -- the Cloud API subscription handshake's token
        """
    )
