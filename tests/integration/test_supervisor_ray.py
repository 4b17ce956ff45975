"""The Ray actor tree on a real local Ray: a killed SessionHost comes back with its sessions, and the
messages that were flowing are all stored exactly once."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import ray
from redis.asyncio import Redis

from saas.connections.service import create_connection
from saas.router.worker import RouterWorker
from saas.settings import Settings
from supervisor.actors import NAMESPACE, get_or_create_supervisor
from supervisor.cluster import connect_ray
from supervisor.host import HostConfig
from supervisor.policy import RestartPolicy
from supervisor.simulator.client import SimulatorClient
from supervisor.simulator.network import SimConfig
from supervisor.simulator.server import SimulatorServer
from supervisor.streams import StreamKeys
from tenants.context import tenant_context
from tenants.db import pool
from tenants.provisioning import TenantInfo
from tests.conftest import eventually

MASTER_KEY = "test-master-key-" + "m" * 32
MakeTenant = Callable[..., Awaitable[TenantInfo]]


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    started = connect_ray(None)
    yield
    if started:
        ray.shutdown()


async def test_killed_host_returns_with_its_sessions_and_nothing_is_lost(
    local_ray: None, settings: Settings, make_tenant: MakeTenant, redis: Redis, redis_url: str
) -> None:
    config = SimConfig(auto_pair=True, ack_sent_s=0.01, ack_delivered_s=0.05, ack_read_s=0.1)
    async with SimulatorServer(config=config) as server, SimulatorClient(server.url) as sim:
        keys = StreamKeys(f"{settings.redis_prefix}:{uuid.uuid4().hex[:6]}", shards=2)
        tenant = await make_tenant("ray", plan="enterprise")
        numbers = [f"+55119{i:02d}{uuid.uuid4().int % 10**6:06d}" for i in range(3)]
        async with tenant_context(tenant.slug) as session:
            for number in numbers:
                await create_connection(session, name=number, provider="simulator", business_number=number,
                                        endpoint=server.url)  # fmt: skip
        assert settings.database_url is not None
        host_config = HostConfig(master_key=MASTER_KEY, name="unused", database_url=settings.database_url, redis_url=redis_url,
                                 redis_prefix=keys.prefix, stream_shards=keys.shards, simulator_url=server.url,
                                 policy=RestartPolicy(backoff_min_s=0.05), lease_ttl_s=5.0)  # fmt: skip
        supervisor: Any = get_or_create_supervisor(host_config, sessions_per_host=10, interval_s=0.3)
        stop = asyncio.Event()
        router = asyncio.create_task(RouterWorker(redis, keys, block_ms=100).run(stop))
        try:
            assert await supervisor.ensure_running.remote()

            async def states() -> list[str]:
                rows = await pool().fetch("SELECT state FROM public.session_registry WHERE tenant_id = $1", tenant.id)
                return [r["state"] for r in rows]

            await eventually(lambda: _all(states, "CONNECTED"), 60, "every session CONNECTED")
            await sim.configure(auto_pair=False)  # from now on a session that needs a QR would stay unpaired
            host: Any = ray.get_actor("atende-host-0", namespace=NAMESPACE)
            old_pid = await host.pid.remote()

            jobs = [await sim.bulk(number, phones=5, messages=20, rate=200.0, first_phone=f"+55217{i}0000000")
                    for i, number in enumerate(numbers)]  # fmt: skip
            await asyncio.sleep(0.2)  # messages are flowing
            ray.kill(host, no_restart=False)
            killed_at = time.monotonic()

            await eventually(lambda: _all(states, "CONNECTED", after=lambda: host.pid.remote(), old=old_pid), 30,
                        "sessions CONNECTED again on a restarted host")  # fmt: skip
            recovered_s = time.monotonic() - killed_at
            total = sum(j.total for j in jobs)

            async def stored() -> bool:
                async with tenant_context(tenant.slug) as session:
                    return int(await session.conn.fetchval("SELECT count(*) FROM messages")) == total

            await eventually(stored, 60, f"{total} messages stored")
            await asyncio.sleep(1.0)  # any duplicate redelivery would land now
            async with tenant_context(tenant.slug) as session:
                assert await session.conn.fetchval("SELECT count(*) FROM messages") == total
                assert await session.conn.fetchval("SELECT count(DISTINCT provider_message_id) FROM messages") == total
            assert recovered_s < 30
            for number in numbers:  # resumed from stored credentials: nobody asked for a QR
                assert not (await sim.number(number)).pairing
        finally:
            stop.set()
            await router
            await supervisor.shutdown_hosts.remote()
            ray.kill(supervisor, no_restart=True)


async def _all(states: Callable[[], Awaitable[list[str]]], state: str, *, after: Any = None, old: Any = None) -> bool:
    if after is not None:
        try:
            if await asyncio.wait_for(after(), 2) == old:
                return False
        except Exception:
            return False
    current = await states()
    return bool(current) and all(s == state for s in current)
