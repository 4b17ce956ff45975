"""Queues (departments): create within the plan's limit, rename, recolor, set members, delete; audited."""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec

from saas.audit.service import record
from saas.links import replace_links
from saas.queues.hours import HoursSpec, decode_hours, hours_json, to_calendar
from saas.queues.schemas import QueueIn, QueueOut, QueueUpdate
from saas.tickets.lifecycle import lock_distribution
from saas.workspace.service import load_settings
from tenants.context import TenantSession
from tenants.errors import Conflict, Forbidden, NotFound

__all__ = ["QueueNotFound", "create_queue", "delete_queue", "get_queue", "list_queues", "update_queue"]


class QueueNotFound(NotFound):
    code = "queue_not_found"
    title = "Queue not found"


class QueueLimitReached(Forbidden):
    code = "plan_limit_reached"
    title = "Plan limit reached"


_SELECT = """
SELECT q.id, q.name, q.color, q.greeting, q.created_at, q.strategy, q.return_on_offline, q.hours::text AS hours,
       q.out_of_hours_message,
       coalesce(array_agg(m.user_id ORDER BY m.user_id) FILTER (WHERE m.user_id IS NOT NULL), '{}') AS member_ids,
       coalesce((SELECT array_agg(qc.connection_id ORDER BY qc.connection_id) FROM queue_connections qc
                 WHERE qc.queue_id = q.id), '{}') AS connection_ids
FROM queues q LEFT JOIN queue_members m ON m.queue_id = q.id
"""


def _queue(row: asyncpg.Record) -> QueueOut:
    return QueueOut(**{**dict(row), "member_ids": list(row["member_ids"]), "hours": decode_hours(row["hours"]),
                       "connection_ids": list(row["connection_ids"])})  # fmt: skip


async def list_queues(session: TenantSession, *, member: int | None = None) -> list[QueueOut]:
    """Every queue, or only those ``member`` belongs to."""
    rows = await session.conn.fetch(
        _SELECT + " WHERE $1::bigint IS NULL OR q.id IN (SELECT queue_id FROM queue_members WHERE user_id = $1)"
        " GROUP BY q.id ORDER BY q.id",
        member,
    )
    return [_queue(r) for r in rows]


async def get_queue(session: TenantSession, queue_id: int) -> QueueOut:
    row = await session.conn.fetchrow(_SELECT + " WHERE q.id = $1 GROUP BY q.id", queue_id)
    if row is None:
        raise QueueNotFound(f"queue {queue_id} does not exist", queue_id=queue_id)
    return _queue(row)


async def _set_members(session: TenantSession, queue_id: int, member_ids: list[int]) -> None:
    await replace_links(session.conn, "queue_members", ("queue_id", queue_id), ("user_id", "users"), member_ids,
                        field="member_ids")  # fmt: skip


async def _set_connections(session: TenantSession, queue_id: int, connection_ids: list[int]) -> None:
    await replace_links(session.conn, "queue_connections", ("queue_id", queue_id), ("connection_id", "connections"),
                        connection_ids, field="connection_ids")  # fmt: skip


async def _check_hours(session: TenantSession, hours: HoursSpec | None) -> str | None:
    """Validate a queue's hours against the tenant's time zone (the default of the queue's own); returns JSON."""
    if hours is not None:
        to_calendar(hours, (await load_settings(session.conn)).timezone)
    return hours_json(hours)


async def create_queue(session: TenantSession, data: QueueIn, *, actor_id: int, origin: str | None) -> QueueOut:
    limit = await session.conn.fetchval(
        "SELECT p.max_queues FROM public.tenants t JOIN public.plans p ON p.id = t.plan_id WHERE t.id = $1",
        session.tenant.id,
    )
    if limit is not None and await session.conn.fetchval("SELECT count(*) FROM queues") >= limit:
        raise QueueLimitReached(f"the plan allows {limit} queue(s)", limit=limit)
    try:
        queue_id = await session.conn.fetchval(
            "INSERT INTO queues (name, color, greeting, strategy, return_on_offline, hours, out_of_hours_message)"
            " VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7) RETURNING id",
            data.name.strip(), data.color, data.greeting, data.strategy, data.return_on_offline,
            await _check_hours(session, data.hours), data.out_of_hours_message,
        )  # fmt: skip
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(f"a queue named {data.name!r} exists", field="name") from exc
    await _set_members(session, queue_id, data.member_ids)
    await _set_connections(session, queue_id, data.connection_ids)
    await record(session, actor_id=actor_id, action="queue.created", target=f"queue:{queue_id}",
                 details={"name": data.name, "members": sorted(set(data.member_ids))}, origin=origin)  # fmt: skip
    return await get_queue(session, queue_id)


async def update_queue(session: TenantSession, queue_id: int, data: QueueUpdate, *, actor_id: int,
                       origin: str | None) -> QueueOut:  # fmt: skip
    # Distribution writes the queue row (its round-robin cursor) under the distribution lock: take it first,
    # the order every writer keeps (see lock_distribution), or this update and a distribution deadlock.
    await lock_distribution(session.conn, session.tenant.id)
    await get_queue(session, queue_id)
    changes: dict[str, Any] = {k: v for k, v in msgspec.structs.asdict(data).items()
                               if v is not msgspec.UNSET and k not in ("member_ids", "connection_ids")}  # fmt: skip
    if "name" in changes:
        changes["name"] = changes["name"].strip()  # as on creation, so " Sales" cannot pass for another "Sales"
    if "hours" in changes:
        changes["hours"] = await _check_hours(session, changes["hours"])
    if changes:
        assignments = ", ".join(
            f"{column} = ${i + 2}" + ("::jsonb" if column == "hours" else "") for i, column in enumerate(changes)
        )  # columns from the schema
        try:
            await session.conn.execute(f"UPDATE queues SET {assignments} WHERE id = $1", queue_id, *changes.values())
        except asyncpg.UniqueViolationError as exc:
            raise Conflict("a queue with that name exists", field="name") from exc
    if data.member_ids is not msgspec.UNSET:
        await _set_members(session, queue_id, data.member_ids)
    if data.connection_ids is not msgspec.UNSET:
        await _set_connections(session, queue_id, data.connection_ids)
    await record(session, actor_id=actor_id, action="queue.updated", target=f"queue:{queue_id}",
                 details={k: ("changed" if k == "hours" else v) for k, v in msgspec.structs.asdict(data).items()
                          if v is not msgspec.UNSET},
                 origin=origin)  # fmt: skip
    return await get_queue(session, queue_id)


async def delete_queue(session: TenantSession, queue_id: int, *, actor_id: int, origin: str | None) -> None:
    """Delete a queue; its tickets go back to having no queue (visible to supervisors to route again).

    In the lock order (see lock_distribution): the queue's tickets (the delete sets their queue to NULL), then
    the distribution lock (distribution writes the queue row), then the queue row itself."""
    conn = session.conn
    await conn.execute("SELECT id FROM tickets WHERE queue_id = $1 ORDER BY id FOR UPDATE", queue_id)
    await lock_distribution(conn, session.tenant.id)
    deleted = await conn.fetchval("DELETE FROM queues WHERE id = $1 RETURNING id", queue_id)
    if deleted is None:
        raise QueueNotFound(f"queue {queue_id} does not exist", queue_id=queue_id)
    await record(session, actor_id=actor_id, action="queue.deleted", target=f"queue:{queue_id}", origin=origin)
