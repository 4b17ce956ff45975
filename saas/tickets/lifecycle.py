"""The building blocks every ticket change is made of, shared by the router (automation) and the API (agents'
actions), all inside the caller's tenant transaction:

* reading tickets and messages in their API shape (and as realtime events),
* storing an outgoing message (agent reply, automated message or private note) with its outbox entry,
* the ticket's activity log, the per-tenant distribution lock, and elapsed times in business hours.

Realtime events are *returned*, never published here: the caller publishes them after its commit.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from saas.queues.calendar import Calendar, business_seconds_between
from saas.queues.hours import calendar_or_none
from saas.tickets.rules import priority_name
from saas.tickets.schemas import ContactOut, MediaOut, MessageOut, TagOut, TicketOut
from saas.workspace.schemas import WorkspaceSettings
from saas.workspace.service import tenant_calendar
from supervisor.realtime import RealtimeEvent
from tenants.errors import Conflict

__all__ = [
    "MESSAGE_COLUMNS",
    "TICKET_COLUMNS",
    "ActiveTicketExists",
    "Calendars",
    "elapsed",
    "fetch_tickets",
    "insert_outgoing",
    "lock_distribution",
    "log_event",
    "message_event",
    "message_from_row",
    "one_active_ticket",
    "ticket_event",
    "ticket_from_row",
]

PREVIEW_CHARS = 120


class ActiveTicketExists(Conflict):
    code = "active_ticket_exists"
    title = "The contact already has an active ticket there"


@asynccontextmanager
async def one_active_ticket(detail: str, **extra: Any) -> AsyncIterator[None]:
    """Turn a clash with ``tickets_one_active`` (one non-closed ticket per contact and connection) into a 409.

    Writers check for an active ticket first for a friendly error, but the router opens tickets under its
    per-pair locks, which API writers do not take (they lock the ticket row first; taking the pair lock after it
    would invert the router's order). The unique index is the arbiter; this makes losing the race a clean
    conflict instead of a 500, and the transaction rolls back whole.
    """
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name != "tickets_one_active":
            raise
        raise ActiveTicketExists(detail, **extra) from exc


TICKET_COLUMNS = """
    t.id, t.number, t.status, t.priority, t.connection_id, t.user_id, t.queue_id, t.unread_count, t.last_message_at,
    t.last_message_preview, t.waiting_since, t.snoozed_until, t.bot_state, t.created_at, t.updated_at, t.accepted_at,
    t.first_response_at, t.closed_at,
    c.id AS contact_id, coalesce(c.name, c.push_name) AS contact_name, c.phone, c.wa_id, c.blocked_at IS NOT NULL AS blocked,
    (SELECT coalesce(json_agg(json_build_object('id', g.id, 'name', g.name, 'color', g.color) ORDER BY g.name), '[]')
       FROM ticket_tags tt JOIN tags g ON g.id = tt.tag_id WHERE tt.ticket_id = t.id)::text AS tags
"""
"""Select list over ``tickets t JOIN contacts c ON c.id = t.contact_id`` for :func:`ticket_from_row`."""


_tags_decoder = msgspec.json.Decoder(list[TagOut])


def _tags(raw: str) -> list[TagOut]:
    return _tags_decoder.decode(raw)


def ticket_from_row(row: asyncpg.Record) -> TicketOut:
    return TicketOut(
        id=row["id"], number=row["number"], status=row["status"], priority=priority_name(row["priority"]),  # type: ignore[arg-type]
        connection_id=row["connection_id"], queue_id=row["queue_id"], user_id=row["user_id"],
        unread_count=row["unread_count"], last_message_at=row["last_message_at"],
        last_message_preview=row["last_message_preview"], waiting_since=row["waiting_since"],
        snoozed_until=row["snoozed_until"], bot_state=row["bot_state"], tags=_tags(row["tags"]),
        created_at=row["created_at"], updated_at=row["updated_at"], accepted_at=row["accepted_at"],
        first_response_at=row["first_response_at"], closed_at=row["closed_at"],
        contact=ContactOut(id=row["contact_id"], name=row["contact_name"], phone=row["phone"], wa_id=row["wa_id"],
                           blocked=row["blocked"]),
    )  # fmt: skip


async def fetch_tickets(conn: asyncpg.Connection, ticket_ids: Collection[int]) -> list[TicketOut]:
    """The tickets with these ids (no visibility filter: for events, which are filtered on delivery)."""
    if not ticket_ids:
        return []
    rows = await conn.fetch(
        f"SELECT {TICKET_COLUMNS} FROM tickets t JOIN contacts c ON c.id = t.contact_id"
        " WHERE t.id = ANY($1::bigint[]) ORDER BY t.id",
        list(ticket_ids),
    )
    return [ticket_from_row(r) for r in rows]


def ticket_event(ticket: TicketOut, *, was: dict[str, Any] | None = None) -> RealtimeEvent:
    """``ticket.updated`` with the whole ticket. ``was`` names the owner and queue before a change of either, so
    the socket can tell viewers who just lost sight of the ticket (``ticket.hidden``)."""
    data: dict[str, Any] = msgspec.to_builtins(ticket)
    if was is not None:
        data["was"] = was
    return RealtimeEvent(type="ticket.updated", ticket_id=ticket.id, data=data)


MESSAGE_COLUMNS = """m.id, m.ticket_id, m.from_me, m.kind, m.body AS text, m.status, m.sender_name, m.user_id,
    m.provider_message_id, m.error_code, m.error_title, m.client_id, m.private, m.bot, m.media, m.occurred_at,
    m.created_at"""
"""Select list over ``messages m`` for :func:`message_from_row`."""

_media_decoder = msgspec.json.Decoder(dict[str, Any])


def media_from_json(raw: str | None, ticket_id: int, message_id: int) -> MediaOut | None:
    if raw is None:
        return None
    media = _media_decoder.decode(raw)
    state = media.get("state", "pending")
    url = f"/api/v1/tickets/{ticket_id}/messages/{message_id}/media" if state == "stored" else None
    return MediaOut(mime=media.get("mime", "application/octet-stream"), size=media.get("size"),
                    filename=media.get("filename"), state=state, error=media.get("error"), url=url)  # fmt: skip


_MESSAGE_FIELDS = MessageOut.__struct_fields__


def message_from_row(row: asyncpg.Record) -> MessageOut:
    values = {name: row[name] for name in _MESSAGE_FIELDS if name != "media"}
    return MessageOut(**values, media=media_from_json(row["media"], row["ticket_id"], row["id"]))


def message_event(message: MessageOut, kind: str = "message.created") -> RealtimeEvent:
    data: dict[str, Any] = msgspec.to_builtins(message)
    return RealtimeEvent(type=kind, ticket_id=message.ticket_id, data=data)


async def insert_outgoing(
    conn: asyncpg.Connection,
    *,
    ticket_id: int,
    connection_id: int,
    text: str | None,
    user_id: int | None = None,
    bot: bool = False,
    private: bool = False,
    client_id: uuid.UUID | None = None,
    kind: str = "text",
    media: dict[str, Any] | None = None,
) -> MessageOut:
    """Store a message we send (QUEUED, with its outbox entry) or a private note (never sent, no outbox)."""
    row = await conn.fetchrow(
        f"""
        INSERT INTO messages AS m (ticket_id, connection_id, client_id, from_me, kind, body, media, user_id, status,
                                   status_rank, occurred_at, private, bot)
        VALUES ($1, $2, $3, true, $4, $5, $6::jsonb, $7, $8, 0, now(), $9, $10)
        RETURNING {MESSAGE_COLUMNS}
        """,
        ticket_id, connection_id, client_id, kind, text, None if media is None else msgspec.json.encode(media).decode(),
        user_id, "NOTE" if private else "QUEUED", private, bot,
    )  # fmt: skip
    assert row is not None
    if not private:
        await conn.execute("INSERT INTO outbox (message_id, connection_id) VALUES ($1, $2)", row["id"], connection_id)
    return message_from_row(row)


def preview_of(text: str | None, kind: str) -> str:
    return text[:PREVIEW_CHARS] if text else f"[{kind}]"


async def log_event(conn: asyncpg.Connection, ticket_id: int, action: str, *, actor_id: int | None = None,
                    details: dict[str, Any] | None = None) -> None:  # fmt: skip
    """One line of the ticket's activity log (accepted, assigned, transferred, closed, reopened ...)."""
    await conn.execute(
        "INSERT INTO ticket_events (ticket_id, action, actor_id, details) VALUES ($1, $2, $3, $4::jsonb)",
        ticket_id, action, actor_id, msgspec.json.encode(details or {}).decode(),
    )  # fmt: skip


async def lock_distribution(conn: asyncpg.Connection, tenant_id: int) -> None:
    """Serialize every assignment decision of a tenant (held to the end of the transaction).

    Any transaction that may assign tickets takes this lock *before* it reads agents' loads, so two decisions never
    see the same free capacity. The lock order every writer keeps, so none of them can deadlock another:

    1. ticket rows (``FOR UPDATE``, in id order), 2. the per-pair advisory locks of new conversations,
    3. this lock, 4. user rows.

    After this lock a ticket row is only ever taken with ``SKIP LOCKED`` (a skipped ticket is retried by a
    timer), and a user row is never updated before it (a capacity or presence change takes this lock first).
    """
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"atende.distribute.{tenant_id}")


class Calendars:
    """The business hours that apply to tickets of each queue (its own, else the tenant's; None = always open),
    read once per transaction."""

    def __init__(self, conn: asyncpg.Connection, settings: WorkspaceSettings) -> None:
        self._conn = conn
        self._settings = settings
        self._tenant = tenant_calendar(settings)
        self._queues: dict[int, Calendar | None] = {}

    @property
    def tenant(self) -> Calendar | None:
        return self._tenant

    async def for_queue(self, queue_id: int | None) -> Calendar | None:
        if queue_id is None:
            return self._tenant
        if queue_id not in self._queues:
            raw = await self._conn.fetchval("SELECT hours FROM queues WHERE id = $1", queue_id)
            own = calendar_or_none(raw, self._settings.timezone)
            self._queues[queue_id] = own if own is not None else self._tenant
        return self._queues[queue_id]


def elapsed(start: datetime, end: datetime, calendar: Calendar | None) -> tuple[float, float]:
    """(wall-clock seconds, business-hours seconds) from ``start`` to ``end``; always open without a calendar."""
    wall = max(0.0, (end - start).total_seconds())
    return wall, wall if calendar is None else business_seconds_between(calendar, start, end)
