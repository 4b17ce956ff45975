"""Automatic distribution under concurrency, on real PostgreSQL and Redis: 100 new conversations routed by three
router replicas over eight shards at once, five agents, then twenty closes from the API racing the router —
no ticket is ever assigned twice and no agent ever holds more open tickets than their capacity; and round-robin
keeps its turn however many routers distribute at once."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import msgspec
from redis.asyncio import Redis

from saas.app import create_app
from saas.connections.service import create_connection
from saas.router.worker import RouterWorker
from saas.settings import Settings
from supervisor.streams import StreamKeys, append_events
from supervisor.wire import Envelope, InboundMessage, utcnow
from tenants.context import tenant_context
from tenants.passwords import hash_password
from tenants.provisioning import TenantInfo
from tests.conftest import PASSWORD, app_client, eventually, login
from tests.integration.conftest import MakeTenant, tenant_value

CAPACITY = [10, 10, 10, 10, 5]


async def _snapshot(slug: str) -> tuple[dict[int, int], int, int]:
    """(open tickets per agent, assigned tickets, tickets assigned more than once)."""
    async with tenant_context(slug) as session:
        rows = await session.conn.fetch(
            "SELECT user_id, count(*) AS n FROM tickets WHERE status = 'open' AND user_id IS NOT NULL GROUP BY user_id"
        )
        assigned = await session.conn.fetchval("SELECT count(*) FROM tickets WHERE user_id IS NOT NULL")
        twice = await session.conn.fetchval(
            "SELECT count(*) FROM (SELECT ticket_id FROM ticket_events WHERE action = 'assigned'"
            " GROUP BY ticket_id HAVING count(*) > 1) x"
        )
    return {r["user_id"]: r["n"] for r in rows}, int(assigned), int(twice)


async def test_hundred_tickets_five_agents_no_double_assignment_capacity_kept(
    settings: Settings, make_tenant: MakeTenant, redis_url: str
) -> None:
    tenant = await make_tenant("busy", plan="enterprise")
    keys = StreamKeys(f"{settings.redis_prefix}:{uuid.uuid4().hex[:6]}", shards=8)
    async with tenant_context(tenant.slug) as session:
        conn = session.conn
        connection = await create_connection(session, name="Main", provider="simulator",
                                             business_number="+5511933330000")  # fmt: skip
        agents = {}
        for i, capacity in enumerate(CAPACITY):
            agents[await conn.fetchval(
                "INSERT INTO users (email, name, role, password_hash, capacity, presence) VALUES ($1, $2, 'agent', $3, $4,"
                " 'online') RETURNING id", f"a{i}@busy.io", f"Agent {i}", hash_password(PASSWORD), capacity,
            )] = capacity  # fmt: skip
        queue = await conn.fetchval("INSERT INTO queues (name, strategy) VALUES ('Geral', 'least_busy') RETURNING id")
        await conn.execute("INSERT INTO queue_members SELECT $1, unnest($2::bigint[])", queue, list(agents))
        await conn.execute("INSERT INTO queue_connections VALUES ($1, $2)", queue, connection.id)

    envelopes = _conversations(tenant, connection.id, 100)
    redis = Redis.from_url(redis_url)
    stop = asyncio.Event()
    violations: list[str] = []

    async def watch() -> None:  # capacity is checked all along, not only at the end
        while not stop.is_set():
            per_agent, _, twice = await _snapshot(tenant.slug)
            violations.extend(f"agent {a} holds {n} > {agents[a]}" for a, n in per_agent.items() if n > agents[a])
            if twice:
                violations.append(f"{twice} tickets assigned twice")
            await asyncio.sleep(0.02)

    routers = [RouterWorker(redis, keys, owner=f"router-{n}", batch_size=3, block_ms=50) for n in range(3)]
    tasks = [asyncio.create_task(r.run(stop)) for r in routers] + [asyncio.create_task(watch())]
    try:
        await append_events(redis, keys, envelopes)
        await eventually(lambda: tenant_value(tenant.slug, "SELECT count(*) = 100 FROM tickets"), what="100 tickets")
        per_agent, assigned, twice = await eventually(lambda: _settled(tenant.slug, sum(CAPACITY)),
                                                      what="every agent filled to capacity")  # fmt: skip
        assert per_agent == agents and assigned == sum(CAPACITY) and twice == 0

        # Twenty closes from the API, concurrently, while the routers keep running: each frees a place that
        # distribution fills from the 55 waiting tickets.
        async with app_client(create_app(msgspec.structs.replace(settings, redis_prefix=keys.prefix,
                                                                 stream_shards=keys.shards))) as client:  # fmt: skip
            tokens = {agent: await login(client, tenant.slug, f"a{i}@busy.io") for i, agent in enumerate(agents)}
            async with tenant_context(tenant.slug) as session:
                to_close = [(r["user_id"], r["id"]) for r in await session.conn.fetch(
                    "SELECT id, user_id FROM tickets WHERE status = 'open' ORDER BY id LIMIT 20")]  # fmt: skip

            async def close(user_id: int, ticket_id: int) -> httpx.Response:
                return await client.post(f"/api/v1/tickets/{ticket_id}/close", headers=tokens[user_id], json={})

            answers = await asyncio.gather(*(close(u, t) for u, t in to_close))
            assert [a.status_code for a in answers] == [200] * 20
        per_agent, assigned, twice = await eventually(lambda: _settled(tenant.slug, sum(CAPACITY) + 20),
                                                      what="the freed places filled again")  # fmt: skip
        assert per_agent == agents and twice == 0
        assert await tenant_value(tenant.slug, "SELECT count(*) FROM tickets WHERE status = 'pending'") == 100 - 45 - 20
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await redis.aclose()
    assert violations == []


async def test_round_robin_keeps_its_turn_across_routers(settings: Settings, make_tenant: MakeTenant,
                                                         redis_url: str) -> None:  # fmt: skip
    """Fifty conversations at once, three routers, five agents with room to spare: each gets exactly ten. A
    distributor reading the queue's cursor before the lock would continue from a stale turn and give some agent
    two in a row."""
    tenant = await make_tenant("turns", plan="enterprise")
    keys = StreamKeys(f"{settings.redis_prefix}:{uuid.uuid4().hex[:6]}", shards=8)
    async with tenant_context(tenant.slug) as session:
        conn = session.conn
        connection = await create_connection(session, name="Main", provider="simulator",
                                             business_number="+5511933330001")  # fmt: skip
        agents = [await conn.fetchval(
            "INSERT INTO users (email, name, role, password_hash, capacity, presence) VALUES ($1, $2, 'agent', $3, 100,"
            " 'online') RETURNING id", f"r{i}@turns.io", f"Agent {i}", hash_password(PASSWORD),
        ) for i in range(5)]  # fmt: skip
        queue = await conn.fetchval("INSERT INTO queues (name, strategy) VALUES ('Geral', 'round_robin') RETURNING id")
        await conn.execute("INSERT INTO queue_members SELECT $1, unnest($2::bigint[])", queue, agents)
        await conn.execute("INSERT INTO queue_connections VALUES ($1, $2)", queue, connection.id)
    envelopes = _conversations(tenant, connection.id, 50)
    redis = Redis.from_url(redis_url)
    stop = asyncio.Event()
    routers = [RouterWorker(redis, keys, owner=f"router-{n}", batch_size=1, block_ms=50) for n in range(3)]
    tasks = [asyncio.create_task(r.run(stop)) for r in routers]
    try:
        await append_events(redis, keys, envelopes)
        per_agent, _, twice = await eventually(lambda: _settled(tenant.slug, 50), what="fifty tickets assigned")
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await redis.aclose()
    assert twice == 0
    assert per_agent == dict.fromkeys(agents, 10)


def _conversations(tenant: TenantInfo, connection_id: int, count: int) -> list[Envelope]:
    """The first message of ``count`` new customers."""
    envelopes = []
    for i in range(count):
        chat = f"5511944{i:06d}@s.whatsapp.net"
        message = InboundMessage(provider_message_id=f"m{i}", chat_id=chat, chat_id_raw=chat, sender_id=chat,
                                 text=f"preciso de ajuda {i}", occurred_at=utcnow())  # fmt: skip
        envelopes.append(Envelope(event_id=f"e{i}", tenant_id=tenant.id, connection_id=connection_id,
                                  provider="simulator", received_at=utcnow(), event=message))  # fmt: skip
    return envelopes


async def _settled(slug: str, assigned: int) -> tuple[dict[int, int], int, int] | None:
    snapshot = await _snapshot(slug)
    return snapshot if snapshot[1] == assigned else None
