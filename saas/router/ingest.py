"""Apply one tenant's batch of inbound events inside one tenant transaction, set-based.

Exactly-once effects from at-least-once delivery: messages are inserted with ``ON CONFLICT DO NOTHING`` on
``(connection_id, provider_message_id)``, statuses only move forward (``status_rank <``), contacts are resolved
by identity (:mod:`saas.contacts.identity`: one person whatever phone form or LID WhatsApp shows) and tickets
are found, reopened or opened (:mod:`saas.automation.engine`). An ack that arrives before the send result naming
its message is parked in ``early_statuses`` and merged when the result arrives. Messages of blocked contacts are
dropped, and so are status updates (``status@broadcast``) and channel posts (``@newsletter``): they are not
conversations with the business. After the messages are stored, the automation runs (menu, queues, hours, distribution) and its messages
are stored with their outbox entries. Returns what the caller must do around the commit: realtime events to
publish, outbox entries to relay and timers to set.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from saas.automation.engine import Automation
from saas.contacts.identity import resolve_contacts
from saas.contacts.phones import identity_of
from saas.tickets.lifecycle import MESSAGE_COLUMNS, message_event, message_from_row, preview_of
from saas.workspace.service import load_settings
from supervisor.realtime import RealtimeEvent
from supervisor.wire import Envelope, InboundMessage, MediaResult, MessageStatus, status_rank, utcnow
from tenants.context import require_tenant

__all__ = ["BatchResult", "apply_batch", "not_a_conversation"]


@dataclass(slots=True)
class BatchResult:
    inserted: int = 0
    duplicates: int = 0
    statuses: int = 0
    blocked: int = 0
    ignored: int = 0  # status updates and channel posts
    events: list[RealtimeEvent] = field(default_factory=list)
    outbox: list[int] = field(default_factory=list)  # message ids whose outbox entries the caller relays
    timers: list[tuple[str, str, datetime]] = field(default_factory=list)  # (kind, subject, due)


async def apply_batch(conn: asyncpg.Connection, envelopes: Sequence[Envelope], *,
                      now: datetime | None = None) -> BatchResult:  # fmt: skip
    """Store ``envelopes`` (all of one tenant, in stream order) in the open tenant transaction on ``conn``."""
    result = BatchResult()
    messages: dict[tuple[int, str], InboundMessage] = {}
    send_results: list[MessageStatus] = []
    acks: dict[tuple[int, str], tuple[MessageStatus, int]] = {}
    media_results: dict[int, MediaResult] = {}
    for envelope in envelopes:
        event = envelope.event
        if isinstance(event, InboundMessage):
            key = (envelope.connection_id, event.provider_message_id)
            if not_a_conversation(event.chat_id):
                result.ignored += 1
            elif key in messages:
                result.duplicates += 1
            else:
                messages[key] = _storable(event)
        elif isinstance(event, MessageStatus):
            if event.client_message_id is not None:
                send_results.append(event)
            elif event.provider_message_id is not None:
                key = (envelope.connection_id, event.provider_message_id)
                rank = status_rank(event.status)
                if key not in acks or acks[key][1] < rank:
                    acks[key] = (event, rank)
        elif isinstance(event, MediaResult):
            media_results[event.message_id] = event
    if messages:
        await _store_messages(conn, messages, result, now or utcnow())
    if send_results:
        await _apply_send_results(conn, send_results, result)
    if acks:
        await _apply_acks(conn, acks, result)
    if media_results:
        await _apply_media_results(conn, media_results, result)
    return result


Key = tuple[int, str]


def not_a_conversation(chat_id: str) -> bool:
    """Contacts' status updates and channel posts reach linked devices too; neither is someone writing to us."""
    return chat_id.endswith(("@broadcast", "@newsletter"))


async def _store_messages(conn: asyncpg.Connection, messages: dict[Key, InboundMessage], result: BatchResult,
                          now: datetime) -> None:  # fmt: skip
    tenant = require_tenant()
    # 1. who wrote: one contact per person (groups are one contact)
    people = {key: (identity_of(m.chat_id, m.sender_alt_id, from_me=m.from_me),
                    None if m.from_me or m.chat_type != "direct" else m.sender_name)
              for key, m in messages.items()}  # fmt: skip
    contacts = await resolve_contacts(conn, people)
    kept = {key: m for key, m in messages.items() if not contacts[key].blocked}
    result.blocked += len(messages) - len(kept)
    if not kept:
        return

    # 2. the ticket of every message: the active one of (contact, connection), else reopened or new
    pair_of = {key: (contacts[key].id, key[0]) for key in kept}
    ticket_of_pair = await _active_tickets(conn, sorted(set(pair_of.values())))
    settings = await load_settings(conn)
    automation = Automation(conn, tenant.id, settings, now)
    pending: defaultdict[tuple[int, int], list[tuple[Any, InboundMessage]]] = defaultdict(list)
    for key, message in kept.items():
        if pair_of[key] not in ticket_of_pair:
            pending[pair_of[key]].append((key, message))
    ticket_of: dict[Any, int] = {key: ticket_of_pair[pair_of[key]] for key in kept if pair_of[key] in ticket_of_pair}
    if pending:
        # A redelivery of a message stored long ago (a provider's retry, a history replay) opens nothing.
        known = await _stored_keys(conn, [key for items in pending.values() for key, _m in items])
        for pair in list(pending):
            pending[pair] = [(key, m) for key, m in pending[pair] if key not in known]
            if not pending[pair]:
                del pending[pair]
        for key in known:
            kept.pop(key, None)
            result.duplicates += 1
    if pending:
        for items in pending.values():
            items.sort(key=lambda item: item[1].occurred_at)
        ticket_of.update(await automation.open_conversations(dict(pending)))
    answers = set(automation.survey_answers.values())

    # 3. messages, exactly once
    items = list(kept.items())
    rows = await conn.fetch(
        f"""
        INSERT INTO messages AS m (ticket_id, connection_id, provider_message_id, from_me, kind, body, media,
                                   sender_id, sender_name, reply_to_id, occurred_at, status, status_rank)
        SELECT u.*, CASE WHEN u.from_me THEN 'SENT' ELSE 'RECEIVED' END, CASE WHEN u.from_me THEN 2 ELSE 0 END
        FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bool[], $5::text[], $6::text[], $7::jsonb[],
                    $8::text[], $9::text[], $10::text[], $11::timestamptz[])
             AS u(ticket_id, connection_id, provider_message_id, from_me, kind, body, media, sender_id, sender_name,
                  reply_to_id, occurred_at)
        ON CONFLICT (connection_id, provider_message_id) DO NOTHING
        RETURNING {MESSAGE_COLUMNS}, m.connection_id
        """,
        [ticket_of[key] for key, _m in items],
        [c for (c, _), _m in items],
        [p for (_, p), _m in items],
        [m.from_me for _, m in items],
        [m.kind for _, m in items],
        [m.text for _, m in items],
        [_media_json(m) for _, m in items],
        [m.sender_id for _, m in items],
        [m.sender_name for _, m in items],
        [m.reply_to_id for _, m in items],
        [m.occurred_at for _, m in items],
    )
    result.inserted += len(rows)
    result.duplicates += len(items) - len(rows)
    if automation.survey_answers:
        stored = {(r["connection_id"], r["provider_message_id"]): r["id"] for r in rows}
        for survey_id, key in automation.survey_answers.items():
            if key in stored:
                await conn.execute("UPDATE csat_surveys SET message_id = $2 WHERE id = $1", survey_id, stored[key])
    fetch = [r["id"] for r in rows if r["media"] is not None and not r["from_me"]]
    if fetch:  # inbound media is downloaded by the session host (the outbox relays the fetch command)
        await conn.execute(
            "INSERT INTO outbox (message_id, connection_id, kind) SELECT id, connection_id, 'fetch' FROM messages"
            " WHERE id = ANY($1::bigint[]) ON CONFLICT (message_id) DO NOTHING",
            fetch,
        )
        result.outbox += fetch

    # 4. ticket summaries: last activity, unread count, who is waiting since when; a customer message wakes a
    #    snoozed ticket. Survey answers land on their closed ticket without touching it.
    per_ticket: dict[int, _Summary] = {}
    inbound: defaultdict[int, list[InboundMessage]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: r["occurred_at"]):
        key = (row["connection_id"], row["provider_message_id"])
        summary = per_ticket.setdefault(row["ticket_id"], _Summary())
        summary.add(row, preview_of(row["text"], row["kind"]), counted=key not in answers)
        if not row["from_me"] and key not in answers:
            inbound[row["ticket_id"]].append(kept[key])
        result.events.append(message_event(message_from_row(row)))
    ids = list(per_ticket)
    woken: set[int] = set()  # snoozed tickets the customer woke up: distributed again
    if ids:
        updated = await conn.fetch(
            """
            UPDATE tickets t SET
                last_message_at = GREATEST(t.last_message_at, u.at),
                last_message_preview = CASE WHEN t.last_message_at IS NULL OR u.at >= t.last_message_at
                                            THEN u.preview ELSE t.last_message_preview END,
                unread_count = t.unread_count + CASE WHEN t.status = 'closed' THEN 0 ELSE u.unread END,
                waiting_since = CASE WHEN t.status = 'closed' THEN t.waiting_since
                                     WHEN u.answered THEN u.waiting
                                     ELSE coalesce(t.waiting_since, u.waiting) END,
                snoozed_until = CASE WHEN u.unread > 0 THEN NULL ELSE t.snoozed_until END,
                updated_at = now()
            FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::int[], $5::bool[], $6::timestamptz[])
                 AS u(id, at, preview, unread, answered, waiting), tickets o
            WHERE t.id = u.id AND o.id = t.id
            RETURNING t.id, t.status, t.unread_count, t.last_message_at, t.last_message_preview, t.waiting_since,
                      t.snoozed_until, o.snoozed_until IS NOT NULL AND t.snoozed_until IS NULL AS woken
            """,
            ids,
            [per_ticket[i].at for i in ids],
            [per_ticket[i].preview for i in ids],
            [per_ticket[i].unread for i in ids],
            [per_ticket[i].answered for i in ids],
            [per_ticket[i].waiting for i in ids],
        )
        woken = {row["id"] for row in updated if row["woken"]}
        for row in updated:
            if row["id"] in automation.changed:
                continue  # a full ticket.updated follows
            result.events.append(RealtimeEvent(type="ticket.updated", ticket_id=row["id"], data={
                "id": row["id"], "status": row["status"], "unread_count": row["unread_count"],
                "last_message_at": row["last_message_at"].isoformat(), "last_message_preview": row["last_message_preview"],
                "waiting_since": row["waiting_since"].isoformat() if row["waiting_since"] else None,
                "snoozed_until": row["snoozed_until"].isoformat() if row["snoozed_until"] else None}))  # fmt: skip

    # 5. automation: menu, queues, hours, distribution — and its messages, stored after the customer's
    await automation.route(dict(inbound), woken=woken)
    events, outbox = await automation.finish()
    result.events += events
    result.outbox += outbox
    result.timers += automation.timers


@dataclass(slots=True)
class _Summary:
    """One ticket's share of a batch: latest activity, customer messages, and who waits since when."""

    at: datetime | None = None
    preview: str = ""
    unread: int = 0
    answered: bool = False  # the business wrote (from its phone) after the customer's messages so far
    waiting: datetime | None = None  # the first customer message after the business's last one

    def add(self, row: asyncpg.Record, preview: str, *, counted: bool) -> None:
        if self.at is None or row["occurred_at"] >= self.at:
            self.at, self.preview = row["occurred_at"], preview
        if not counted:
            return
        if row["from_me"]:
            self.answered, self.waiting = True, None
        else:
            self.unread += 1
            self.waiting = self.waiting or row["occurred_at"]


def _storable(message: InboundMessage) -> InboundMessage:
    """Without NUL characters, which PostgreSQL text cannot hold: a message carrying one is stored, not refused
    (refusing would dead-letter the customer's message)."""
    media = message.media
    if "\x00" not in (message.text or "") + (message.sender_name or "") + ((media.filename or "") if media else ""):
        return message
    clean = msgspec.structs.replace(message, text=message.text.replace("\x00", "") if message.text else message.text,
                                    sender_name=message.sender_name.replace("\x00", "") if message.sender_name else None)  # fmt: skip
    if media is not None and media.filename:
        clean = msgspec.structs.replace(
            clean, media=msgspec.structs.replace(media, filename=media.filename.replace("\x00", ""))
        )
    return clean


def _media_json(message: InboundMessage) -> str | None:
    if message.media is None:
        return None
    return msgspec.json.encode({**msgspec.to_builtins(message.media), "state": "pending"}).decode()


async def _active_tickets(conn: asyncpg.Connection, pairs: list[tuple[int, int]]) -> dict[tuple[int, int], int]:
    """The active ticket of each (contact, connection), row-locked: a ticket an agent closes meanwhile is re-read
    after their commit and drops out, so the message opens (or reopens) a conversation instead of landing on a
    closed ticket nobody looks at. Locked in id order, like every batch, so routers never deadlock on them."""
    rows = await conn.fetch(
        """
        SELECT t.id, t.contact_id, t.connection_id FROM tickets t
        JOIN unnest($1::bigint[], $2::bigint[]) AS u(contact_id, connection_id)
          ON t.contact_id = u.contact_id AND t.connection_id = u.connection_id
        WHERE t.status <> 'closed'
        ORDER BY t.id
        FOR UPDATE OF t
        """,
        [p[0] for p in pairs],
        [p[1] for p in pairs],
    )
    return {(r["contact_id"], r["connection_id"]): r["id"] for r in rows}


async def _stored_keys(conn: asyncpg.Connection, keys: list[Any]) -> set[Any]:
    rows = await conn.fetch(
        "SELECT m.connection_id, m.provider_message_id FROM messages m"
        " JOIN unnest($1::bigint[], $2::text[]) AS u(c, p) ON m.connection_id = u.c AND m.provider_message_id = u.p",
        [k[0] for k in keys], [k[1] for k in keys],
    )  # fmt: skip
    return {(r["connection_id"], r["provider_message_id"]) for r in rows}


_STATUS_RETURNING = "RETURNING m.id, m.ticket_id, m.provider_message_id, m.status, m.error_code, m.error_title"


def _status_event(row: asyncpg.Record) -> RealtimeEvent:
    return RealtimeEvent(type="message.updated", ticket_id=row["ticket_id"], data={
        "id": row["id"], "ticket_id": row["ticket_id"], "status": row["status"],
        "provider_message_id": row["provider_message_id"], "error_code": row["error_code"],
        "error_title": row["error_title"]})  # fmt: skip


async def _apply_send_results(conn: asyncpg.Connection, results: list[MessageStatus], batch: BatchResult) -> None:
    """A session host reports the outcome of a send: it names our message id and the provider's id."""
    best: dict[int, MessageStatus] = {}
    for status in results:
        assert status.client_message_id is not None
        current = best.get(status.client_message_id)
        if current is None or status_rank(current.status) < status_rank(status.status):
            best[status.client_message_id] = status
    ids = list(best)
    # A provider may echo our own send as a message "from me" before the send result names it (the phone's
    # linked-device sync): that row would hold the id the result gives our message. The echo goes; ours stays.
    echoes = await conn.fetch(
        """
        DELETE FROM messages e USING unnest($1::bigint[], $2::text[]) AS u(id, pid), messages m
        WHERE m.id = u.id AND u.pid IS NOT NULL AND e.connection_id = m.connection_id
          AND e.provider_message_id = u.pid AND e.id <> m.id AND e.from_me AND e.client_id IS NULL
          AND e.user_id IS NULL AND NOT e.bot
        RETURNING e.id, e.ticket_id
        """,
        ids, [best[i].provider_message_id for i in ids],
    )  # fmt: skip
    batch.events.extend(RealtimeEvent(type="message.deleted", ticket_id=e["ticket_id"],
                                      data={"id": e["id"], "ticket_id": e["ticket_id"]}) for e in echoes)  # fmt: skip
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


async def _apply_media_results(conn: asyncpg.Connection, results: dict[int, MediaResult], batch: BatchResult) -> None:
    """A session host fetched an inbound message's media into the media store (or gave up): record where it is."""
    ids = list(results)
    rows = await conn.fetch(
        f"""
        UPDATE messages m SET media = m.media || jsonb_strip_nulls(jsonb_build_object(
                   'state', u.state, 'key', u.key, 'size', u.size, 'sha256', u.sha256, 'mime', u.mime,
                   'error', u.error)),
               updated_at = now()
        FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[])
             AS u(id, state, key, size, sha256, mime, error)
        WHERE m.id = u.id AND m.media IS NOT NULL AND coalesce(m.media->>'state', 'pending') <> 'stored'
        RETURNING {MESSAGE_COLUMNS}
        """,
        ids,
        [results[i].state for i in ids],
        [results[i].key for i in ids],
        [results[i].size for i in ids],
        [results[i].sha256 for i in ids],
        [results[i].mime for i in ids],
        [results[i].error for i in ids],
    )
    batch.statuses += len(rows)
    batch.events.extend(message_event(message_from_row(r), "message.updated") for r in rows)
