"""Ticket and message queries and the agent's send. Callers pass an open tenant session (one transaction)."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Any

import asyncpg

from saas.auth.principal import Principal
from saas.tickets.schemas import ContactOut, MessageOut, MessagePage, TicketOut, TicketPage
from supervisor.realtime import RealtimeEvent
from tenants.context import TenantSession
from tenants.errors import InvalidInput, NotFound

__all__ = ["TicketNotFound", "list_messages", "list_tickets", "queue_text"]

STATUSES = ("pending", "open", "closed")


def visibility(viewer: Principal | None) -> tuple[str, int]:
    """(scope, user id) for :func:`visible_sql`: ``all`` for admins and integrations (and internal callers)."""
    if viewer is None or viewer.role not in ("agent", "supervisor"):
        return "all", 0
    return viewer.role, viewer.user_id


def visible_sql(scope: int, user: int, alias: str = "t") -> str:
    """THE ticket visibility rule, as SQL over ``alias`` with the scope and user id in parameters ``$scope``/``$user``.

    Admins see everything. Agents see tickets assigned to them, and unassigned ones that wait in one of their
    queues or in no queue yet. Supervisors see their queues, tickets in no queue, and their own.
    """
    mine = f"(SELECT queue_id FROM queue_members WHERE user_id = ${user}::bigint)"
    return (
        f"(${scope}::text = 'all' OR {alias}.user_id = ${user}::bigint"
        f" OR (${scope}::text = 'agent' AND {alias}.user_id IS NULL"
        f" AND ({alias}.queue_id IS NULL OR {alias}.queue_id IN {mine}))"
        f" OR (${scope}::text = 'supervisor' AND ({alias}.queue_id IS NULL OR {alias}.queue_id IN {mine})))"
    )


class TicketNotFound(NotFound):
    code = "ticket_not_found"
    title = "Ticket not found"


def _cursor(*parts: object) -> str:
    return base64.urlsafe_b64encode("|".join(str(p) for p in parts).encode()).decode()


def _uncursor(cursor: str, count: int) -> list[str]:
    try:
        parts = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("invalid cursor", field="cursor") from exc
    if len(parts) != count:
        raise InvalidInput("invalid cursor", field="cursor")
    return parts


_TICKET_COLUMNS = """
    t.id, t.number, t.status, t.connection_id, t.user_id, t.queue_id, t.unread_count, t.last_message_at, t.last_message_preview,
    t.created_at, t.updated_at, c.id AS contact_id, coalesce(c.name, c.push_name) AS contact_name, c.phone, c.wa_id
"""


def _ticket(row: asyncpg.Record) -> TicketOut:
    return TicketOut(
        id=row["id"], number=row["number"], status=row["status"], connection_id=row["connection_id"],
        queue_id=row["queue_id"],
        user_id=row["user_id"], unread_count=row["unread_count"], last_message_at=row["last_message_at"],
        last_message_preview=row["last_message_preview"], created_at=row["created_at"], updated_at=row["updated_at"],
        contact=ContactOut(id=row["contact_id"], name=row["contact_name"], phone=row["phone"], wa_id=row["wa_id"]),
    )  # fmt: skip


async def list_tickets(
    session: TenantSession, *, status: str | None, limit: int, cursor: str | None, viewer: Principal | None = None
) -> TicketPage:
    """Newest activity first; keyset pagination on (last activity, id)."""
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}", field="status")
    after_at: datetime | None = None
    after_id: int | None = None
    if cursor:
        at, ident = _uncursor(cursor, 2)
        try:
            after_at, after_id = datetime.fromisoformat(at), int(ident)
        except ValueError as exc:
            raise InvalidInput("invalid cursor", field="cursor") from exc
    rows = await session.conn.fetch(
        f"""
        SELECT {_TICKET_COLUMNS} FROM tickets t JOIN contacts c ON c.id = t.contact_id
        WHERE ($1::text IS NULL OR t.status = $1) AND {visible_sql(5, 6)}
          AND ($2::timestamptz IS NULL OR (coalesce(t.last_message_at, t.created_at), t.id) < ($2, $3))
        ORDER BY coalesce(t.last_message_at, t.created_at) DESC, t.id DESC
        LIMIT $4
        """,
        status, after_at, after_id, limit + 1, *visibility(viewer),
    )  # fmt: skip
    items = [_ticket(r) for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        next_cursor = _cursor((last.last_message_at or last.created_at).isoformat(), last.id)
    return TicketPage(items=items, next_cursor=next_cursor)


async def get_ticket(session: TenantSession, ticket_id: int, viewer: Principal | None = None) -> TicketOut:
    row = await session.conn.fetchrow(
        f"SELECT {_TICKET_COLUMNS} FROM tickets t JOIN contacts c ON c.id = t.contact_id WHERE t.id = $1"
        f" AND {visible_sql(2, 3)}",
        ticket_id, *visibility(viewer),
    )  # fmt: skip
    if row is None:
        raise TicketNotFound(f"ticket {ticket_id} does not exist", ticket_id=ticket_id)
    return _ticket(row)


_MESSAGE_COLUMNS = """id, ticket_id, from_me, kind, body AS text, status, sender_name, user_id, provider_message_id,
                      error_code, error_title, client_id, occurred_at, created_at"""


async def list_messages(
    session: TenantSession, ticket_id: int, *, limit: int, cursor: str | None, viewer: Principal | None = None
) -> MessagePage:
    """The latest ``limit`` messages before the cursor, oldest first; ``next_cursor`` pages further back."""
    await get_ticket(session, ticket_id, viewer)
    before = int(_uncursor(cursor, 1)[0]) if cursor else None
    rows = await session.conn.fetch(
        f"""
        SELECT {_MESSAGE_COLUMNS} FROM messages
        WHERE ticket_id = $1 AND ($2::bigint IS NULL OR id < $2)
        ORDER BY id DESC LIMIT $3
        """,
        ticket_id, before, limit + 1,
    )  # fmt: skip
    page = rows[:limit]
    items = [MessageOut(**dict(r)) for r in reversed(page)]
    return MessagePage(items=items, next_cursor=_cursor(page[-1]["id"]) if len(rows) > limit else None)


async def visible_tickets(session: TenantSession, ticket_ids: list[int], viewer: Principal) -> set[int]:
    """Which of ``ticket_ids`` the viewer may see (for filtering realtime events)."""
    rows = await session.conn.fetch(
        f"SELECT t.id FROM tickets t WHERE t.id = ANY($1::bigint[]) AND {visible_sql(2, 3)}",
        ticket_ids, *visibility(viewer),
    )  # fmt: skip
    return {r["id"] for r in rows}


async def queue_text(
    session: TenantSession,
    ticket_id: int,
    *,
    user_id: int,
    text: str,
    client_id: uuid.UUID | None,
    viewer: Principal | None = None,
) -> tuple[MessageOut, list[RealtimeEvent], bool]:
    """Store an agent's message as QUEUED with its outbox entry; returns (message, events, created).

    A repeated ``client_id`` returns the first message instead of queueing it twice.
    """
    ticket = await session.conn.fetchrow(
        f"SELECT t.id, t.connection_id, t.status FROM tickets t WHERE t.id = $1 AND {visible_sql(2, 3)} FOR UPDATE",
        ticket_id, *visibility(viewer),
    )  # fmt: skip
    if ticket is None:
        raise TicketNotFound(f"ticket {ticket_id} does not exist", ticket_id=ticket_id)
    if client_id is not None:
        existing = await session.conn.fetchrow(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE client_id = $1", client_id
        )
        if existing is not None:
            if existing["ticket_id"] != ticket_id:
                raise InvalidInput("client_id was already used for another ticket", field="client_id")
            return MessageOut(**dict(existing)), [], False
    row = await session.conn.fetchrow(
        f"""
        INSERT INTO messages (ticket_id, connection_id, client_id, from_me, kind, body, user_id, status, status_rank,
                              occurred_at)
        VALUES ($1, $2, $3, true, 'text', $4, $5, 'QUEUED', 0, now())
        RETURNING {_MESSAGE_COLUMNS}
        """,
        ticket_id, ticket["connection_id"], client_id, text, user_id,
    )  # fmt: skip
    assert row is not None
    await session.conn.execute(
        "INSERT INTO outbox (message_id, connection_id) VALUES ($1, $2)", row["id"], ticket["connection_id"]
    )
    updated = await session.conn.fetchrow(
        """
        UPDATE tickets SET last_message_at = now(), last_message_preview = left($2, 120), unread_count = 0,
               status = CASE WHEN status = 'pending' THEN 'open' ELSE status END,
               user_id = coalesce(user_id, $3), updated_at = now()
        WHERE id = $1 RETURNING id, status, unread_count, last_message_at, last_message_preview, user_id
        """,
        ticket_id, text, user_id,
    )  # fmt: skip
    assert updated is not None
    message = MessageOut(**dict(row))
    ticket_data: dict[str, Any] = {**dict(updated), "last_message_at": updated["last_message_at"].isoformat()}
    events = [
        RealtimeEvent(type="message.created", ticket_id=ticket_id, data=_message_event(message)),
        RealtimeEvent(type="ticket.updated", ticket_id=ticket_id, data=ticket_data),
    ]
    return message, events, True


def _message_event(message: MessageOut) -> dict[str, Any]:
    return {"id": message.id, "ticket_id": message.ticket_id, "from_me": message.from_me, "kind": message.kind,
            "text": message.text, "sender_name": message.sender_name, "status": message.status,
            "client_id": str(message.client_id) if message.client_id else None,
            "occurred_at": message.occurred_at.isoformat()}  # fmt: skip
