"""``atende worker``: the router and the outbox relay.

Guarantees (at-least-once in, exactly-once effects):

* Each inbound shard is owned by one router at a time (a Redis lease), so per-chat order holds while
  replicas come and go. The consumer name is the shard's, so a new owner first replays what the previous
  one left unacknowledged.
* A batch is grouped by tenant; each tenant's part is applied in ONE tenant transaction; realtime events
  are published after the commit; entries are XACKed last. A crash anywhere before the XACK replays the
  batch, and the unique keys make the replay a no-op.
* A tenant batch that fails is retried one event at a time; an event that keeps failing goes to the
  dead-letter stream after ``max_failures`` attempts instead of blocking its shard.
* The relay re-sends outbox entries whose post-commit append never happened (the API marks the tenant
  dirty before committing).

The loops never die: each step catches and logs its own errors, and times itself into metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence

import msgspec
from redis.asyncio import Redis

from saas import timers
from saas.automation.jobs import run_timer
from saas.effects import Effects
from saas.logs import bind
from saas.outbox import MARK_GRACE_S, clear_dirty, dirty_tenants, relay_tenant
from saas.presence import sweep_presence
from saas.router.ingest import apply_batch
from saas.settings import Settings
from supervisor.host import tune_gc
from supervisor.leases import RedisLease
from supervisor.metrics import MetricsSink
from supervisor.streams import Entry, StreamConsumer, StreamKeys
from supervisor.wire import Envelope, decode_event
from tenants import db
from tenants.context import tenant_context
from tenants.errors import TenantNotFound, TenantSuspended

__all__ = ["GROUP", "RouterWorker", "run_worker"]

logger = logging.getLogger("atende.router")
GROUP = "router"
EARLY_STATUS_TTL_S = 24 * 3600.0
EARLY_STATUS_SWEEP_S = 600.0
PRESENCE_SWEEP_S = 5.0


class RouterWorker:
    def __init__(
        self,
        redis: Redis,
        keys: StreamKeys,
        *,
        owner: str | None = None,
        batch_size: int = 500,
        block_ms: int = 500,
        relay_after_s: float = 3.0,
        mark_grace_s: float = MARK_GRACE_S,
        lease_ttl_ms: int = 15_000,
        max_failures: int = 5,
        timer_interval_s: float = 1.0,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.owner = owner or f"{socket.gethostname()}-{os.getpid()}"
        self.batch_size = batch_size
        self.block_ms = block_ms
        self.relay_after_s = relay_after_s
        self.mark_grace_s = mark_grace_s
        self.lease_ttl_ms = lease_ttl_ms
        self.max_failures = max_failures
        self.timer_interval_s = timer_interval_s
        self.metrics = MetricsSink(keys.prefix)
        self.processed = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Run every loop until ``stop`` is set."""
        loops = [self._shard_loop(shard, stop) for shard in range(self.keys.shards)]
        loops += [self._every(2.0, self.relay_once, stop), self._every(30.0, self.trim_once, stop),
                  self._every(1.0, self._flush_metrics, stop),
                  self._every(EARLY_STATUS_SWEEP_S, self.sweep_early_statuses, stop),
                  self._every(self.timer_interval_s, self.timers_once, stop),
                  self._every(PRESENCE_SWEEP_S, self.presence_once, stop)]  # fmt: skip
        async with asyncio.TaskGroup() as group:
            for loop in loops:
                group.create_task(loop)

    async def _every(self, seconds: float, step: Callable[[], Awaitable[object]], stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await step()
            except Exception:
                logger.exception("router step %s failed", getattr(step, "__name__", step))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), seconds)

    async def _flush_metrics(self) -> None:
        await self.metrics.flush(self.redis)

    def consumer(self, shard: int) -> StreamConsumer:
        return StreamConsumer(
            self.redis, self.keys.inbound(shard), GROUP, f"router-{shard}", dead_letter=self.keys.dead_letter(shard),
            failures=self.keys.failures(shard), max_failures=self.max_failures,
        )  # fmt: skip

    async def _shard_loop(self, shard: int, stop: asyncio.Event) -> None:
        lease = RedisLease(self.redis, self.keys.lease(f"router-s{shard}"), self.owner, self.lease_ttl_ms)
        consumer = self.consumer(shard)
        renewed_at = 0.0
        while not stop.is_set():
            try:
                if time.monotonic() - renewed_at > self.lease_ttl_ms / 3000:
                    if not await lease.acquire():
                        await asyncio.sleep(self.lease_ttl_ms / 3000)
                        continue
                    renewed_at = time.monotonic()
                    await consumer.ensure_group()
                entries = await consumer.read(self.batch_size, self.block_ms)
                if entries:
                    await self.process(consumer, entries)
            except Exception:
                logger.exception("shard %s step failed", shard)
                consumer.replay_pending()
                await asyncio.sleep(0.5)
        await lease.release()

    async def process(self, consumer: StreamConsumer, entries: Sequence[Entry]) -> None:
        """Apply a batch: per tenant one transaction, publish after commit, XACK last."""
        by_tenant: defaultdict[int, list[tuple[Entry, Envelope]]] = defaultdict(list)
        done: list[bytes] = []
        for entry in entries:
            try:
                envelope = decode_event(entry[1])
            except msgspec.DecodeError as exc:
                await self._dead_letter(consumer, entry, f"undecodable: {exc}")
                continue
            by_tenant[envelope.tenant_id].append((entry, envelope))
        failed = False
        for tenant_id, items in by_tenant.items():
            try:
                await self._apply(tenant_id, [env for _, env in items])
                done.extend(entry[0] for entry, _ in items)
            except (TenantSuspended, TenantNotFound) as exc:
                for entry, _ in items:
                    await self._dead_letter(consumer, entry, f"{exc.code}: {exc.detail}")
            except Exception:
                logger.exception("tenant %s batch of %s failed; retrying one by one", tenant_id, len(items))
                for entry, envelope in items:
                    try:
                        await self._apply(tenant_id, [envelope])
                        done.append(entry[0])
                    except Exception as exc:
                        self.metrics.inc("atende_router_events_total", ("failed",))
                        if not await consumer.fail(entry, repr(exc)):
                            failed = True
        await consumer.ack(done)
        self.processed += len(done)
        self.metrics.inc("atende_router_events_total", ("stored",), len(done))
        if failed:
            consumer.replay_pending()

    async def _apply(self, tenant_id: int, envelopes: list[Envelope]) -> None:
        started = time.perf_counter()
        async with tenant_context(tenant_id=tenant_id) as session:
            with bind(tenant=session.tenant.slug):
                result = await apply_batch(session.conn, envelopes)
                effects = Effects(result.events, result.outbox, result.timers)
                await effects.before_commit(self.redis, self.keys, tenant_id)
        self.metrics.observe("atende_router_batch_seconds", (), time.perf_counter() - started)
        if result.blocked:
            self.metrics.inc("atende_router_events_total", ("blocked",), result.blocked)
        if result.ignored:
            self.metrics.inc("atende_router_events_total", ("ignored",), result.ignored)
        try:
            await effects.after_commit(self.redis, self.keys, tenant_id)
        except Exception:  # committed: replaying the batch would redo nothing; the relay loop sends the outbox
            logger.exception("after-commit effects of a batch of tenant %s failed", tenant_id)

    async def _dead_letter(self, consumer: StreamConsumer, entry: Entry, error: str) -> None:
        self.metrics.inc("atende_router_events_total", ("dead_letter",))
        logger.error("dead-lettering %s: %s", entry[0], error)
        for _ in range(consumer.max_failures):
            if await consumer.fail(entry, error):
                return

    async def relay_once(self) -> int:
        """Append outbox entries that never reached their outbound stream (older than ``relay_after_s``)."""
        relayed = 0
        for tenant_id, mark in await dirty_tenants(self.redis, self.keys):
            try:
                count = await relay_tenant(self.redis, self.keys, tenant_id, older_than_s=self.relay_after_s)
            except (TenantSuspended, TenantNotFound):
                count = 0
            relayed += count
            if count == 0 and not await _has_unrelayed(tenant_id):
                await clear_dirty(self.redis, self.keys, tenant_id, mark, grace_s=self.mark_grace_s)
        return relayed

    async def sweep_early_statuses(self) -> int:
        """Forget acks that never met their message (a day is far beyond any send result's delay)."""
        swept = 0
        for row in await db.pool().fetch("SELECT id FROM public.tenants WHERE status = 'active' ORDER BY id"):
            async with tenant_context(tenant_id=row["id"]) as session:
                status = await session.conn.execute(
                    "DELETE FROM early_statuses WHERE received_at < now() - make_interval(secs => $1)",
                    EARLY_STATUS_TTL_S,
                )
            swept += int(status.split()[-1])
        return swept

    async def timers_once(self) -> int:
        """Run the due timers (menu timeouts, snoozes ending, distribution retries); each one independently."""
        handled = 0
        for timer in await timers.claim_due(self.redis, self.keys):
            again = None
            try:
                again = await run_timer(self.redis, self.keys, timer)
            except (TenantSuspended, TenantNotFound):
                pass  # nothing to do for a tenant that is gone or suspended
            except Exception:
                logger.exception("timer %s failed; retried when its lease ends", timer.member)
                continue
            await timers.done(self.redis, self.keys, timer, again_at=again)
            handled += 1
        return handled

    async def presence_once(self) -> int:
        """Agents whose inbox stopped sending heartbeats go offline (returning their tickets where queues ask)."""
        return await sweep_presence(self.redis, self.keys)

    async def trim_once(self) -> None:
        for shard in range(self.keys.shards):
            await self.consumer(shard).trim()


async def _has_unrelayed(tenant_id: int) -> bool:
    try:
        async with tenant_context(tenant_id=tenant_id) as session:
            return bool(await session.conn.fetchval("SELECT 1 FROM outbox WHERE relayed_at IS NULL LIMIT 1"))
    except (TenantSuspended, TenantNotFound):
        return False


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Open the pool and Redis, then route until ``stop`` (or forever)."""
    settings.require("database_url", "redis_url")
    assert settings.database_url is not None and settings.redis_url is not None
    stop = stop or asyncio.Event()
    tune_gc()
    await db.start(settings.database_url, max_size=settings.db_pool_size)
    redis = Redis.from_url(settings.redis_url)
    try:
        worker = RouterWorker(redis, StreamKeys(settings.redis_prefix, settings.stream_shards))
        logger.info("router %s consuming %s shards", worker.owner, settings.stream_shards)
        await worker.run(stop)
    finally:
        await redis.aclose()
        await db.stop()
