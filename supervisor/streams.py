"""Redis Streams: the keys, appending, and a consumer-group reader with reclaim, dead letters and safe trimming.

Keys carry a hash tag per shard so they spread over a Redis Cluster and no command spans two slots:

* ``{p}:in:{s<n>}``          inbound events (messages, acks, session changes), sharded by chat so order holds per chat
* ``{p}:dlq:{s<n>}``         inbound events that failed ``max_failures`` times
* ``{p}:out:{t<t>c<c>}``     one outbound stream per connection (commands for the session host)
* ``{p}:rt:{t<t>}``          one realtime stream per tenant (what the inbox shows), capped
* ``{p}:lease:...``          shard leases of router replicas

Guarantees: an event is acknowledged to its producer only after ``XADD`` returned; entries leave a stream
only by ``XACK`` after their effects committed, or by dead-lettering; ``trim`` never removes an entry that
is pending or not yet delivered to every group.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from supervisor.wire import Envelope, FetchMedia, OutboundMessage, encode

__all__ = ["FETCH_FIELD", "FIELD", "Entry", "StreamConsumer", "StreamKeys", "append_events", "append_outbound"]

FIELD = b"e"
FETCH_FIELD = b"f"  # outbound streams: a media download command instead of a send
Entry = tuple[bytes, bytes]  # (stream id, payload)


@dataclass(frozen=True, slots=True)
class StreamKeys:
    prefix: str
    shards: int = 4

    def shard_for(self, tenant_id: int, connection_id: int, chat_id: str) -> int:
        """Every event of one chat lands on one shard, so per-chat order survives any number of routers."""
        return zlib.crc32(f"{tenant_id}:{connection_id}:{chat_id}".encode()) % self.shards

    def inbound(self, shard: int) -> str:
        return f"{self.prefix}:in:{{s{shard}}}"

    def dead_letter(self, shard: int) -> str:
        return f"{self.prefix}:dlq:{{s{shard}}}"

    def failures(self, shard: int) -> str:
        return f"{self.prefix}:fail:{{s{shard}}}"

    def outbound(self, tenant_id: int, connection_id: int) -> str:
        return f"{self.prefix}:out:{{t{tenant_id}c{connection_id}}}"

    def realtime(self, tenant_id: int) -> str:
        return f"{self.prefix}:rt:{{t{tenant_id}}}"

    def lease(self, name: str) -> str:
        return f"{self.prefix}:lease:{{{name}}}"

    def all_inbound(self) -> list[str]:
        return [self.inbound(s) for s in range(self.shards)]


def _chat_of(envelope: Envelope) -> str:
    event = envelope.event
    return getattr(event, "chat_id", None) or f"session:{envelope.connection_id}"


async def append_events(redis: Redis, keys: StreamKeys, envelopes: Sequence[Envelope]) -> list[bytes]:
    """Append events to their shards in one round trip; returns the stream ids (in order)."""
    async with redis.pipeline(transaction=False) as pipe:
        for envelope in envelopes:
            shard = keys.shard_for(envelope.tenant_id, envelope.connection_id, _chat_of(envelope))
            _ = pipe.xadd(keys.inbound(shard), {FIELD: encode(envelope)})
        ids: list[bytes] = await pipe.execute()
    return ids


async def append_outbound(redis: Redis, keys: StreamKeys, commands: Sequence[OutboundMessage | FetchMedia]) -> None:
    """Append send (and media download) commands to their connections' outbound streams in one round trip."""
    async with redis.pipeline(transaction=False) as pipe:
        for command in commands:
            field = FETCH_FIELD if isinstance(command, FetchMedia) else FIELD
            _ = pipe.xadd(keys.outbound(command.tenant_id, command.connection_id), {field: encode(command)})
        await pipe.execute()


class StreamConsumer:
    """One consumer of one group on one stream.

    ``read`` first returns this consumer's own pending entries (left over from a crash: the consumer name is
    stable per shard, not per process), then new ones. ``fail`` counts failures per entry and moves an entry
    to the dead-letter stream after ``max_failures``. ``reclaim`` takes over entries another consumer left
    pending for longer than ``claim_idle_ms``.
    """

    __slots__ = ("_backlog_done", "claim_idle_ms", "consumer", "dead_letter", "failures", "group", "key",
                 "max_failures", "redis")  # fmt: skip

    def __init__(
        self,
        redis: Redis,
        key: str,
        group: str,
        consumer: str,
        *,
        dead_letter: str | None = None,
        failures: str | None = None,
        max_failures: int = 5,
        claim_idle_ms: int = 30_000,
    ) -> None:
        self.redis = redis
        self.key = key
        self.group = group
        self.consumer = consumer
        self.dead_letter = dead_letter
        self.failures = failures
        self.max_failures = max_failures
        self.claim_idle_ms = claim_idle_ms
        self._backlog_done = False

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.key, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read(self, count: int = 500, block_ms: int | None = 1000) -> list[Entry]:
        if not self._backlog_done:
            pending = await self._read("0", count, None)
            if pending:
                return pending
            self._backlog_done = True
        return await self._read(">", count, block_ms)

    async def _read(self, start: str, count: int, block_ms: int | None) -> list[Entry]:
        response: Any = await self.redis.xreadgroup(self.group, self.consumer, {self.key: start}, count=count,
                                                    block=block_ms)  # fmt: skip
        if not response:
            return []
        entries: list[Entry] = []
        for _key, items in response:
            for entry_id, fields in items:
                if fields:  # a pending entry that was trimmed away comes back with no fields
                    entries.append((entry_id, fields[FIELD]))
        return entries

    def replay_pending(self) -> None:
        """Make the next ``read`` return this consumer's unacknowledged entries again (after a failed batch)."""
        self._backlog_done = False

    async def ack(self, ids: Sequence[bytes]) -> None:
        if ids:
            await self.redis.xack(self.key, self.group, *ids)

    async def fail(self, entry: Entry, error: str) -> bool:
        """Record a failed attempt; returns True if the entry was dead-lettered (and acked)."""
        if self.failures is None or self.dead_letter is None:
            return False
        entry_id, payload = entry
        count = int(await self.redis.hincrby(self.failures, entry_id.decode(), 1))
        if count < self.max_failures:
            return False
        async with self.redis.pipeline(transaction=False) as pipe:
            _ = pipe.xadd(self.dead_letter, {FIELD: payload, b"id": entry_id, b"error": error[:500].encode()})
            _ = pipe.xack(self.key, self.group, entry_id)
            _ = pipe.hdel(self.failures, entry_id.decode())
            await pipe.execute()
        return True

    async def clear_failures(self, ids: Sequence[bytes]) -> None:
        if self.failures is not None and ids:
            await self.redis.hdel(self.failures, *[i.decode() for i in ids])

    async def reclaim(self, count: int = 500) -> list[Entry]:
        """Claim entries other consumers left pending longer than ``claim_idle_ms``."""
        response: Any = await self.redis.xautoclaim(self.key, self.group, self.consumer, self.claim_idle_ms,
                                                    start_id="0-0", count=count)  # fmt: skip
        claimed = response[1] if response else []
        return [(entry_id, fields[FIELD]) for entry_id, fields in claimed if fields]

    async def trim(self) -> int:
        """Remove entries every group has consumed and acknowledged; never a pending or undelivered one."""
        if not await self.redis.exists(self.key):
            return 0
        groups: Any = await self.redis.xinfo_groups(self.key)
        if not groups:
            return 0
        floor: tuple[int, int] | None = None
        for group in groups:
            last = _parse_id(group["last-delivered-id"])
            candidate = (last[0], last[1] + 1)
            if group["pending"]:
                summary: Any = await self.redis.xpending(self.key, group["name"])
                candidate = min(candidate, _parse_id(summary["min"]))
            floor = candidate if floor is None else min(floor, candidate)
        assert floor is not None
        removed: int = await self.redis.xtrim(self.key, minid=f"{floor[0]}-{floor[1]}", approximate=False)
        return removed


def _parse_id(value: bytes | str) -> tuple[int, int]:
    text = value.decode() if isinstance(value, bytes) else value
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)
