"""Automatic distribution, the I/O half: read a queue's agents and waiting tickets, ask
:mod:`saas.queues.distribution`, write the assignments — inside the caller's tenant transaction.

Guarantees: a ticket is assigned at most once (the update requires ``user_id IS NULL`` and the waiting tickets are
row-locked with ``SKIP LOCKED``), and an agent's capacity is never exceeded by distribution, however many routers
and API workers distribute at once: every decision of a tenant runs under :func:`lock_distribution`, so the open
ticket counts it reads are the truth until it commits. Manual accepts do not check capacity (an agent may
choose to take more).

Triggers: a ticket entering an automatic queue (router, transfer), an agent coming online or freeing capacity
(close, transfer away, capacity raised), and the ``distribute`` timer.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg

from saas.effects import Effects
from saas.queues.distribution import AgentLoad, QueueState, distribute
from saas.tickets.lifecycle import Calendars, elapsed, fetch_tickets, lock_distribution, log_event, ticket_event
from saas.workspace.service import load_settings
from tenants.context import TenantSession

__all__ = [
    "Assigned",
    "Distribution",
    "distribute_now",
    "distribute_queues",
    "distribute_with_events",
    "queues_of_user",
]

RETRY_AFTER = timedelta(seconds=2)
_AUTOMATIC = (
    "SELECT id, strategy, last_assigned_user_id FROM queues WHERE id = ANY($1::bigint[]) AND strategy <> 'manual'"
    " ORDER BY id"
)


@dataclass(frozen=True, slots=True)
class Assigned:
    ticket_id: int
    user_id: int
    queue_id: int


@dataclass(slots=True)
class Distribution:
    """What a distribution did, and the queues where a waiting ticket was held by another transaction (skipped,
    so the decision never waits on a ticket row): those are retried by a ``distribute`` timer."""

    assigned: list[Assigned] = field(default_factory=list)
    skipped: set[int] = field(default_factory=set)

    def retries(self, now: datetime) -> list[tuple[str, str, datetime]]:
        return [("distribute", str(queue_id), now + RETRY_AFTER) for queue_id in sorted(self.skipped)]

    def was(self) -> dict[int, dict[str, object]]:
        """Each assigned ticket as it was (unassigned in its queue), for the ``was`` of its ticket event."""
        return {a.ticket_id: {"user_id": None, "queue_id": a.queue_id} for a in self.assigned}


async def queues_of_user(conn: asyncpg.Connection, user_id: int) -> list[int]:
    rows = await conn.fetch("SELECT queue_id FROM queue_members WHERE user_id = $1 ORDER BY queue_id", user_id)
    return [r["queue_id"] for r in rows]


async def distribute_now(session: TenantSession, queue_ids: Collection[int], *, now: datetime) -> Effects:
    """Distribute the queues' waiting tickets now (a queue became automatic, gained members, an agent's capacity
    grew); returns the events of the tickets assigned."""
    conn = session.conn
    calendars = Calendars(conn, await load_settings(conn))
    _done, effects = await distribute_with_events(conn, session.tenant.id, queue_ids, now=now, calendars=calendars)
    return effects


async def distribute_with_events(conn: asyncpg.Connection, tenant_id: int, queue_ids: Collection[int], *,
                                 now: datetime, calendars: Calendars, touched: Collection[int] = (),
                                 was: dict[int, dict[str, object]] | None = None) -> tuple[Distribution, Effects]:  # fmt: skip
    """Distribute, then the effects: a ticket event for every ticket assigned and every one in ``touched`` (with
    its state before from ``was``), and the retry timers of skipped queues."""
    done = await distribute_queues(conn, tenant_id, queue_ids, now=now, calendars=calendars)
    before = {**done.was(), **(was or {})}
    tickets = await fetch_tickets(conn, {*touched, *before})
    return done, Effects(events=[ticket_event(t, was=before.get(t.id)) for t in tickets], timers=done.retries(now))


async def distribute_queues(conn: asyncpg.Connection, tenant_id: int, queue_ids: Collection[int], *,
                            now: datetime, calendars: Calendars) -> Distribution:  # fmt: skip
    """Assign waiting tickets of the automatic queues among ``queue_ids`` to eligible agents; returns what changed."""
    result = Distribution()
    if not queue_ids:
        return result
    ids = sorted(set(queue_ids))
    if not await conn.fetchval(f"SELECT EXISTS ({_AUTOMATIC})", ids):
        return result
    await lock_distribution(conn, tenant_id)
    # Read under the lock: the round-robin cursor another distributor just moved is the one to continue from.
    for queue in await conn.fetch(_AUTOMATIC, ids):
        result.assigned += await _distribute_one(conn, queue, now=now, calendars=calendars, result=result)
    return result


async def _distribute_one(conn: asyncpg.Connection, queue: asyncpg.Record, *, now: datetime, calendars: Calendars,
                          result: Distribution) -> list[Assigned]:  # fmt: skip
    agents = [
        AgentLoad(
            user_id=r["id"],
            presence=r["presence"],
            capacity=r["capacity"],
            open_tickets=r["open_tickets"],
            last_assigned_at=r["last_assigned_at"],
        )
        for r in await conn.fetch(
            """
            SELECT u.id, u.presence, u.capacity, extract(epoch FROM u.last_assigned_at)::float8 AS last_assigned_at,
                   (SELECT count(*) FROM tickets t WHERE t.user_id = u.id AND t.status = 'open')::int AS open_tickets
            FROM queue_members m JOIN users u ON u.id = m.user_id
            WHERE m.queue_id = $1 AND u.active AND u.password_hash IS NOT NULL
            ORDER BY u.id
            """,
            queue["id"],
        )
    ]
    free = sum(max(0, a.capacity - a.open_tickets) for a in agents if a.eligible)
    if free == 0:
        return []
    waiting = await conn.fetch(
        """
        SELECT id, created_at, reopened_at FROM tickets
        WHERE queue_id = $1 AND status = 'pending' AND user_id IS NULL AND bot_state IS NULL
          AND (snoozed_until IS NULL OR snoozed_until <= $2)
        ORDER BY priority DESC, waiting_since ASC NULLS LAST, id
        LIMIT $3
        FOR UPDATE SKIP LOCKED
        """,
        queue["id"], now, free,
    )  # fmt: skip
    if len(waiting) < free and await conn.fetchval(
        "SELECT count(*) FROM tickets WHERE queue_id = $1 AND status = 'pending' AND user_id IS NULL"
        " AND bot_state IS NULL AND (snoozed_until IS NULL OR snoozed_until <= $2)",
        queue["id"], now,
    ) > len(waiting):  # fmt: skip
        result.skipped.add(queue["id"])
    if not waiting:
        return []
    state = QueueState(strategy=queue["strategy"], last_assigned_user_id=queue["last_assigned_user_id"])
    chosen, state = distribute(state, agents, len(waiting))
    pairs = [(ticket, user) for ticket, user in zip(waiting, chosen, strict=True) if user is not None]
    if not pairs:
        return []
    calendar = await calendars.for_queue(queue["id"])
    waits = [elapsed(t["reopened_at"] or t["created_at"], now, calendar) for t, _ in pairs]
    rows = await conn.fetch(
        """
        UPDATE tickets t SET user_id = u.user_id, status = 'open', accepted_at = coalesce(t.accepted_at, $3),
               wait_s = coalesce(t.wait_s, u.wait_s), wait_bh_s = coalesce(t.wait_bh_s, u.wait_bh_s), updated_at = now()
        FROM unnest($1::bigint[], $2::bigint[], $4::float8[], $5::float8[]) AS u(id, user_id, wait_s, wait_bh_s)
        WHERE t.id = u.id AND t.user_id IS NULL
        RETURNING t.id, t.user_id
        """,
        [t["id"] for t, _ in pairs], [u for _, u in pairs], now, [w[0] for w in waits], [w[1] for w in waits],
    )  # fmt: skip
    done = [Assigned(r["id"], r["user_id"], queue["id"]) for r in rows]
    if done:
        await conn.execute(
            "UPDATE users SET last_assigned_at = $2 WHERE id = ANY($1::bigint[])", [a.user_id for a in done], now
        )
        await conn.execute(
            "UPDATE queues SET last_assigned_user_id = $2 WHERE id = $1", queue["id"], state.last_assigned_user_id
        )
        for a in done:
            await log_event(conn, a.ticket_id, "assigned",
                            details={"user_id": a.user_id, "by": "distribution", "strategy": queue["strategy"]})  # fmt: skip
    return done
