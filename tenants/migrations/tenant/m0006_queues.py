"""Tenant schema: queues (departments), their members, and the queue a ticket waits in."""

from __future__ import annotations

import asyncpg

DESCRIPTION = "queues and queue members"


async def forwards(conn: asyncpg.Connection) -> None:
    await conn.execute(
        """
        CREATE TABLE queues (
            id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
            color       text NOT NULL DEFAULT '#5c6bc0' CHECK (color ~ '^#[0-9a-fA-F]{6}$'),
            greeting    text NOT NULL DEFAULT '',
            created_at  timestamptz NOT NULL DEFAULT now()
        );
        CREATE UNIQUE INDEX queues_name ON queues (lower(name));
        CREATE TABLE queue_members (
            queue_id  bigint NOT NULL REFERENCES queues (id) ON DELETE CASCADE,
            user_id   bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            PRIMARY KEY (queue_id, user_id)
        );
        CREATE INDEX queue_members_user ON queue_members (user_id);
        ALTER TABLE tickets ADD COLUMN queue_id bigint REFERENCES queues (id) ON DELETE SET NULL;
        CREATE INDEX tickets_queue ON tickets (queue_id, status);
        """
    )
