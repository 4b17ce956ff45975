"""What agents do to tickets: reply, accept, assign, transfer, close, reopen, prioritise, snooze, tag, note, read.

Each action runs in the caller's tenant transaction, finds the ticket through the visibility rule (another
tenant's or an invisible ticket is a 404), locks it, changes it, writes its activity log, and returns the ticket
plus the :class:`saas.effects.Effects` to apply around the commit (realtime events, outbox, timers). Actions that
free or fill an agent's capacity, or put a ticket in an automatic queue, run distribution in the same
transaction. Service metrics (waiting, first response, resolution; wall clock and business hours) are recorded
when their moment happens.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import msgspec

from saas.auth.principal import Principal
from saas.connections.service import ConnectionNotFound
from saas.effects import Effects
from saas.links import replace_links
from saas.queues.assign import distribute_queues, queues_of_user
from saas.queues.service import QueueNotFound
from saas.tickets.lifecycle import (
    MESSAGE_COLUMNS,
    Calendars,
    elapsed,
    fetch_tickets,
    insert_outgoing,
    log_event,
    message_event,
    message_from_row,
    one_active_ticket,
    preview_of,
    ticket_event,
)
from saas.tickets.rules import priority_rank
from saas.tickets.schemas import CloseTicket, MessageOut, ReopenTicket, TicketOut, TicketUpdate, TransferTicket
from saas.tickets.service import TicketNotFound, visibility, visible_sql
from saas.users.service import UserNotFound
from saas.workspace.schemas import WorkspaceSettings
from saas.workspace.service import load_settings
from supervisor.wire import utcnow
from tenants.context import TenantSession
from tenants.errors import Conflict, InvalidInput

__all__ = [
    "ContactBlocked",
    "TicketClosed",
    "accept",
    "add_note",
    "assign",
    "close",
    "mark_read",
    "reopen",
    "reply",
    "set_tags",
    "transfer",
    "update",
]

MAX_SNOOZE = timedelta(days=365)


class TicketClosed(Conflict):
    code = "ticket_closed"
    title = "Ticket closed"


class TicketNotClosed(Conflict):
    code = "ticket_not_closed"
    title = "Ticket is not closed"


class ContactBlocked(Conflict):
    code = "contact_blocked"
    title = "Contact blocked"


class UserUnavailable(InvalidInput):
    code = "user_unavailable"
    title = "User cannot take tickets"


_LOCK = """
SELECT t.id, t.status, t.user_id, t.queue_id, t.connection_id, t.contact_id, t.created_at, t.reopened_at,
       t.accepted_at, t.first_response_at, t.wait_s, c.blocked_at IS NOT NULL AS blocked, c.is_group
FROM tickets t JOIN contacts c ON c.id = t.contact_id
WHERE t.id = $1 AND {visible}
FOR UPDATE OF t
"""


async def _lock(session: TenantSession, ticket_id: int, viewer: Principal) -> asyncpg.Record:
    row = await session.conn.fetchrow(_LOCK.format(visible=visible_sql(2, 3)), ticket_id, *visibility(viewer))
    if row is None:
        raise TicketNotFound(f"ticket {ticket_id} does not exist", ticket_id=ticket_id)
    return row


def _was(row: asyncpg.Record) -> dict[str, Any]:
    return {"user_id": row["user_id"], "queue_id": row["queue_id"]}


async def _user(session: TenantSession, user_id: int) -> asyncpg.Record:
    row = await session.conn.fetchrow(
        "SELECT id, name, active, password_hash IS NOT NULL AS accepted FROM users WHERE id = $1", user_id
    )
    if row is None:
        raise UserNotFound(f"user {user_id} does not exist", field="user_id")
    if not row["active"] or not row["accepted"]:
        raise UserUnavailable(f"user {user_id} is disabled or has not accepted the invitation", field="user_id")
    return row


class _Change:
    """Accumulates one action's ticket ids, ``was`` snapshots and effects, then builds the events."""

    def __init__(self, session: TenantSession, now: datetime) -> None:
        self.session = session
        self.now = now
        self.effects = Effects()
        self.tickets: dict[int, dict[str, Any] | None] = {}
        self._settings: WorkspaceSettings | None = None
        self._calendars: Calendars | None = None
        self._distribute: set[int] = set()

    async def settings(self) -> WorkspaceSettings:
        """The tenant's settings, read once per action."""
        if self._settings is None:
            self._settings = await load_settings(self.session.conn)
        return self._settings

    async def calendars_(self) -> Calendars:
        if self._calendars is None:
            self._calendars = Calendars(self.session.conn, await self.settings())
        return self._calendars

    async def since_start(self, row: asyncpg.Record) -> tuple[float, float | None]:
        """Time since the ticket's (re)opening, on the wall clock and in its queue's business hours: the base of
        the waiting, first response and resolution metrics."""
        calendar = await (await self.calendars_()).for_queue(row["queue_id"])
        return elapsed(row["reopened_at"] or row["created_at"], self.now, calendar)

    def touch(self, ticket_id: int, was: dict[str, Any] | None = None) -> None:
        if was is not None or ticket_id not in self.tickets:
            self.tickets[ticket_id] = was if was is not None else self.tickets.get(ticket_id)

    def distribute(self, *queue_ids: int | None) -> None:
        self._distribute |= {q for q in queue_ids if q is not None}

    async def distribute_freed(self, user_id: int | None) -> None:
        """The agent has one ticket less: their automatic queues may give them another."""
        if user_id is not None:
            self.distribute(*await queues_of_user(self.session.conn, user_id))

    async def finish(self, ticket_id: int) -> TicketOut:
        if self._distribute:
            done = await distribute_queues(self.session.conn, self.session.tenant.id, self._distribute, now=self.now,
                                           calendars=await self.calendars_())  # fmt: skip
            self.effects.timers += done.retries(self.now)
            for ticket_id, before in done.was().items():
                self.touch(ticket_id, self.tickets.get(ticket_id) or before)
        self.touch(ticket_id)
        result = None
        for ticket in await fetch_tickets(self.session.conn, self.tickets):
            self.effects.events.append(ticket_event(ticket, was=self.tickets.get(ticket.id)))
            if ticket.id == ticket_id:
                result = ticket
        assert result is not None
        return result


async def _metric_accept(change: _Change, row: asyncpg.Record) -> tuple[float | None, float | None]:
    """Waiting time, recorded the first time an agent takes the ticket."""
    if row["wait_s"] is not None:
        return None, None
    return await change.since_start(row)


async def _take(change: _Change, row: asyncpg.Record, user_id: int, *, actor_id: int, action: str) -> None:
    wait, wait_bh = await _metric_accept(change, row)
    await change.session.conn.execute(
        """
        UPDATE tickets SET user_id = $2, status = 'open', bot_state = NULL, accepted_at = coalesce(accepted_at, $3),
               wait_s = coalesce(wait_s, $4), wait_bh_s = coalesce(wait_bh_s, $5), updated_at = now()
        WHERE id = $1
        """,
        row["id"], user_id, change.now, wait, wait_bh,
    )  # fmt: skip
    await log_event(change.session.conn, row["id"], action, actor_id=actor_id,
                    details={"user_id": user_id, "previous_user_id": row["user_id"]})  # fmt: skip
    change.touch(row["id"], _was(row))
    if row["user_id"] not in (None, user_id):
        await change.distribute_freed(row["user_id"])


async def accept(session: TenantSession, ticket_id: int, viewer: Principal) -> tuple[TicketOut, Effects]:
    """The caller takes the ticket (from the pending list, or — supervisors and admins — from another agent)."""
    change = _Change(session, utcnow())
    row = await _lock(session, ticket_id, viewer)
    if row["status"] == "closed":
        raise TicketClosed(f"ticket {ticket_id} is closed; reopen it first", ticket_id=ticket_id)
    if row["user_id"] != viewer.user_id or row["status"] != "open":
        await _take(change, row, viewer.user_id, actor_id=viewer.user_id, action="accepted")
    return await change.finish(ticket_id), change.effects


async def assign(session: TenantSession, ticket_id: int, user_id: int, viewer: Principal) -> tuple[TicketOut, Effects]:
    """Give the ticket to ``user_id`` (any active user who accepted the invitation): a deliberate handover, so
    the assignee need not be in the ticket's queue — the ticket is theirs and they see it as assigned to them."""
    change = _Change(session, utcnow())
    row = await _lock(session, ticket_id, viewer)
    if row["status"] == "closed":
        raise TicketClosed(f"ticket {ticket_id} is closed; reopen it first", ticket_id=ticket_id)
    await _user(session, user_id)
    if row["user_id"] != user_id or row["status"] != "open":
        await _take(change, row, user_id, actor_id=viewer.user_id, action="assigned")
    return await change.finish(ticket_id), change.effects


async def transfer(session: TenantSession, ticket_id: int, data: TransferTicket,
                   viewer: Principal) -> tuple[TicketOut, Effects]:  # fmt: skip
    """Move the ticket to another queue, agent and/or connection; its history stays whole (messages keep the
    connection they travelled on, the ticket sends through its new one)."""
    if data.queue_id is msgspec.UNSET and data.user_id is msgspec.UNSET and data.connection_id is msgspec.UNSET:
        raise InvalidInput("name a queue_id, user_id or connection_id to transfer to")
    change = _Change(session, utcnow())
    conn = session.conn
    row = await _lock(session, ticket_id, viewer)
    if row["status"] == "closed":
        raise TicketClosed(f"ticket {ticket_id} is closed; reopen it first", ticket_id=ticket_id)
    queue_id = row["queue_id"] if data.queue_id is msgspec.UNSET else data.queue_id
    if (queue_id is not None and queue_id != row["queue_id"]
            and not await conn.fetchval("SELECT 1 FROM queues WHERE id = $1", queue_id)):  # fmt: skip
        raise QueueNotFound(f"queue {queue_id} does not exist", field="queue_id")
    user_id: int | None
    if data.user_id is not msgspec.UNSET:
        user_id = data.user_id
    elif data.queue_id is not msgspec.UNSET and queue_id != row["queue_id"]:
        user_id = None  # a new queue: it waits there for whoever takes it
    else:
        user_id = row["user_id"]
    if user_id is not None and user_id != row["user_id"]:
        await _user(session, user_id)
    connection_id = row["connection_id"] if data.connection_id is msgspec.UNSET else data.connection_id
    if connection_id != row["connection_id"] and not await conn.fetchval(
        "SELECT 1 FROM connections WHERE id = $1", connection_id
    ):
        raise ConnectionNotFound(f"connection {connection_id} does not exist", field="connection_id")
    wait, wait_bh = (await _metric_accept(change, row)) if user_id is not None else (None, None)
    async with one_active_ticket(f"the contact already has an active ticket on connection {connection_id}",
                                 field="connection_id"):  # fmt: skip
        await conn.execute(
            """
            UPDATE tickets SET queue_id = $2, user_id = $3, connection_id = $4,
                   status = CASE WHEN $3::bigint IS NULL THEN 'pending' ELSE 'open' END, bot_state = NULL,
                   queue_entered_at = CASE WHEN queue_id IS DISTINCT FROM $2 THEN $5 ELSE queue_entered_at END,
                   accepted_at = CASE WHEN $3::bigint IS NULL THEN accepted_at ELSE coalesce(accepted_at, $5) END,
                   wait_s = coalesce(wait_s, $6), wait_bh_s = coalesce(wait_bh_s, $7), updated_at = now()
            WHERE id = $1
            """,
            ticket_id, queue_id, user_id, connection_id, change.now, wait, wait_bh,
        )  # fmt: skip
    await log_event(conn, ticket_id, "transferred", actor_id=viewer.user_id, details={
        "from": {"queue_id": row["queue_id"], "user_id": row["user_id"], "connection_id": row["connection_id"]},
        "to": {"queue_id": queue_id, "user_id": user_id, "connection_id": connection_id}})  # fmt: skip
    if data.note:
        note = await insert_outgoing(conn, ticket_id=ticket_id, connection_id=connection_id, text=data.note,
                                     user_id=viewer.user_id, private=True)  # fmt: skip
        change.effects.events.append(message_event(note))
    change.touch(ticket_id, _was(row))
    if user_id is None:
        change.distribute(queue_id)
    if row["user_id"] is not None and row["user_id"] != user_id:
        await change.distribute_freed(row["user_id"])
    return await change.finish(ticket_id), change.effects


async def close(
    session: TenantSession, ticket_id: int, data: CloseTicket, viewer: Principal
) -> tuple[TicketOut, Effects]:
    """Close the ticket: the farewell (if any) and the satisfaction survey (if on) go to the customer."""
    change = _Change(session, utcnow())
    conn = session.conn
    row = await _lock(session, ticket_id, viewer)
    if row["status"] == "closed":
        raise TicketClosed(f"ticket {ticket_id} is already closed", ticket_id=ticket_id)
    settings = await change.settings()
    # A group gets no survey, and the tenant's farewell only when staff write one for it in the close itself.
    farewell = ("" if row["is_group"] else settings.farewell_message) if data.farewell is None else data.farewell
    survey = (settings.csat_enabled if data.survey is None else data.survey) and not row["is_group"]
    if row["blocked"]:
        farewell, survey = "", False
    if farewell:
        message = await insert_outgoing(conn, ticket_id=ticket_id, connection_id=row["connection_id"], text=farewell,
                                        user_id=viewer.user_id, bot=True)  # fmt: skip
        change.effects.events.append(message_event(message))
        change.effects.outbox.append(message.id)
    if survey:
        await conn.execute(
            "UPDATE csat_surveys SET state = 'expired' WHERE contact_id = $1 AND connection_id = $2 AND state = 'asked'",
            row["contact_id"], row["connection_id"],
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO csat_surveys (ticket_id, contact_id, connection_id, user_id, queue_id, asked_at, expires_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)",
            ticket_id, row["contact_id"], row["connection_id"], row["user_id"] or viewer.user_id, row["queue_id"],
            change.now, change.now + timedelta(seconds=settings.csat_window_s),
        )  # fmt: skip
        prompt = await insert_outgoing(conn, ticket_id=ticket_id, connection_id=row["connection_id"],
                                       text=settings.csat_prompt, bot=True)  # fmt: skip
        change.effects.events.append(message_event(prompt))
        change.effects.outbox.append(prompt.id)
    resolution, resolution_bh = await change.since_start(row)
    last_text = settings.csat_prompt if survey else farewell
    await conn.execute(
        """
        UPDATE tickets SET status = 'closed', closed_at = $2, closed_by = $3, waiting_since = NULL,
               snoozed_until = NULL, bot_state = NULL, unread_count = 0, resolution_s = $4, resolution_bh_s = $5,
               last_message_at = CASE WHEN $6::text <> '' THEN $2 ELSE last_message_at END,
               last_message_preview = CASE WHEN $6::text <> '' THEN $6 ELSE last_message_preview END,
               updated_at = now()
        WHERE id = $1
        """,
        ticket_id, change.now, viewer.user_id, resolution, resolution_bh, preview_of(last_text, "text") if last_text else "",
    )  # fmt: skip
    await log_event(conn, ticket_id, "closed", actor_id=viewer.user_id,
                    details={"farewell": bool(farewell), "survey": bool(survey)})  # fmt: skip
    change.touch(ticket_id, _was(row))
    await change.distribute_freed(row["user_id"])
    return await change.finish(ticket_id), change.effects


async def reopen(
    session: TenantSession, ticket_id: int, data: ReopenTicket, viewer: Principal
) -> tuple[TicketOut, Effects]:
    change = _Change(session, utcnow())
    conn = session.conn
    row = await _lock(session, ticket_id, viewer)
    if row["status"] != "closed":
        raise TicketNotClosed(f"ticket {ticket_id} is not closed", ticket_id=ticket_id)
    user_id = viewer.user_id if data.assign_to_me else None
    async with one_active_ticket("the contact already has an active ticket on this connection; continue there"):
        await conn.execute(
            """
            UPDATE tickets SET status = CASE WHEN $2::bigint IS NULL THEN 'pending' ELSE 'open' END, user_id = $2,
                   closed_at = NULL, closed_by = NULL, reopened_at = $3, reopened_count = reopened_count + 1,
                   accepted_at = CASE WHEN $2::bigint IS NULL THEN accepted_at ELSE coalesce(accepted_at, $3) END,
                   updated_at = now()
            WHERE id = $1
            """,
            ticket_id, user_id, change.now,
        )  # fmt: skip
    await conn.execute("UPDATE csat_surveys SET state = 'expired' WHERE ticket_id = $1 AND state = 'asked'", ticket_id)
    await log_event(conn, ticket_id, "reopened", actor_id=viewer.user_id, details={"by": "agent", "user_id": user_id})
    change.touch(ticket_id, _was(row))
    if user_id is None:
        change.distribute(row["queue_id"])
    return await change.finish(ticket_id), change.effects


async def update(
    session: TenantSession, ticket_id: int, data: TicketUpdate, viewer: Principal
) -> tuple[TicketOut, Effects]:
    """Priority and snooze."""
    change = _Change(session, utcnow())
    conn = session.conn
    row = await _lock(session, ticket_id, viewer)
    if data.priority is not msgspec.UNSET:
        rank = priority_rank(data.priority)
        await conn.execute("UPDATE tickets SET priority = $2, updated_at = now() WHERE id = $1", ticket_id, rank)
        await log_event(conn, ticket_id, "priority", actor_id=viewer.user_id, details={"priority": data.priority})
    if data.snoozed_until is not msgspec.UNSET:
        until = data.snoozed_until
        if until is not None:
            if until.tzinfo is None:
                raise InvalidInput("snoozed_until needs a time zone (e.g. 2026-12-03T09:00:00-03:00)",
                                   field="snoozed_until")  # fmt: skip
            if row["status"] == "closed":
                raise TicketClosed(f"ticket {ticket_id} is closed; a closed ticket cannot be snoozed")
            if not change.now < until <= change.now + MAX_SNOOZE:
                raise InvalidInput("snoozed_until must be in the future, at most a year ahead", field="snoozed_until")
            change.effects.timers.append(("snooze", str(ticket_id), until))
        await conn.execute("UPDATE tickets SET snoozed_until = $2, updated_at = now() WHERE id = $1", ticket_id, until)
        await log_event(conn, ticket_id, "snoozed" if until else "woke", actor_id=viewer.user_id,
                        details={"until": until.isoformat() if until else None})  # fmt: skip
        if until is None and row["user_id"] is None:
            change.distribute(row["queue_id"])
    change.touch(ticket_id)
    return await change.finish(ticket_id), change.effects


async def set_tags(
    session: TenantSession, ticket_id: int, tag_ids: list[int], viewer: Principal
) -> tuple[TicketOut, Effects]:
    change = _Change(session, utcnow())
    conn = session.conn
    await _lock(session, ticket_id, viewer)
    wanted = await replace_links(conn, "ticket_tags", ("ticket_id", ticket_id), ("tag_id", "tags"), tag_ids,
                                 field="tag_ids")  # fmt: skip
    await log_event(conn, ticket_id, "tagged", actor_id=viewer.user_id, details={"tag_ids": wanted})
    change.touch(ticket_id)
    return await change.finish(ticket_id), change.effects


async def mark_read(session: TenantSession, ticket_id: int, viewer: Principal) -> tuple[TicketOut, Effects]:
    change = _Change(session, utcnow())
    row = await _lock(session, ticket_id, viewer)
    status = await session.conn.execute("UPDATE tickets SET unread_count = 0 WHERE id = $1 AND unread_count <> 0",
                                        row["id"])  # fmt: skip
    ticket = await change.finish(ticket_id)
    if status == "UPDATE 0":  # nothing was unread: nothing to tell the inbox
        change.effects.events.clear()
    return ticket, change.effects


async def add_note(session: TenantSession, ticket_id: int, text: str, viewer: Principal, *,
                   client_id: uuid.UUID | None = None) -> tuple[MessageOut, Effects]:  # fmt: skip
    """A private note in the conversation: seen by staff, never sent to the customer."""
    effects = Effects()
    row = await _lock(session, ticket_id, viewer)
    existing = await _existing(session, client_id, ticket_id)
    if existing is not None:
        return existing, effects
    note = await insert_outgoing(session.conn, ticket_id=ticket_id, connection_id=row["connection_id"], text=text,
                                 user_id=viewer.user_id, private=True, client_id=client_id)  # fmt: skip
    effects.events.append(message_event(note))
    return note, effects


async def _existing(session: TenantSession, client_id: uuid.UUID | None, ticket_id: int) -> MessageOut | None:
    if client_id is None:
        return None
    existing = await session.conn.fetchrow(
        f"SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.client_id = $1", client_id
    )
    if existing is None:
        return None
    if existing["ticket_id"] != ticket_id:
        raise InvalidInput("client_id was already used for another ticket", field="client_id")
    return message_from_row(existing)


async def reply(
    session: TenantSession,
    ticket_id: int,
    viewer: Principal,
    *,
    text: str | None,
    client_id: uuid.UUID | None,
    kind: str = "text",
    media: dict[str, Any] | None = None,
) -> tuple[MessageOut, Effects]:
    """An agent's message to the customer, stored QUEUED with its outbox entry (the session sends it).

    A repeated ``client_id`` returns the first message instead of queueing it twice. The first reply takes an
    unassigned ticket, ends the chatbot, records the first response time, and the customer is no longer waiting.
    """
    change = _Change(session, utcnow())
    row = await _lock(session, ticket_id, viewer)
    existing = await _existing(session, client_id, ticket_id)
    if existing is not None:
        return existing, change.effects
    if row["status"] == "closed":
        raise TicketClosed(f"ticket {ticket_id} is closed; reopen it to reply", ticket_id=ticket_id)
    if row["blocked"]:
        raise ContactBlocked("the contact is blocked; unblock it to reply")
    message = await insert_outgoing(session.conn, ticket_id=ticket_id, connection_id=row["connection_id"], text=text,
                                    user_id=viewer.user_id, client_id=client_id, kind=kind, media=media)  # fmt: skip
    first = await change.since_start(row) if row["first_response_at"] is None else (None, None)
    wait, wait_bh = await _metric_accept(change, row) if row["user_id"] is None else (None, None)
    await session.conn.execute(
        """
        UPDATE tickets SET last_message_at = $2, last_message_preview = $3, unread_count = 0, waiting_since = NULL,
               status = 'open', user_id = coalesce(user_id, $4), bot_state = NULL,
               accepted_at = coalesce(accepted_at, $2), wait_s = coalesce(wait_s, $5), wait_bh_s = coalesce(wait_bh_s, $6),
               first_response_at = coalesce(first_response_at, $2),
               first_response_s = coalesce(first_response_s, $7), first_response_bh_s = coalesce(first_response_bh_s, $8),
               updated_at = now()
        WHERE id = $1
        """,
        ticket_id, change.now, preview_of(text, kind), viewer.user_id, wait, wait_bh, first[0], first[1],
    )  # fmt: skip
    if row["user_id"] is None:
        await log_event(session.conn, ticket_id, "accepted", actor_id=viewer.user_id,
                        details={"user_id": viewer.user_id, "by": "reply"})  # fmt: skip
    change.effects.events.append(message_event(message))
    change.effects.outbox.append(message.id)
    change.touch(ticket_id, _was(row) if row["user_id"] is None else None)
    await change.finish(ticket_id)
    return message, change.effects
