"""Agents see only tickets assigned to them or unassigned — in lists, by id, when replying and live."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import msgspec
import websockets
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
from tests.conftest import live_server

MakeTenant = Callable[..., Awaitable[TenantInfo]]


async def _feed(
    redis: Redis, keys: StreamKeys, tenant: TenantInfo, connection_id: int, chats: list[str], tag: str
) -> None:
    await append_events(redis, keys, [
        Envelope(event_id=f"{tag}{i}", tenant_id=tenant.id, connection_id=connection_id, provider="simulator",
                 received_at=utcnow(), event=InboundMessage(provider_message_id=f"{tag}{i}", chat_id=c, chat_id_raw=c,
                                                            sender_id=c, text=f"{tag} {c}", occurred_at=utcnow()))
        for i, c in enumerate(chats)])  # fmt: skip
    worker = RouterWorker(redis, keys)
    for shard in range(keys.shards):
        consumer = worker.consumer(shard)
        await consumer.ensure_group()
        while entries := await consumer.read(100, block_ms=None):
            await worker.process(consumer, entries)


async def test_agents_see_their_tickets_and_unassigned_ones(
    settings: Settings, make_tenant: MakeTenant, redis: Redis
) -> None:
    tenant = await make_tenant("vis", plan="pro")
    own = msgspec.structs.replace(settings, redis_prefix=settings.redis_prefix + ":vis")
    keys = StreamKeys(own.redis_prefix, own.stream_shards)
    async with tenant_context(tenant.slug) as session:
        connection = await create_connection(
            session, name="Main", provider="simulator", business_number="+5511933330000"
        )
        ids = {}
        for name in ("ana", "bruno"):
            ids[name] = await session.conn.fetchval(
                "INSERT INTO users (email, role, password_hash) VALUES ($1, 'agent', $2) RETURNING id",
                f"{name}@vis.io", hash_password("correct horse"),
            )  # fmt: skip
    chats = [f"5511944440{i:03d}@s.whatsapp.net" for i in range(3)]
    await _feed(redis, keys, tenant, connection.id, chats, "m")
    async with tenant_context(tenant.slug) as session:
        tickets = {r["wa_id"]: r["id"] for r in await session.conn.fetch(
            "SELECT t.id, c.wa_id FROM tickets t JOIN contacts c ON c.id = t.contact_id")}  # fmt: skip
        await session.conn.execute("UPDATE tickets SET user_id = $1 WHERE id = $2", ids["ana"], tickets[chats[0]])
        await session.conn.execute("UPDATE tickets SET user_id = $1 WHERE id = $2", ids["bruno"], tickets[chats[2]])
    mine, free, theirs = tickets[chats[0]], tickets[chats[1]], tickets[chats[2]]

    async with live_server(create_app(own)) as base, httpx.AsyncClient(base_url=base) as client:

        async def login(email: str) -> dict[str, str]:
            r = await client.post(
                "/api/v1/auth/login", json={"tenant": tenant.slug, "email": email, "password": "correct horse"}
            )
            return {"Authorization": f"Bearer {r.json()['access_token']}"}

        ana, admin = await login("ana@vis.io"), await login(f"admin@{tenant.slug}.example")
        listed = {t["id"] for t in (await client.get("/api/v1/tickets", headers=ana)).json()["items"]}
        assert listed == {mine, free}
        assert {t["id"] for t in (await client.get("/api/v1/tickets", headers=admin)).json()["items"]} == {
            mine,
            free,
            theirs,
        }
        assert (await client.get(f"/api/v1/tickets/{theirs}", headers=ana)).status_code == 404
        assert (await client.get(f"/api/v1/tickets/{theirs}/messages", headers=ana)).status_code == 404
        assert (
            await client.post(f"/api/v1/tickets/{theirs}/messages", headers=ana, json={"text": "x"})
        ).status_code == 404
        assert (await client.get(f"/api/v1/tickets/{mine}/messages", headers=ana)).status_code == 200

        ticket = (await client.post("/api/v1/auth/ws-ticket", headers=ana)).json()["ticket"]
        async with websockets.connect(f"{base.replace('http', 'ws')}/api/v1/events?ticket={ticket}") as socket:
            await _feed(redis, keys, tenant, connection.id, [chats[2], chats[0]], "live")
            seen: list[dict[str, Any]] = []
            while not any(e.get("type") == "message.created" for e in seen):
                seen.append(json.loads(await asyncio.wait_for(socket.recv(), 10)))
            await asyncio.sleep(0.3)
            try:
                while True:
                    seen.append(json.loads(await asyncio.wait_for(socket.recv(), 0.5)))
            except TimeoutError:
                pass
        delivered = {e["ticket_id"] for e in seen if e.get("ticket_id") is not None}
        assert mine in delivered
        assert theirs not in delivered
