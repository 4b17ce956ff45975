"""Quick replies: saved answers an agent inserts with a shortcut, per tenant, per queue or personal, with
variables (``{{contact.name}}``, ``{{agent.first_name}}``, ``{{greeting}}`` ... see
:mod:`saas.automation.templates`) filled in for the ticket at hand.

Who sees which: tenant replies everyone, queue replies the queue's members, personal ones their owner (admins
see every shared one). Anyone manages their personal replies; tenant and queue replies are managed by admins,
and by supervisors for the queues they belong to.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

import asyncpg
import msgspec

from saas.auth.guards import PermissionDenied
from saas.auth.principal import Principal
from saas.automation.templates import check_template, first_name, greeting_for, render
from saas.params import RowId
from saas.queues.service import QueueNotFound
from saas.tickets.service import get_ticket
from saas.workspace.service import load_settings
from tenants.context import TenantSession
from tenants.errors import Conflict, InvalidInput, NotFound

__all__ = ["QuickReplyIn", "QuickReplyOut", "QuickReplyUpdate", "RenderedReply", "create_reply", "delete_reply",
           "list_replies", "render_for_ticket", "update_reply"]  # fmt: skip

Scope = Literal["tenant", "queue", "user"]
Shortcut = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
Body = Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]


class QuickReplyIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    shortcut: Shortcut
    body: Body
    scope: Scope = "user"
    queue_id: RowId | None = None


class QuickReplyUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    shortcut: Shortcut | msgspec.UnsetType = msgspec.UNSET
    body: Body | msgspec.UnsetType = msgspec.UNSET


class QuickReplyOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    shortcut: str
    body: str
    scope: str
    queue_id: int | None
    user_id: int | None
    created_at: datetime
    updated_at: datetime


class RenderedReply(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    shortcut: str
    scope: str
    text: str  # the body with the ticket's values filled in


class QuickReplyNotFound(NotFound):
    code = "quick_reply_not_found"
    title = "Quick reply not found"


_COLUMNS = "id, shortcut, body, scope, queue_id, user_id, created_at, updated_at"
_VISIBLE = """(q.scope = 'tenant' OR (q.scope = 'user' AND q.user_id = $1)
               OR (q.scope = 'queue' AND ($2 OR q.queue_id IN (SELECT queue_id FROM queue_members WHERE user_id = $1))))"""


async def list_replies(session: TenantSession, viewer: Principal) -> list[QuickReplyOut]:
    rows = await session.conn.fetch(
        f"SELECT {_COLUMNS} FROM quick_replies q WHERE {_VISIBLE} ORDER BY shortcut, scope, id",
        viewer.user_id, viewer.role == "admin",
    )  # fmt: skip
    return [QuickReplyOut(**dict(r)) for r in rows]


def _check_body(body: str) -> None:
    try:
        check_template(body)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="body") from exc


async def _may_manage(session: TenantSession, viewer: Principal, scope: str, queue_id: int | None,
                      owner: int | None) -> None:  # fmt: skip
    if scope == "user":
        if owner is not None and owner != viewer.user_id:
            raise PermissionDenied("personal quick replies belong to their owner")
        return
    if viewer.role == "admin":
        return
    if (
        viewer.role == "supervisor"
        and scope == "queue"
        and await session.conn.fetchval(
            "SELECT 1 FROM queue_members WHERE queue_id = $1 AND user_id = $2", queue_id, viewer.user_id
        )
    ):
        return
    raise PermissionDenied("shared quick replies are managed by admins (and supervisors, for their queues)")


async def create_reply(session: TenantSession, data: QuickReplyIn, viewer: Principal) -> QuickReplyOut:
    _check_body(data.body)
    if (data.scope == "queue") != (data.queue_id is not None):
        raise InvalidInput("queue_id is required for scope 'queue' and only allowed there", field="queue_id")
    if data.queue_id is not None and not await session.conn.fetchval("SELECT 1 FROM queues WHERE id = $1",
                                                                     data.queue_id):  # fmt: skip
        raise QueueNotFound(f"queue {data.queue_id} does not exist", field="queue_id")
    await _may_manage(session, viewer, data.scope, data.queue_id, None)
    try:
        row = await session.conn.fetchrow(
            f"INSERT INTO quick_replies (shortcut, body, scope, queue_id, user_id, created_by)"
            f" VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_COLUMNS}",
            data.shortcut, data.body, data.scope, data.queue_id, viewer.user_id if data.scope == "user" else None,
            viewer.user_id,
        )  # fmt: skip
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(f"/{data.shortcut} already exists in that scope", field="shortcut") from exc
    assert row is not None
    return QuickReplyOut(**dict(row))


async def _get(session: TenantSession, reply_id: int, viewer: Principal) -> asyncpg.Record:
    row = await session.conn.fetchrow(
        f"SELECT {_COLUMNS} FROM quick_replies q WHERE id = $3 AND {_VISIBLE}",
        viewer.user_id, viewer.role == "admin", reply_id,
    )  # fmt: skip
    if row is None:
        raise QuickReplyNotFound(f"quick reply {reply_id} does not exist", quick_reply_id=reply_id)
    return row


async def update_reply(
    session: TenantSession, reply_id: int, data: QuickReplyUpdate, viewer: Principal
) -> QuickReplyOut:
    row = await _get(session, reply_id, viewer)
    await _may_manage(session, viewer, row["scope"], row["queue_id"], row["user_id"])
    if data.body is not msgspec.UNSET:
        _check_body(data.body)
    try:
        updated = await session.conn.fetchrow(
            f"UPDATE quick_replies SET shortcut = coalesce($2, shortcut), body = coalesce($3, body), updated_at = now()"
            f" WHERE id = $1 RETURNING {_COLUMNS}",
            reply_id, None if data.shortcut is msgspec.UNSET else data.shortcut,
            None if data.body is msgspec.UNSET else data.body,
        )  # fmt: skip
    except asyncpg.UniqueViolationError as exc:
        raise Conflict("that shortcut already exists in this scope", field="shortcut") from exc
    assert updated is not None
    return QuickReplyOut(**dict(updated))


async def delete_reply(session: TenantSession, reply_id: int, viewer: Principal) -> None:
    row = await _get(session, reply_id, viewer)
    await _may_manage(session, viewer, row["scope"], row["queue_id"], row["user_id"])
    await session.conn.execute("DELETE FROM quick_replies WHERE id = $1", reply_id)


async def render_for_ticket(session: TenantSession, ticket_id: int, viewer: Principal, *,
                            now: datetime) -> list[RenderedReply]:  # fmt: skip
    """The caller's quick replies with this ticket's values filled in (personal first, then queue, tenant)."""
    ticket = await get_ticket(session, ticket_id, viewer)
    settings = await load_settings(session.conn)
    names = await session.conn.fetchrow(
        "SELECT (SELECT name FROM queues WHERE id = $1) AS queue, (SELECT name FROM connections WHERE id = $2) AS conn",
        ticket.queue_id, ticket.connection_id,
    )  # fmt: skip
    assert names is not None
    values = {
        "contact.name": ticket.contact.name,
        "contact.first_name": first_name(ticket.contact.name),
        "contact.phone": ticket.contact.phone,
        "agent.name": viewer.name,
        "agent.first_name": first_name(viewer.name),
        "ticket.number": str(ticket.number),
        "queue.name": names["queue"],
        "connection.name": names["conn"],
        "greeting": greeting_for(now.astimezone(ZoneInfo(settings.timezone)).time()),
    }
    order = {"user": 0, "queue": 1, "tenant": 2}
    replies = [r for r in await list_replies(session, viewer) if r.scope != "queue" or r.queue_id == ticket.queue_id]
    replies.sort(key=lambda r: (order[r.scope], r.shortcut))
    return [RenderedReply(id=r.id, shortcut=r.shortcut, scope=r.scope, text=render(r.body, values)) for r in replies]
