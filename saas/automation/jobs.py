"""What the router does when a timer fires (see :mod:`saas.timers`): each handler re-reads the ticket in a tenant
transaction and does nothing if the state moved on.

* ``menu:<ticket>`` — the customer never answered the chatbot menu: route to the fallback queue.
* ``snooze:<ticket>`` — a snoozed ticket wakes up (the inbox shows it again; automatic queues may distribute it).
* ``distribute:<queue>`` — try distribution again (a waiting ticket was skipped because another transaction
  held it).
* ``presence:<user>`` — an offline agent's ticket could not go back to its queue (held): reconcile again.
"""

from __future__ import annotations

import logging
from datetime import datetime

from redis.asyncio import Redis

from saas.automation.engine import Automation
from saas.effects import Effects
from saas.presence import reconcile
from saas.queues.assign import RETRY_AFTER, distribute_with_events
from saas.tickets.lifecycle import Calendars, log_event
from saas.timers import Timer
from saas.workspace.service import load_settings
from supervisor.streams import StreamKeys
from supervisor.wire import utcnow
from tenants.context import tenant_context

__all__ = ["run_timer"]

logger = logging.getLogger("atende.timers")


async def run_timer(redis: Redis, keys: StreamKeys, timer: Timer) -> datetime | None:
    """Handle ``timer``; returns when it should fire again (it came too early), else None."""
    if timer.kind == "presence":  # a return to the queue that met a held ticket: look again
        await reconcile(redis, keys, timer.tenant_id, int(timer.subject), retry_returns=True)
        return None
    now = utcnow()
    again: datetime | None = None
    effects = Effects()
    async with tenant_context(tenant_id=timer.tenant_id) as session:
        conn = session.conn
        settings = await load_settings(conn)
        if timer.kind == "menu":
            automation = Automation(conn, timer.tenant_id, settings, now)
            await automation.on_menu_timeout(int(timer.subject))
            events, outbox = await automation.finish()
            own = [t for t in automation.timers if t[:2] == ("menu", timer.subject)]
            again = min((t[2] for t in own), default=None)  # prompted again since: the new timeout
            others = [t for t in automation.timers if t[:2] != ("menu", timer.subject)]
            effects = Effects(events, outbox, others)
        elif timer.kind == "snooze":
            row = await conn.fetchrow(
                "SELECT id, snoozed_until, queue_id, user_id, status FROM tickets WHERE id = $1 FOR UPDATE",
                int(timer.subject),
            )
            if row is not None and row["snoozed_until"] is not None:
                if row["snoozed_until"] > now:  # snoozed again, for longer
                    again = row["snoozed_until"]
                else:
                    await conn.execute("UPDATE tickets SET snoozed_until = NULL, updated_at = now() WHERE id = $1",
                                       row["id"])  # fmt: skip
                    await log_event(conn, row["id"], "woke")
                    waiting = row["queue_id"] is not None and row["user_id"] is None and row["status"] == "pending"
                    _done, effects = await distribute_with_events(
                        conn, timer.tenant_id, [row["queue_id"]] if waiting else [], now=now,
                        calendars=Calendars(conn, settings), touched=[row["id"]],
                    )  # fmt: skip
        elif timer.kind == "distribute":
            done, effects = await distribute_with_events(conn, timer.tenant_id, [int(timer.subject)], now=now,
                                                         calendars=Calendars(conn, settings))  # fmt: skip
            effects.timers = []  # this timer itself comes again instead
            if done.skipped:
                again = now + RETRY_AFTER
        else:
            logger.warning("unknown timer kind %r (%s): dropped", timer.kind, timer.member)
        await effects.before_commit(redis, keys, timer.tenant_id)
    await effects.after_commit(redis, keys, timer.tenant_id)
    return again
