"""Service metrics over a period: counts and average times, per agent, queue and connection.

The times are recorded on each ticket when they happen (see :mod:`saas.tickets.actions`), on the wall clock and
in business hours (the ticket's queue calendar, else the tenant's):

* **waiting** — from the ticket's start until an agent first took it; counted in the period it was taken;
* **first response** — from its start until an agent's first message; counted in the period of that message;
* **resolution** — from its start (or its latest reopening) until its latest close; counted in the period it was
  closed (and attributed to its agent).

A ticket's start is its creation, or its latest reopening if it was reopened before the moment measured. Waiting
and first response are each recorded once per ticket (a reopened ticket keeps them, so past periods never change);
a ticket reopened and closed again reports its latest resolution.

Satisfaction counts surveys answered in the period. Supervisors see the tickets of their queues (the visibility
rule), admins everything.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import msgspec

from saas.auth.principal import Principal
from saas.tickets.service import visibility, visible_sql
from tenants.context import TenantSession
from tenants.errors import InvalidInput

__all__ = ["Dashboard", "DurationStats", "dashboard"]

MAX_PERIOD = timedelta(days=366)


class DurationStats(msgspec.Struct, frozen=True, kw_only=True):
    count: int
    avg_s: float | None
    avg_business_s: float | None


class Satisfaction(msgspec.Struct, frozen=True, kw_only=True):
    asked: int
    answered: int
    average: float | None
    distribution: dict[str, int]  # "1" .. "5" -> answers


class Now(msgspec.Struct, frozen=True, kw_only=True):
    pending: int
    open: int
    snoozed: int
    waiting: int  # customers waiting for an agent's answer
    agents_online: int


class Breakdown(msgspec.Struct, frozen=True, kw_only=True):
    id: int | None
    name: str | None
    created: int
    closed: int
    open_now: int
    waiting: DurationStats
    first_response: DurationStats
    resolution: DurationStats
    csat_average: float | None
    csat_answered: int


class Dashboard(msgspec.Struct, frozen=True, kw_only=True):
    period_from: datetime
    period_to: datetime
    created: int
    closed: int
    reopened: int
    now: Now
    waiting: DurationStats
    first_response: DurationStats
    resolution: DurationStats
    satisfaction: Satisfaction
    by_agent: list[Breakdown]
    by_queue: list[Breakdown]
    by_connection: list[Breakdown]


_STATS = """
    count(*) FILTER (WHERE t.created_at >= $1 AND t.created_at < $2) AS created,
    count(*) FILTER (WHERE t.closed_at >= $1 AND t.closed_at < $2) AS closed,
    count(*) FILTER (WHERE t.status <> 'closed') AS open_now,
    count(t.wait_s) FILTER (WHERE t.accepted_at >= $1 AND t.accepted_at < $2) AS wait_n,
    avg(t.wait_s) FILTER (WHERE t.accepted_at >= $1 AND t.accepted_at < $2) AS wait_avg,
    avg(t.wait_bh_s) FILTER (WHERE t.accepted_at >= $1 AND t.accepted_at < $2) AS wait_bh,
    count(t.first_response_s) FILTER (WHERE t.first_response_at >= $1 AND t.first_response_at < $2) AS first_n,
    avg(t.first_response_s) FILTER (WHERE t.first_response_at >= $1 AND t.first_response_at < $2) AS first_avg,
    avg(t.first_response_bh_s) FILTER (WHERE t.first_response_at >= $1 AND t.first_response_at < $2) AS first_bh,
    count(t.resolution_s) FILTER (WHERE t.closed_at >= $1 AND t.closed_at < $2) AS res_n,
    avg(t.resolution_s) FILTER (WHERE t.closed_at >= $1 AND t.closed_at < $2) AS res_avg,
    avg(t.resolution_bh_s) FILTER (WHERE t.closed_at >= $1 AND t.closed_at < $2) AS res_bh
"""
# Tickets that matter for the period: touched in it, or still active.
_RELEVANT = """(t.created_at >= $1 OR t.closed_at >= $1 OR t.accepted_at >= $1 OR t.first_response_at >= $1
               OR t.status <> 'closed')"""


def _durations(row: Any, prefix: str) -> DurationStats:
    avg, bh = row[f"{prefix}_avg"], row[f"{prefix}_bh"]
    return DurationStats(count=row[f"{prefix}_n"], avg_s=None if avg is None else round(float(avg), 1),
                         avg_business_s=None if bh is None else round(float(bh), 1))  # fmt: skip


async def dashboard(session: TenantSession, viewer: Principal, *, period_from: datetime | None,
                    period_to: datetime | None, now: datetime, queue_id: int | None = None,
                    user_id: int | None = None, connection_id: int | None = None) -> Dashboard:  # fmt: skip
    """The metrics of ``[period_from, period_to)`` (default: the last 7 days), filtered as asked."""
    to = period_to or now
    start = period_from or to - timedelta(days=7)
    for moment, name in ((start, "from"), (to, "to")):
        if moment.tzinfo is None:
            raise InvalidInput(f"{name} needs a time zone, e.g. 2026-12-01T00:00:00-03:00", field=name)
    if not start < to or to - start > MAX_PERIOD:
        raise InvalidInput("the period must run forwards and span at most 366 days", field="from")
    conn = session.conn
    params: list[Any] = [start, to, *visibility(viewer)]
    filters = [visible_sql(3, 4)]
    for column, value in (("queue_id", queue_id), ("user_id", user_id), ("connection_id", connection_id)):
        if value is not None:
            params.append(value)
            filters.append(f"t.{column} = ${len(params)}")
    scope = " AND ".join(filters)
    total = await conn.fetchrow(
        f"""
        SELECT {_STATS},
            count(*) FILTER (WHERE t.reopened_at >= $1 AND t.reopened_at < $2) AS reopened,
            count(*) FILTER (WHERE t.status = 'pending' AND (t.snoozed_until IS NULL OR t.snoozed_until <= now())) AS pending_now,
            count(*) FILTER (WHERE t.status = 'open' AND (t.snoozed_until IS NULL OR t.snoozed_until <= now())) AS opened_now,
            count(*) FILTER (WHERE t.status <> 'closed' AND t.snoozed_until > now()) AS snoozed_now,
            count(*) FILTER (WHERE t.status <> 'closed' AND t.waiting_since IS NOT NULL) AS waiting_now
        FROM tickets t WHERE {_RELEVANT} AND {scope}
        """,
        *params,
    )
    assert total is not None
    surveys = f"""
        FROM csat_surveys s JOIN tickets t ON t.id = s.ticket_id
        WHERE (s.asked_at >= $1 OR s.answered_at >= $1) AND {scope}
    """
    csat = await conn.fetchrow(
        f"""
        SELECT count(*) FILTER (WHERE s.asked_at >= $1 AND s.asked_at < $2) AS asked,
               count(*) FILTER (WHERE s.answered_at >= $1 AND s.answered_at < $2) AS answered,
               avg(s.rating) FILTER (WHERE s.answered_at >= $1 AND s.answered_at < $2) AS average
        {surveys}
        """,
        *params,
    )
    assert csat is not None
    distribution = {str(r): 0 for r in range(1, 6)}
    for row in await conn.fetch(
        f"SELECT s.rating, count(*) AS n {surveys} AND s.answered_at < $2 AND s.answered_at >= $1 GROUP BY s.rating",
        *params,
    ):
        distribution[str(row["rating"])] = row["n"]
    agents_online = await conn.fetchval("SELECT count(*) FROM users WHERE active AND presence = 'online'")

    async def breakdown(column: str, names: str) -> list[Breakdown]:
        rows = await conn.fetch(
            f"SELECT t.{column} AS key, {_STATS} FROM tickets t WHERE {_RELEVANT} AND {scope}"
            f" GROUP BY t.{column} ORDER BY t.{column} NULLS LAST",
            *params,
        )
        ratings = {
            r["key"]: r
            for r in await conn.fetch(  # the survey remembers who and which queue/connection were rated
                f"SELECT s.{column} AS key, avg(s.rating) AS average, count(*) AS n {surveys}"
                f" AND s.answered_at >= $1 AND s.answered_at < $2 GROUP BY s.{column}",
                *params,
            )
        }
        ids = [r["key"] for r in rows if r["key"] is not None]
        labels = {r["id"]: r["name"] for r in await conn.fetch(f"SELECT id, name FROM {names} WHERE id = ANY($1)", ids)}
        result = []
        for r in rows:
            rating = ratings.get(r["key"])
            result.append(Breakdown(
                id=r["key"], name=labels.get(r["key"]), created=r["created"], closed=r["closed"], open_now=r["open_now"],
                waiting=_durations(r, "wait"), first_response=_durations(r, "first"), resolution=_durations(r, "res"),
                csat_average=None if rating is None else round(float(rating["average"]), 2),
                csat_answered=0 if rating is None else rating["n"]))  # fmt: skip
        return result

    return Dashboard(
        period_from=start,
        period_to=to,
        created=total["created"],
        closed=total["closed"],
        reopened=total["reopened"],
        now=Now(
            pending=total["pending_now"],
            open=total["opened_now"],
            snoozed=total["snoozed_now"],
            waiting=total["waiting_now"],
            agents_online=agents_online,
        ),
        waiting=_durations(total, "wait"),
        first_response=_durations(total, "first"),
        resolution=_durations(total, "res"),
        satisfaction=Satisfaction(
            asked=csat["asked"],
            answered=csat["answered"],
            average=None if csat["average"] is None else round(float(csat["average"]), 2),
            distribution=distribution,
        ),
        by_agent=await breakdown("user_id", "users"),
        by_queue=await breakdown("queue_id", "queues"),
        by_connection=await breakdown("connection_id", "connections"),
    )
