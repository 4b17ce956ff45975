"""Shared fixtures of the integration tests that run the whole message path: the WhatsApp simulator (the only
fake), a session host, the router, PostgreSQL and Redis; and the helpers the integration tests share (routing what
is waiting, queries in a tenant's schema, knowing that a transaction blocks another)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec
import pytest
from redis.asyncio import Redis

from saas.connections.service import create_connection
from saas.router.worker import RouterWorker
from saas.settings import Settings
from supervisor.host import HostConfig, SessionHostCore
from supervisor.policy import RestartPolicy
from supervisor.registry import SessionSpec, desired_sessions
from supervisor.simulator.client import SimulatorClient
from supervisor.simulator.network import SimConfig
from supervisor.simulator.server import SimulatorServer
from supervisor.streams import StreamKeys
from tenants.context import tenant_context
from tenants.db import pool
from tenants.provisioning import TenantInfo

MASTER_KEY = "test-master-key-" + "m" * 32
MakeTenant = Callable[..., Awaitable[TenantInfo]]
FAST = SimConfig(ack_sent_s=0.01, ack_delivered_s=0.05, ack_read_s=0.1, qr_first_s=5, qr_next_s=2)
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


async def drain(worker: RouterWorker) -> None:
    """Route everything waiting in the worker's inbound streams, shard by shard, until they are empty."""
    for shard in range(worker.keys.shards):
        consumer = worker.consumer(shard)
        await consumer.ensure_group()
        while entries := await consumer.read(500, block_ms=None):
            await worker.process(consumer, entries)


async def tenant_rows(slug: str, sql: str, *args: Any) -> list[Any]:
    async with tenant_context(slug) as session:
        return list(await session.conn.fetch(sql, *args))


async def tenant_value(slug: str, sql: str, *args: Any) -> Any:
    async with tenant_context(slug) as session:
        return await session.conn.fetchval(sql, *args)


class TenantQueries:
    """``rows`` and ``value`` in the schema of ``self.tenant`` (for the tests' harnesses)."""

    tenant: TenantInfo

    async def rows(self, sql: str, *args: Any) -> list[Any]:
        return await tenant_rows(self.tenant.slug, sql, *args)

    async def value(self, sql: str, *args: Any) -> Any:
        return await tenant_value(self.tenant.slug, sql, *args)


async def waiting_on_a_lock(database: str) -> bool:
    """Whether a backend of ``database`` is waiting on a lock: with ``eventually``, how a test knows that a
    transaction it started has blocked another (instead of sleeping and hoping)."""
    conn = await asyncpg.connect(database)
    try:
        return bool(await conn.fetchval(
            "SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        ))  # fmt: skip
    finally:
        await conn.close()


@dataclass
class Stack:
    tenant: TenantInfo
    settings: Settings
    keys: StreamKeys
    redis: Redis
    sim: SimClient
    host: SessionHostCore
    number: str
    connection_id: int

    async def spec(self) -> SessionSpec:
        return next(s for s in await desired_sessions() if s.tenant_id == self.tenant.id)

    async def state(self) -> str:
        return str(
            await pool().fetchval("SELECT state FROM public.session_registry WHERE tenant_id = $1", self.tenant.id)
        )

    async def in_state(self, state: str) -> bool:
        return await self.state() == state


SimClient = SimulatorClient


@pytest.fixture
async def stack_factory(
    settings: Settings, make_tenant: MakeTenant, redis_url: str
) -> AsyncIterator[Callable[..., Awaitable[Stack]]]:
    cleanups: list[Callable[[], Awaitable[None]]] = []

    async def make(*, config: SimConfig = FAST, policy: RestartPolicy | None = None, auto_pair: bool = True,
                   plan: str = "free") -> Stack:  # fmt: skip
        server = SimulatorServer(config=msgspec.structs.replace(config, auto_pair=auto_pair))
        sim_url = await server.start()
        cleanups.append(server.stop)
        keys = StreamKeys(f"{settings.redis_prefix}:{uuid.uuid4().hex[:6]}", shards=2)
        own = msgspec.structs.replace(
            settings, redis_prefix=keys.prefix, stream_shards=keys.shards, simulator_url=sim_url
        )
        tenant = await make_tenant("sess", plan=plan)
        number = "+55119" + str(uuid.uuid4().int)[:8]
        async with tenant_context(tenant.slug) as session:
            connection = await create_connection(
                session, name="Main", provider="simulator", business_number=number, endpoint=sim_url
            )
        redis = Redis.from_url(redis_url)
        stop = asyncio.Event()
        router = asyncio.create_task(RouterWorker(redis, keys, block_ms=100, timer_interval_s=0.1).run(stop))
        assert own.database_url is not None
        host = SessionHostCore(HostConfig(master_key=MASTER_KEY, name=f"test-host-{uuid.uuid4().hex[:6]}", database_url=own.database_url,
                                          redis_url=redis_url, redis_prefix=keys.prefix, stream_shards=keys.shards,
                                          simulator_url=sim_url, policy=policy or RestartPolicy(backoff_min_s=0.05),
                                          lease_ttl_s=5.0, media_dir=str(own.media_path)))  # fmt: skip
        sim = SimulatorClient(sim_url)

        async def cleanup() -> None:
            await host.shutdown()
            stop.set()
            await router
            await sim.aclose()
            await redis.aclose()

        cleanups.append(cleanup)
        stack = Stack(tenant, own, keys, redis, sim, host, number, connection.id)
        await host.ensure([await stack.spec()])
        return stack

    yield make
    for cleanup in reversed(cleanups):
        with contextlib.suppress(Exception):
            await cleanup()
