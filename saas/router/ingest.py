"""Apply one tenant's batch of inbound events inside one tenant transaction, set-based.

Exactly-once effects from at-least-once delivery: messages are inserted with ``ON CONFLICT DO NOTHING`` on
``(connection_id, provider_message_id)``, statuses only move forward (``status_rank <``), and contacts and
tickets are upserted. An ack that arrives before the send result naming its message is parked in
``early_statuses`` and merged when the result arrives. Returns the realtime events to publish after commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from supervisor.realtime import RealtimeEvent
from supervisor.wire import Envelope, InboundMessage, MessageStatus, status_rank

__all__ = ["BatchResult", "apply_batch"]

PREVIEW_CHARS = 120


@dataclass(slots=True)
class BatchResult:
    inserted: int = 0
    duplicates: int = 0
    statuses: int = 0
    events: list[RealtimeEvent] = field(default_factory=list)


def _phone_of(wa_id: str) -> str | None:
    user, _, server = wa_id.partition("@")
    return "+" + user if server == "s.whatsapp.net" and user.isdigit() else None


def _preview(message: InboundMessage) -> str:
    if message.text:
        return message.text[:PREVIEW_CHARS]
    return f"[{message.kind}]"


async def apply_batch(conn: asyncpg.Connection, envelopes: Sequence[Envelope]) -> BatchResult:
    """Store ``envelopes`` (all of one tenant, in stream order) in the open transaction on ``conn``."""
    result = BatchResult()
    messages: dict[tuple[int, str], InboundMessage] = {}
    connection_of: dict[tuple[int, str], int] = {}
    send_results: list[MessageStatus] = []
    acks: dict[tuple[int, str], tuple[MessageStatus, int]] = {}
    for envelope in envelopes:
        event = envelope.event
        if isinstance(event, InboundMessage):
            key = (envelope.connection_id, event.provider_message_id)
            if key in messages:
                result.duplicates += 1
            else:
                messages[key] = event
                connection_of[key] = envelope.connection_id
        elif isinstance(event, MessageStatus):
            if event.client_message_id is not None:
                send_results.append(event)
            elif event.provider_message_id is not None:
                key = (envelope.connection_id, event.provider_message_id)
                rank = status_rank(event.status)
                if key not in acks or acks[key][1] < rank:
                    acks[key] = (event, rank)
    if messages:
        await _store_messages(conn, messages, result)
    if send_results:
        await _apply_send_results(conn, envelopes, send_results, result)
    if acks:
        await _apply_acks(conn, acks, result)
    return result


async def _store_messages(
    conn: asyncpg.Connection, messages: dict[tuple[int, str], InboundMessage], result: BatchResult
) -> None:
    # 1. contacts (one per chat; groups are one contact with is_group)
    contacts: dict[str, str | None] = {}
    for message in messages.values():
        name = None if message.from_me or message.chat_type == "group" else message.sender_name
        if name is not None or message.chat_id not in contacts:
            contacts[message.chat_id] = name
    wa_ids = list(contacts)
    await conn.execute(
        """
        INSERT INTO contacts (wa_id, phone, push_name, is_group)
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[])
        ON CONFLICT (wa_id) DO UPDATE SET push_name = EXCLUDED.push_name, updated_at = now()
            WHERE EXCLUDED.push_name IS NOT NULL AND contacts.push_name IS DISTINCT FROM EXCLUDED.push_name
        """,
        wa_ids,
        [_phone_of(w) for w in wa_ids],
        [contacts[w] for w in wa_ids],
        [w.endswith("@g.us") for w in wa_ids],
    )
    contact_rows = await conn.fetch(
        "SELECT id, wa_id, coalesce(name, push_name) AS name FROM contacts WHERE wa_id = ANY($1::text[])", wa_ids
    )
    contact_id = {r["wa_id"]: r["id"] for r in contact_rows}
    contact_name = {r["id"]: r["name"] for r in contact_rows}

    # 2. one active ticket per (contact, connection)
    pairs = sorted({(contact_id[m.chat_id], conn_id) for (conn_id, _), m in messages.items()})
    ticket_of = await _active_tickets(conn, pairs)
    missing = [p for p in pairs if p not in ticket_of]
    if missing:
        created = await conn.fetch(
            """
            INSERT INTO tickets (contact_id, connection_id)
            SELECT * FROM unnest($1::bigint[], $2::bigint[])
            ON CONFLICT (contact_id, connection_id) WHERE status <> 'closed' DO NOTHING
            RETURNING id, number, contact_id, connection_id, status, created_at
            """,
            [p[0] for p in missing],
            [p[1] for p in missing],
        )
        for row in created:
            ticket_of[(row["contact_id"], row["connection_id"])] = row["id"]
            result.events.append(RealtimeEvent(type="ticket.created", ticket_id=row["id"], data={
                "id": row["id"], "number": row["number"], "status": row["status"], "contact_id": row["contact_id"],
                "contact_name": contact_name.get(row["contact_id"]), "connection_id": row["connection_id"],
                "created_at": row["created_at"].isoformat()}))  # fmt: skip
        if len(created) < len(missing):  # lost a race with another writer: read theirs
            ticket_of.update(await _active_tickets(conn, [p for p in missing if p not in ticket_of]))

    # 3. messages, exactly once
    items = list(messages.items())
    rows = await conn.fetch(
        """
        INSERT INTO messages (ticket_id, connection_id, provider_message_id, from_me, kind, body, media, sender_id,
                              sender_name, reply_to_id, occurred_at, status, status_rank)
        SELECT u.*, CASE WHEN u.from_me THEN 'SENT' ELSE 'RECEIVED' END, CASE WHEN u.from_me THEN 2 ELSE 0 END
        FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bool[], $5::text[], $6::text[], $7::jsonb[],
                    $8::text[], $9::text[], $10::text[], $11::timestamptz[])
             AS u(ticket_id, connection_id, provider_message_id, from_me, kind, body, media, sender_id, sender_name,
                  reply_to_id, occurred_at)
        ON CONFLICT (connection_id, provider_message_id) DO NOTHING
        RETURNING id, ticket_id, provider_message_id, from_me, kind, body, media, sender_name, status, occurred_at
        """,
        [ticket_of[(contact_id[m.chat_id], c)] for (c, _), m in items],
        [c for (c, _), _m in items],
        [p for (_, p), _m in items],
        [m.from_me for _, m in items],
        [m.kind for _, m in items],
        [m.text for _, m in items],
        [msgspec.json.encode(m.media).decode() if m.media else None for _, m in items],
        [m.sender_id for _, m in items],
        [m.sender_name for _, m in items],
        [m.reply_to_id for _, m in items],
        [m.occurred_at for _, m in items],
    )
    result.inserted += len(rows)
    result.duplicates += len(items) - len(rows)
    if not rows:
        return

    # 4. ticket summaries
    per_ticket: dict[int, tuple[datetime, str, int]] = {}
    preview_of = {m.provider_message_id: _preview(m) for m in messages.values()}
    for row in rows:
        at, preview, unread = per_ticket.get(row["ticket_id"], (row["occurred_at"], "", 0))
        if row["occurred_at"] >= at:
            at, preview = row["occurred_at"], preview_of[row["provider_message_id"]]
        per_ticket[row["ticket_id"]] = (at, preview, unread + (0 if row["from_me"] else 1))
        result.events.append(RealtimeEvent(type="message.created", ticket_id=row["ticket_id"], data=_message_json(row)))
    ids = list(per_ticket)
    updated = await conn.fetch(
        """
        UPDATE tickets t SET
            last_message_at = GREATEST(t.last_message_at, u.at),
            last_message_preview = CASE WHEN t.last_message_at IS NULL OR u.at >= t.last_message_at
                                        THEN u.preview ELSE t.last_message_preview END,
            unread_count = t.unread_count + u.unread,
            updated_at = now()
        FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::int[]) AS u(id, at, preview, unread)
        WHERE t.id = u.id
        RETURNING t.id, t.status, t.unread_count, t.last_message_at, t.last_message_preview
        """,
        ids,
        [per_ticket[i][0] for i in ids],
        [per_ticket[i][1] for i in ids],
        [per_ticket[i][2] for i in ids],
    )
    for row in updated:
        result.events.append(RealtimeEvent(type="ticket.updated", ticket_id=row["id"], data={
            "id": row["id"], "status": row["status"], "unread_count": row["unread_count"],
            "last_message_at": row["last_message_at"].isoformat(), "last_message_preview": row["last_message_preview"]}))  # fmt: skip


async def _active_tickets(conn: asyncpg.Connection, pairs: list[tuple[int, int]]) -> dict[tuple[int, int], int]:
    rows = await conn.fetch(
        """
        SELECT t.id, t.contact_id, t.connection_id FROM tickets t
        JOIN unnest($1::bigint[], $2::bigint[]) AS u(contact_id, connection_id)
          ON t.contact_id = u.contact_id AND t.connection_id = u.connection_id
        WHERE t.status <> 'closed'
        """,
        [p[0] for p in pairs],
        [p[1] for p in pairs],
    )
    return {(r["contact_id"], r["connection_id"]): r["id"] for r in rows}


def _message_json(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "ticket_id": row["ticket_id"],
        "from_me": row["from_me"],
        "kind": row["kind"],
        "text": row["body"],
        "sender_name": row["sender_name"],
        "status": row["status"],
        "occurred_at": row["occurred_at"].isoformat(),
    }


_STATUS_RETURNING = "RETURNING m.id, m.ticket_id, m.provider_message_id, m.status, m.error_code, m.error_title"


def _status_event(row: asyncpg.Record) -> RealtimeEvent:
    return RealtimeEvent(type="message.updated", ticket_id=row["ticket_id"], data={
        "id": row["id"], "ticket_id": row["ticket_id"], "status": row["status"],
        "provider_message_id": row["provider_message_id"], "error_code": row["error_code"],
        "error_title": row["error_title"]})  # fmt: skip


async def _apply_send_results(
    conn: asyncpg.Connection, envelopes: Sequence[Envelope], results: list[MessageStatus], batch: BatchResult
) -> None:
    """A session host reports the outcome of a send: it names our message id and the provider's id."""
    best: dict[int, MessageStatus] = {}
    for status in results:
        assert status.client_message_id is not None
        current = best.get(status.client_message_id)
        if current is None or status_rank(current.status) < status_rank(status.status):
            best[status.client_message_id] = status
    ids = list(best)
    rows = await conn.fetch(
        f"""
        UPDATE messages m SET provider_message_id = coalesce(u.pid, m.provider_message_id), status = u.status,
               status_rank = u.rank, error_code = u.code, error_title = u.title, updated_at = now()
        FROM unnest($1::bigint[], $2::text[], $3::text[], $4::smallint[], $5::text[], $6::text[])
             AS u(id, pid, status, rank, code, title)
        WHERE m.id = u.id AND m.status_rank < u.rank
        {_STATUS_RETURNING}, m.connection_id
        """,
        ids,
        [best[i].provider_message_id for i in ids],
        [best[i].status for i in ids],
        [status_rank(best[i].status) for i in ids],
        [best[i].error_code for i in ids],
        [best[i].error_title for i in ids],
    )
    batch.statuses += len(rows)
    batch.events.extend(_status_event(r) for r in rows)
    named = [(r["connection_id"], r["provider_message_id"]) for r in rows if r["provider_message_id"]]
    if not named:
        return
    merged = await conn.fetch(
        f"""
        WITH early AS (
            DELETE FROM early_statuses e USING unnest($1::bigint[], $2::text[]) AS u(c, p)
            WHERE e.connection_id = u.c AND e.provider_message_id = u.p
            RETURNING e.*
        )
        UPDATE messages m SET status = early.status, status_rank = early.status_rank,
               error_code = early.error_code, error_title = early.error_title, updated_at = now()
        FROM early
        WHERE m.connection_id = early.connection_id AND m.provider_message_id = early.provider_message_id
          AND m.status_rank < early.status_rank
        {_STATUS_RETURNING}
        """,
        [n[0] for n in named],
        [n[1] for n in named],
    )
    batch.events.extend(_status_event(r) for r in merged)


async def _apply_acks(
    conn: asyncpg.Connection, acks: dict[tuple[int, str], tuple[MessageStatus, int]], batch: BatchResult
) -> None:
    keys = list(acks)
    args = (
        [k[0] for k in keys],
        [k[1] for k in keys],
        [acks[k][0].status for k in keys],
        [acks[k][1] for k in keys],
        [acks[k][0].error_code for k in keys],
        [acks[k][0].error_title for k in keys],
    )
    rows = await conn.fetch(
        f"""
        UPDATE messages m SET status = u.status, status_rank = u.rank, error_code = coalesce(u.code, m.error_code),
               error_title = coalesce(u.title, m.error_title), updated_at = now()
        FROM unnest($1::bigint[], $2::text[], $3::text[], $4::smallint[], $5::text[], $6::text[])
             AS u(c, p, status, rank, code, title)
        WHERE m.connection_id = u.c AND m.provider_message_id = u.p AND m.status_rank < u.rank
        {_STATUS_RETURNING}
        """,
        *args,
    )
    batch.statuses += len(rows)
    batch.events.extend(_status_event(r) for r in rows)
    # Acks for messages we do not know (yet): park them; the send result will merge them.
    await conn.execute(
        """
        INSERT INTO early_statuses (connection_id, provider_message_id, status, status_rank, error_code, error_title)
        SELECT u.* FROM unnest($1::bigint[], $2::text[], $3::text[], $4::smallint[], $5::text[], $6::text[])
             AS u(c, p, status, rank, code, title)
        WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.connection_id = u.c AND m.provider_message_id = u.p)
        ON CONFLICT (connection_id, provider_message_id) DO UPDATE
            SET status = EXCLUDED.status, status_rank = EXCLUDED.status_rank, error_code = EXCLUDED.error_code,
                error_title = EXCLUDED.error_title
            WHERE early_statuses.status_rank < EXCLUDED.status_rank
        """,
        *args,
    )
