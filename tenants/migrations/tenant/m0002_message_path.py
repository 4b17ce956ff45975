"""Tenant schema: connections, contacts, tickets, messages, the outbox and statuses that arrived early."""

from __future__ import annotations

import asyncpg

DESCRIPTION = "connections, contacts, tickets, messages, outbox"


async def forwards(conn: asyncpg.Connection) -> None:
    await conn.execute(
        """
        CREATE TABLE connections (
            id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
            provider         text NOT NULL CHECK (provider IN ('simulator', 'evolution', 'waha', 'cloud', 'neonize')),
            business_number  text NOT NULL CHECK (business_number ~ '^\\+[0-9]{8,15}$'),
            connection_key   text NOT NULL UNIQUE,
            endpoint         text,
            state            text NOT NULL DEFAULT 'STOPPED',
            state_reason     text,
            qr               text,
            qr_expires_at    timestamptz,
            credentials      bytea,
            created_at       timestamptz NOT NULL DEFAULT now(),
            updated_at       timestamptz NOT NULL DEFAULT now()
        );
        CREATE UNIQUE INDEX connections_number ON connections (business_number);

        CREATE TABLE contacts (
            id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            wa_id       text NOT NULL UNIQUE,  -- normalized chat id: <digits>@s.whatsapp.net, <id>@g.us, <id>@lid
            phone       text,                  -- E.164 digits when known
            name        text,
            push_name   text,
            is_group    boolean NOT NULL DEFAULT false,
            created_at  timestamptz NOT NULL DEFAULT now(),
            updated_at  timestamptz NOT NULL DEFAULT now()
        );

        CREATE SEQUENCE ticket_numbers;
        CREATE TABLE tickets (
            id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            number                bigint NOT NULL DEFAULT nextval('ticket_numbers') UNIQUE,
            contact_id            bigint NOT NULL REFERENCES contacts (id),
            connection_id         bigint NOT NULL REFERENCES connections (id),
            user_id               bigint REFERENCES users (id),
            status                text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'open', 'closed')),
            unread_count          integer NOT NULL DEFAULT 0,
            last_message_at       timestamptz,
            last_message_preview  text,
            created_at            timestamptz NOT NULL DEFAULT now(),
            updated_at            timestamptz NOT NULL DEFAULT now(),
            closed_at             timestamptz
        );
        -- One active ticket per contact and connection.
        CREATE UNIQUE INDEX tickets_one_active ON tickets (contact_id, connection_id) WHERE status <> 'closed';
        CREATE INDEX tickets_inbox ON tickets (status, last_message_at DESC, id DESC);

        CREATE TABLE messages (
            id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            ticket_id            bigint NOT NULL REFERENCES tickets (id),
            connection_id        bigint NOT NULL REFERENCES connections (id),
            provider_message_id  text,
            client_id            uuid UNIQUE,  -- idempotency key of an agent's send
            from_me              boolean NOT NULL,
            kind                 text NOT NULL,
            body                 text,
            media                jsonb,
            sender_id            text,
            sender_name          text,
            reply_to_id          text,
            user_id              bigint REFERENCES users (id),
            status               text NOT NULL,
            status_rank          smallint NOT NULL,
            error_code           text,
            error_title          text,
            occurred_at          timestamptz NOT NULL,
            created_at           timestamptz NOT NULL DEFAULT now(),
            updated_at           timestamptz NOT NULL DEFAULT now()
        );
        -- Exactly-once storage of provider messages (NULLs, i.e. queued sends, do not collide).
        CREATE UNIQUE INDEX messages_provider_id ON messages (connection_id, provider_message_id);
        CREATE INDEX messages_ticket ON messages (ticket_id, id DESC);

        -- Sends waiting to reach the session's outbound stream (written with the message, in one transaction).
        CREATE TABLE outbox (
            id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            message_id     bigint NOT NULL UNIQUE REFERENCES messages (id),
            connection_id  bigint NOT NULL REFERENCES connections (id),
            created_at     timestamptz NOT NULL DEFAULT now(),
            relayed_at     timestamptz,
            attempts       integer NOT NULL DEFAULT 0
        );
        CREATE INDEX outbox_unrelayed ON outbox (created_at) WHERE relayed_at IS NULL;

        -- Acks that arrived before the send result that names their message; merged when it arrives.
        CREATE TABLE early_statuses (
            connection_id        bigint NOT NULL,
            provider_message_id  text NOT NULL,
            status               text NOT NULL,
            status_rank          smallint NOT NULL,
            error_code           text,
            error_title          text,
            received_at          timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (connection_id, provider_message_id)
        );
        """
    )
