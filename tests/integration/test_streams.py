"""Redis Streams plumbing on a real Redis: pending replay, reclaim, dead letters, safe trimming, shard order."""

from __future__ import annotations

import uuid

import pytest
from redis.asyncio import Redis

from supervisor.streams import StreamConsumer, StreamKeys, append_events
from supervisor.wire import Envelope, InboundMessage, decode_event, utcnow
from tests.conftest import xrange


@pytest.fixture
def keys(redis_prefix: str) -> StreamKeys:
    return StreamKeys(f"{redis_prefix}:{uuid.uuid4().hex[:8]}", shards=3)


def _event(n: int, chat: str = "5511988887777@s.whatsapp.net") -> Envelope:
    message = InboundMessage(provider_message_id=f"m{n}", chat_id=chat, chat_id_raw=chat, sender_id=chat,
                             text=f"hello {n}", occurred_at=utcnow())  # fmt: skip
    return Envelope(event_id=f"e{n}", tenant_id=1, connection_id=1, provider="simulator", received_at=utcnow(),
                    event=message)  # fmt: skip


async def test_one_chat_stays_on_one_shard_in_order(redis: Redis, keys: StreamKeys) -> None:
    await append_events(redis, keys, [_event(i) for i in range(20)])
    lengths = [await redis.xlen(k) for k in keys.all_inbound()]
    assert sorted(lengths) == [0, 0, 20]
    key = keys.all_inbound()[lengths.index(20)]
    texts = [getattr(decode_event(f[b"e"]).event, "text", None) for _, f in await xrange(redis, key)]
    assert texts == [f"hello {i}" for i in range(20)]


async def test_unacked_entries_come_back_to_a_restarted_consumer(redis: Redis, keys: StreamKeys) -> None:
    key = keys.inbound(0)
    first = StreamConsumer(redis, key, "router", "router-0")
    await first.ensure_group()
    await first.ensure_group()  # idempotent
    await redis.xadd(key, {b"e": b"a"})
    await redis.xadd(key, {b"e": b"b"})
    batch = await first.read(block_ms=None)
    assert [p for _, p in batch] == [b"a", b"b"]
    await first.ack([batch[0][0]])  # crash before acking the second

    restarted = StreamConsumer(redis, key, "router", "router-0")
    replay = await restarted.read(block_ms=None)
    assert [p for _, p in replay] == [b"b"]  # own pending first
    assert [p for _, p in await restarted.read(block_ms=None)] == [b"b"]  # until acknowledged
    await restarted.ack([replay[0][0]])
    await redis.xadd(key, {b"e": b"c"})
    assert [p for _, p in await restarted.read(block_ms=None)] == [b"c"]


async def test_reclaim_takes_over_a_dead_consumers_entries(redis: Redis, keys: StreamKeys) -> None:
    key = keys.inbound(1)
    dead = StreamConsumer(redis, key, "router", "router-dead")
    await dead.ensure_group()
    await redis.xadd(key, {b"e": b"x"})
    assert len(await dead.read(block_ms=None)) == 1
    heir = StreamConsumer(redis, key, "router", "router-heir", claim_idle_ms=0)
    claimed = await heir.reclaim()
    assert [p for _, p in claimed] == [b"x"]
    await heir.ack([claimed[0][0]])
    assert (await redis.xpending(key, "router"))["pending"] == 0


async def test_poison_entry_is_dead_lettered_after_max_failures(redis: Redis, keys: StreamKeys) -> None:
    key = keys.inbound(2)
    consumer = StreamConsumer(redis, key, "router", "router-2", dead_letter=keys.dead_letter(2),
                              failures=keys.failures(2), max_failures=3)  # fmt: skip
    await consumer.ensure_group()
    await redis.xadd(key, {b"e": b"poison"})
    entry = (await consumer.read(block_ms=None))[0]
    assert not await consumer.fail(entry, "boom 1")
    assert not await consumer.fail(entry, "boom 2")
    assert await consumer.fail(entry, "boom 3")
    dead = await xrange(redis, keys.dead_letter(2))
    assert dead[0][1][b"e"] == b"poison"
    assert dead[0][1][b"error"] == b"boom 3"
    assert (await redis.xpending(key, "router"))["pending"] == 0


async def test_trim_never_drops_pending_or_undelivered_entries(redis: Redis, keys: StreamKeys) -> None:
    key = keys.inbound(0) + ":trim"
    router = StreamConsumer(redis, key, "router", "r")
    audit = StreamConsumer(redis, key, "audit", "a")
    await router.ensure_group()
    await audit.ensure_group()
    ids = [await redis.xadd(key, {b"e": str(i).encode()}) for i in range(10)]
    got = await router.read(count=6, block_ms=None)  # 0..5 delivered to router
    await router.ack([got[0][0], got[1][0], got[3][0]])  # 2, 4, 5 stay pending
    seen = await audit.read(count=10, block_ms=None)
    await audit.ack([i for i, _ in seen])  # audit consumed everything
    assert await router.trim() == 2  # only 0 and 1: 2 is the oldest pending
    remaining = [i for i, _ in await xrange(redis, key)]
    assert remaining == ids[2:]
    await router.ack([got[2][0], got[4][0], got[5][0]])
    await router.trim()
    remaining = [i for i, _ in await xrange(redis, key)]
    assert remaining == ids[6:]  # 6..9 were never delivered to router
    await redis.delete(key)
