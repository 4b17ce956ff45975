"""What a change must do around its commit, in one place: every writer (router, timers, presence, API actions)
collects the realtime events, outbox entries and timers of its transaction in an :class:`Effects`.

Before the commit: the tenant is marked dirty for the outbox relay and timers are scheduled (both harmless if the
transaction then rolls back: see :mod:`saas.outbox` and :mod:`saas.timers`). After the commit: events are
published and the outbox entries relayed (a client must never see what may still roll back). API changes run through
:func:`act`, which does both around the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from redis.asyncio import Redis

from saas import timers
from saas.auth.principal import Principal, principal_context
from saas.outbox import mark_dirty, relay_tenant
from supervisor.realtime import RealtimeEvent, publish
from supervisor.streams import StreamKeys
from tenants.context import TenantSession

if TYPE_CHECKING:
    from saas.auth.guards import Caller
    from saas.runtime import Runtime

__all__ = ["Effects", "act"]

T = TypeVar("T")


@dataclass(slots=True)
class Effects:
    events: list[RealtimeEvent] = field(default_factory=list)
    outbox: list[int] = field(default_factory=list)  # message ids with an outbox entry to relay
    timers: list[tuple[str, str, datetime]] = field(default_factory=list)  # (kind, subject, due)

    async def before_commit(self, redis: Redis, keys: StreamKeys, tenant_id: int) -> None:
        if self.outbox:
            await mark_dirty(redis, keys, tenant_id)
        await timers.schedule_all(redis, keys, tenant_id, self.timers)

    async def after_commit(self, redis: Redis, keys: StreamKeys, tenant_id: int) -> None:
        await publish(redis, keys, tenant_id, self.events)
        if self.outbox:
            await relay_tenant(redis, keys, tenant_id, message_ids=self.outbox)


async def act(caller: Caller, runtime: Runtime,
              change: Callable[[TenantSession, Principal], Awaitable[tuple[T, Effects]]]) -> T:  # fmt: skip
    """Run an API change in the caller's transaction with its effects around the commit."""
    async with principal_context(caller.claims) as (principal, session):
        result, effects = await change(session, principal)
        await effects.before_commit(runtime.redis_client, runtime.keys, caller.claims.tid)
    await effects.after_commit(runtime.redis_client, runtime.keys, caller.claims.tid)
    return result
