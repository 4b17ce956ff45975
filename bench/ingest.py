"""``atende bench ingest``: inbound messages end to end, and the raw insert ceiling of the same database.

The whole path runs: the simulator (a child process) generates the messages, one session host (a Ray actor
placed by the supervisor, as in production) receives them over WebSocket and appends them to Redis Streams, the router (a child process)
stores them in PostgreSQL and publishes realtime events. Latency is measured from the simulator's message
timestamp to the realtime event the inbox would receive (its stream id is the time of publication, after
the commit). The raw ceiling inserts the same rows with plain asyncpg, 100 per transaction, into the same
database in the same run.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from datetime import datetime
from typing import Any

import msgspec
import ray
from redis.asyncio import Redis

from bench.common import free_port, run_in_scratch, spawn, stop, wait_until
from saas.connections.service import create_connection
from saas.settings import Settings
from supervisor.actors import get_or_create_supervisor
from supervisor.host import HostConfig
from supervisor.simulator.client import SimulatorClient
from supervisor.streams import StreamKeys
from tenants import db
from tenants.context import tenant_context
from tenants.migrations import migrate_public
from tenants.provisioning import create_tenant

MASTER_KEY = "benchmark-master-key-" + "k" * 24  # a scratch database's data keys die with it

__all__ = ["run_ingest_bench"]

_decoder = msgspec.json.Decoder()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


async def _measure(database_url: str, redis_url: str, prefix: str, *, tenants: int, messages: int, phones: int,
                   shards: int, rate: float) -> dict[str, Any]:  # fmt: skip
    await db.start(database_url, max_size=8)
    sim_port = free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "ATENDE_REDIS_PREFIX": prefix,
           "ATENDE_STREAM_SHARDS": str(shards), "ATENDE_LOG_LEVEL": "WARNING", "ATENDE_SIMULATOR_URL": sim_url}  # fmt: skip
    children = []
    supervisor: Any = None
    redis = Redis.from_url(redis_url)
    try:
        await migrate_public()
        numbers: dict[int, str] = {}
        for i in range(tenants):
            info = await create_tenant(f"ingest{i:03d}", name=f"Ingest {i}", admin_email=f"admin@ingest{i}.example",
                                       admin_password="bench password", plan="enterprise")  # fmt: skip
            numbers[info.id] = f"+551190{i:07d}"
            async with tenant_context(tenant_id=info.id) as session:
                await create_connection(session, name="Bench", provider="simulator", business_number=numbers[info.id],
                                        endpoint=sim_url)  # fmt: skip
        children.append(spawn(["simulator", "--port", str(sim_port), "--auto-pair"], env))
        children.append(spawn(["worker"], env))
        keys = StreamKeys(prefix, shards)
        # The session host runs as in production: a Ray actor placed by the supervisor, in its own process.
        config = HostConfig(master_key=MASTER_KEY, name="unused", database_url=database_url, redis_url=redis_url,
                            redis_prefix=prefix, stream_shards=shards, simulator_url=sim_url)  # fmt: skip
        async with SimulatorClient(sim_url) as sim:
            await wait_until(sim.health, 30, "the simulator")
            supervisor = get_or_create_supervisor(config, sessions_per_host=1000, interval_s=0.5)
            await supervisor.ensure_running.remote()

            async def connected() -> bool:
                count = await db.pool().fetchval(
                    "SELECT count(*) FROM public.session_registry WHERE state = 'CONNECTED'"
                )
                return int(count) == tenants

            await wait_until(connected, 60, "every session CONNECTED")
            per_tenant = messages // tenants
            total = tenants * phones * (per_tenant // phones)
            # Phase 1, latency: the load offered at a steady `rate`, as real traffic arrives.
            latencies, _, _ = await _phase(sim, redis, keys, numbers, phones, per_tenant, rate, total, "a")
            # Phase 2, capacity: everything at once; throughput is first generated -> last visible.
            _, started_ms, last_ms = await _phase(sim, redis, keys, numbers, phones, per_tenant, None, total, "b")
            total *= 2
        elapsed_s = max(0.001, (last_ms - started_ms) / 1000)
        total //= 2
        stored = 0
        for tenant_id in numbers:
            async with tenant_context(tenant_id=tenant_id) as session:
                stored += int(await session.conn.fetchval("SELECT count(*) FROM messages"))
        ceiling = await _raw_ceiling(database_url, next(iter(numbers)), rows=min(max(total, 20_000), 100_000))
        throughput = total / elapsed_s
        return {
            "messages": total,
            "stored": stored,
            "tenants": tenants,
            "msgs_per_s": round(throughput, 1),
            "p50_ms": round(statistics.median(latencies), 1),
            "p99_ms": round(_pct(latencies, 0.99), 1),
            "latency_at_msgs_per_s": rate,
            "raw_ceiling_msgs_per_s": round(ceiling, 1),
            "ratio": round(throughput / ceiling, 3),
        }
    finally:
        if supervisor is not None:
            try:
                await asyncio.wait_for(supervisor.shutdown_hosts.remote(), 60)
            finally:
                ray.kill(supervisor, no_restart=True)
        for child in children:
            stop(child)
        await redis.aclose()
        await db.stop()


async def _phase(sim: SimulatorClient, redis: Redis, keys: StreamKeys, numbers: dict[int, str], phones: int,
                 per_tenant: int, rate: float | None, total: int, tag: str) -> tuple[list[float], float, float]:  # fmt: skip
    """Generate ``total`` messages (at ``rate`` msg/s overall, or at once) and follow them to the inbox."""
    cursors: dict[Any, Any] = {keys.realtime(t): "$" for t in numbers}
    for key in cursors:  # start after what earlier phases published
        last = await redis.xrevrange(key, count=1)
        cursors[key] = last[0][0] if last else "0"
    started_ms = time.time() * 1000
    for tenant_id, number in numbers.items():
        await sim.bulk(number, phones=phones, messages=per_tenant // phones,
                       rate=rate / len(numbers) if rate else None,
                       first_phone=f"+5521{(tag == 'a' and 7) or 8}{tenant_id:03d}000000")  # fmt: skip
    latencies: list[float] = []
    last_ms = started_ms
    deadline = time.monotonic() + 600
    while len(latencies) < total:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(latencies)} of {total} messages arrived")
        response: Any = await redis.xread(cursors, count=5000, block=1000)
        for key, items in response or []:
            for entry_id, fields in items:
                cursors[key.decode()] = entry_id.decode()
                event = _decoder.decode(fields[b"e"])
                if event["type"] != "message.created":
                    continue
                published_ms = int(entry_id.split(b"-")[0])
                occurred_ms = datetime.fromisoformat(event["data"]["occurred_at"]).timestamp() * 1000
                latencies.append(published_ms - occurred_ms)
                last_ms = max(last_ms, published_ms)
    return latencies, started_ms, last_ms


async def _raw_ceiling(database_url: str, tenant_id: int, *, rows: int) -> float:
    """Rows per second inserting message rows with plain asyncpg, 100 per transaction, via unnest."""
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        schema = await conn.fetchval("SELECT schema_name FROM public.tenants WHERE id = $1", tenant_id)
        ticket = await conn.fetchrow(f'SELECT id, connection_id FROM "{schema}".tickets LIMIT 1')
        assert ticket is not None
        ticket_id, connection_id = ticket["id"], ticket["connection_id"]
        run = uuid.uuid4().hex[:8]
        started = time.perf_counter()
        for batch in range(rows // 100):
            ids = [f"raw-{run}-{batch}-{i}" for i in range(100)]
            now = datetime.now().astimezone()
            async with conn.transaction():
                await conn.execute(
                    f"""
                    INSERT INTO "{schema}".messages (ticket_id, connection_id, provider_message_id, from_me, kind, body,
                                                     sender_id, sender_name, status, status_rank, occurred_at)
                    SELECT $1, $2, u.pid, false, 'text', u.body, 'raw@s.whatsapp.net', 'Raw', 'RECEIVED', 0, $4
                    FROM unnest($3::text[], $5::text[]) AS u(pid, body)
                    """,
                    ticket_id, connection_id, ids, now, [f"raw benchmark message number {i:05d} ....." for i in range(100)],
                )  # fmt: skip
        return (rows // 100) * 100 / (time.perf_counter() - started)
    finally:
        await conn.close()


def run_ingest_bench(settings: Settings, *, tenants: int = 4, messages: int = 50_000, phones: int = 50,
                     shards: int = 4, rate: float = 5000.0) -> dict[str, Any]:  # fmt: skip
    """Run the end-to-end ingest benchmark in a scratch database and Redis prefix."""
    if tenants < 1 or phones < 1 or messages < tenants * phones:
        raise ValueError("need tenants >= 1, phones >= 1 and messages >= tenants * phones")

    async def measure(database_url: str, redis_url: str, prefix: str) -> dict[str, Any]:
        return await _measure(
            database_url, redis_url, prefix, tenants=tenants, messages=messages, phones=phones, shards=shards, rate=rate
        )

    return run_in_scratch(settings, "ingest", measure, with_ray=True)
