"""Agents' presence — online, away, offline — from the inbox WebSocket, and what distribution does about it.

Redis holds the truth about sockets: ``{p}:presence:{t<t>}:u<u>`` is a sorted set of the user's open sockets
scored by their last heartbeat, and ``{p}:presence:{due}`` scores every ``<tenant>:<user>`` by its latest
heartbeat so the router's sweep finds users whose inbox went silent. The database holds the *effective*
presence (``users.presence``), which distribution reads; :func:`reconcile` recomputes it from Redis under the
user's row lock, so a connect and a sweep racing each other always end with the state of the last one to look.

Coming online makes the agent's automatic queues distribute to them; going offline returns their open tickets
to queues that ask for it (``return_on_offline``) and distributes those to the others. ``away`` keeps tickets
(a short break) but takes the agent out of distribution.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

import asyncpg
from redis.asyncio import Redis

from saas.effects import Effects
from saas.queues.assign import distribute_with_events, queues_of_user
from saas.queues.distribution import returned_on_offline
from saas.tickets.lifecycle import Calendars, lock_distribution, log_event
from saas.workspace.service import load_settings
from supervisor.realtime import RealtimeEvent
from supervisor.streams import StreamKeys
from supervisor.wire import utcnow
from tenants.context import tenant_context
from tenants.errors import TenantNotFound, TenantSuspended

__all__ = ["PRESENCE_TIMEOUT_S", "connected", "disconnected", "heartbeat", "reconcile", "sweep_presence"]

PRESENCE_TIMEOUT_S = 60.0  # the inbox sends a heartbeat every 20 s
logger = logging.getLogger("atende.presence")


def _sockets_key(keys: StreamKeys, tenant_id: int, user_id: int) -> str:
    return f"{keys.prefix}:presence:{{t{tenant_id}}}:u{user_id}"


def _due_key(keys: StreamKeys) -> str:
    return f"{keys.prefix}:presence:{{due}}"


async def heartbeat(redis: Redis, keys: StreamKeys, tenant_id: int, user_id: int, socket_id: str) -> None:
    """A frame from an open socket. If the sweep had given the user up (their inbox was silent, a throttled
    background tab), the user comes back online now rather than at the next reconnect."""
    now = time.time()
    key = _sockets_key(keys, tenant_id, user_id)
    await redis.zadd(key, {socket_id: now})
    await redis.expire(key, int(PRESENCE_TIMEOUT_S * 10))
    if await redis.zadd(_due_key(keys), {f"{tenant_id}:{user_id}": now}):  # 1: the member was gone
        await reconcile(redis, keys, tenant_id, user_id)


async def connected(redis: Redis, keys: StreamKeys, tenant_id: int, user_id: int, socket_id: str,
                    *, away: bool | None = None) -> None:  # fmt: skip
    """A socket opened (or changed the away choice)."""
    await heartbeat(redis, keys, tenant_id, user_id, socket_id)
    await reconcile(redis, keys, tenant_id, user_id, away=away)


async def disconnected(redis: Redis, keys: StreamKeys, tenant_id: int, user_id: int, socket_id: str) -> None:
    await redis.zrem(_sockets_key(keys, tenant_id, user_id), socket_id)
    await reconcile(redis, keys, tenant_id, user_id)


async def _live_sockets(redis: Redis, keys: StreamKeys, tenant_id: int, user_id: int) -> int:
    key = _sockets_key(keys, tenant_id, user_id)
    await redis.zremrangebyscore(key, "-inf", time.time() - PRESENCE_TIMEOUT_S)
    count: int = await redis.zcard(key)
    return count


def _effective(live: int, active: bool, away: bool) -> str:
    return "offline" if live == 0 or not active else "away" if away else "online"


async def reconcile(redis: Redis, keys: StreamKeys, tenant_id: int, user_id: int, *, away: bool | None = None,
                    retry_returns: bool = False) -> str:  # fmt: skip
    """Make ``users.presence`` match the user's sockets (and ``away`` choice, when given); returns it.

    ``retry_returns`` (the ``presence`` timer) tries again to return an offline user's tickets that were held
    by someone else when they went offline, even though the presence itself no longer changes.

    Cheap when nothing changes (no lock). A change takes the tenant's distribution lock *before* the user's row
    (the order every distributing writer keeps) and looks at Redis again under it, so of two racing reconciles
    the last one to look decides. Tickets going back to their queues are taken with ``SKIP LOCKED`` (after the
    distribution lock no writer waits on a ticket row); one held by someone else is retried by a timer.
    """
    effects = Effects()
    now = utcnow()
    live = await _live_sockets(redis, keys, tenant_id, user_id)
    async with tenant_context(tenant_id=tenant_id) as session:
        conn = session.conn
        row = await conn.fetchrow("SELECT presence, away, active FROM users WHERE id = $1", user_id)
        if row is None:
            return "offline"
        chosen_away = row["away"] if away is None else away
        unchanged = _effective(live, row["active"], chosen_away) == row["presence"] and chosen_away == row["away"]
        if unchanged and not (retry_returns and row["presence"] == "offline"):
            return str(row["presence"])
        await lock_distribution(conn, tenant_id)
        row = await conn.fetchrow("SELECT presence, away, active FROM users WHERE id = $1 FOR UPDATE", user_id)
        assert row is not None
        chosen_away = row["away"] if away is None else away
        presence = _effective(await _live_sockets(redis, keys, tenant_id, user_id), row["active"], chosen_away)
        moved_presence = presence != row["presence"]
        if not moved_presence and chosen_away == row["away"] and not (retry_returns and presence == "offline"):
            return presence
        if moved_presence or chosen_away != row["away"]:
            await conn.execute("UPDATE users SET presence = $2, away = $3, presence_at = $4 WHERE id = $1",
                               user_id, presence, chosen_away, now)  # fmt: skip
        if moved_presence:
            effects.events.append(RealtimeEvent(type="presence.updated",
                                                data={"user_id": user_id, "presence": presence}))  # fmt: skip
        if moved_presence or (retry_returns and presence == "offline"):
            was: dict[int, dict[str, object]] = {}
            if presence == "offline":
                was, queues, held = await _return_tickets(conn, user_id)
                if held:  # someone holds one right now: try again shortly
                    effects.timers.append(("presence", str(user_id), now + timedelta(seconds=2)))
            else:
                queues = await queues_of_user(conn, user_id) if presence == "online" else []
            _done, distributed = await distribute_with_events(
                conn, tenant_id, queues, now=now, calendars=Calendars(conn, await load_settings(conn)),
                touched=was, was=was,
            )  # fmt: skip
            effects.events += distributed.events
            effects.timers += distributed.timers
        await effects.before_commit(redis, keys, tenant_id)
    await effects.after_commit(redis, keys, tenant_id)
    return presence


async def _return_tickets(
    conn: asyncpg.Connection, user_id: int
) -> tuple[dict[int, dict[str, object]], list[int], bool]:
    """An offline agent's open tickets go back to the queues that ask for it (``return_on_offline``), taken
    ``SKIP LOCKED`` (this runs under the distribution lock); returns each returned ticket's state before, the
    queues to distribute, and whether a ticket was held by someone else (to be retried)."""
    was: dict[int, dict[str, object]] = {}
    queues: list[int] = []
    held = False
    rows = await conn.fetch(
        "SELECT q.id, q.return_on_offline, array_agg(t.id ORDER BY t.id) AS tickets FROM tickets t"
        " JOIN queues q ON q.id = t.queue_id WHERE t.user_id = $1 AND t.status = 'open' GROUP BY q.id",
        user_id,
    )
    for queue in rows:
        returned = returned_on_offline(queue["return_on_offline"], "offline", list(queue["tickets"]))
        if not returned:
            continue
        moved = [r["id"] for r in await conn.fetch(
            """
            UPDATE tickets SET user_id = NULL, status = 'pending', updated_at = now()
            WHERE id IN (SELECT id FROM tickets WHERE id = ANY($1::bigint[]) AND user_id = $2 FOR UPDATE SKIP LOCKED)
            RETURNING id
            """,
            returned, user_id,
        )]  # fmt: skip
        held = held or len(moved) < len(returned)
        for ticket_id in moved:
            await log_event(conn, ticket_id, "returned", details={"user_id": user_id, "reason": "offline"})
            was[ticket_id] = {"user_id": user_id, "queue_id": queue["id"]}
        queues.append(queue["id"])
    return was, queues, held


async def sweep_presence(redis: Redis, keys: StreamKeys) -> int:
    """Reconcile every user whose latest heartbeat is older than the timeout; returns how many were looked at."""
    threshold = time.time() - PRESENCE_TIMEOUT_S
    members: Any = await redis.zrangebyscore(_due_key(keys), "-inf", threshold, start=0, num=200)
    for raw in members:
        tenant, _, user = raw.decode().partition(":")
        try:
            presence = await reconcile(redis, keys, int(tenant), int(user))
        except (TenantNotFound, TenantSuspended):  # nothing left to reconcile
            presence = "offline"
        except Exception:  # one user's failure must not stop the round for everyone else; retried next round
            logger.exception("presence of user %s of tenant %s not reconciled", user, tenant)
            continue
        if presence == "offline":
            await redis.zrem(_due_key(keys), raw)
    return len(members)
