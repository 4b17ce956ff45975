"""What a change must do around its commit, in one place: every writer (router, timers, presence, API actions)
collects the realtime events, outbox entries and timers of its transaction in an :class:`Effects`.

Before the commit: the tenant is marked dirty for the outbox relay and timers are scheduled (both harmless if the
transaction then rolls back: see :mod:`saas.outbox` and :mod:`saas.timers`). After the commit: events are
published and the outbox entries relayed (a client must never see what may still roll back).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from redis.asyncio import Redis

from saas import timers
from saas.outbox import mark_dirty, relay_tenant
from supervisor.realtime import RealtimeEvent, publish
from supervisor.streams import StreamKeys

__all__ = ["Effects"]


@dataclass(slots=True)
class Effects:
    events: list[RealtimeEvent] = field(default_factory=list)
    outbox: list[int] = field(default_factory=list)  # message ids with an outbox entry to relay
    timers: list[tuple[str, str, datetime]] = field(default_factory=list)  # (kind, subject, due)

    def extend(self, other: Effects) -> None:
        self.events += other.events
        self.outbox += other.outbox
        self.timers += other.timers

    async def before_commit(self, redis: Redis, keys: StreamKeys, tenant_id: int) -> None:
        if self.outbox:
            await mark_dirty(redis, keys, tenant_id)
        for kind, subject, due in self.timers:
            await timers.schedule(redis, keys, tenant_id, kind, subject, due)

    async def after_commit(self, redis: Redis, keys: StreamKeys, tenant_id: int) -> None:
        await publish(redis, keys, tenant_id, self.events)
        if self.outbox:
            await relay_tenant(redis, keys, tenant_id, message_ids=self.outbox)
