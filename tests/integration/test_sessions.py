"""Supervised sessions end to end on the real stack: the simulator (the only fake: the WhatsApp network),
session hosts, Redis Streams, the router, PostgreSQL, the API and its WebSocket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import msgspec
import websockets

from saas.app import create_app
from supervisor.host import HostConfig, SessionHostCore
from supervisor.policy import RestartPolicy
from supervisor.registry import desired_sessions
from tenants.context import tenant_context
from tenants.db import pool
from tenants.secrets import is_sealed
from tests.conftest import eventually, live_server, login
from tests.integration.conftest import FAST, MASTER_KEY, Stack, tenant_value


async def test_phone_to_agent_and_back_with_acks(stack_factory: Callable[..., Awaitable[Stack]]) -> None:
    stack = await stack_factory()
    await eventually(lambda: stack.in_state("CONNECTED"), what="CONNECTED after auto-pairing")
    phone = "+5511988887777"
    async with live_server(create_app(stack.settings)) as base, httpx.AsyncClient(base_url=base) as client:
        auth = await login(client, stack.tenant.slug)
        ws_ticket = (await client.post("/api/v1/auth/ws-ticket", headers=auth)).json()["ticket"]
        async with websockets.connect(f"{base.replace('http', 'ws')}/api/v1/events?ticket={ws_ticket}") as socket:
            await stack.sim.send(phone, stack.number, "Oi, preciso de ajuda", name="Maria")
            while True:
                event = json.loads(await asyncio.wait_for(socket.recv(), 20))
                if event["type"] == "message.created":
                    break
            assert event["data"]["text"] == "Oi, preciso de ajuda"
            ticket_id = event["ticket_id"]

            ticket = (await client.get(f"/api/v1/tickets/{ticket_id}", headers=auth)).json()
            assert (ticket["contact"]["name"], ticket["contact"]["phone"]) == ("Maria", phone)
            reply = (await client.post(f"/api/v1/tickets/{ticket_id}/messages", headers=auth,
                                       json={"text": "Olá Maria, como posso ajudar?"})).json()  # fmt: skip

            async def phone_got_it() -> Any:
                inbox = await stack.sim.inbox(phone)
                return [m for m in inbox.messages if m.text == "Olá Maria, como posso ajudar?"]

            received = await eventually(phone_got_it, what="the reply in the phone's inbox")
            assert len(received) == 1

            statuses = []
            while "READ" not in statuses:
                event = json.loads(await asyncio.wait_for(socket.recv(), 20))
                if event["type"] == "message.updated" and event["data"]["id"] == reply["id"]:
                    statuses.append(event["data"]["status"])
            assert statuses[0] == "SENT"
        messages = (await client.get(f"/api/v1/tickets/{ticket_id}/messages", headers=auth)).json()["items"]
        assert [(m["text"], m["status"]) for m in messages] == [("Oi, preciso de ajuda", "RECEIVED"),
                                                                ("Olá Maria, como posso ajudar?", "READ")]  # fmt: skip
        assert messages[1]["provider_message_id"] == received[0].id
        labels = f'tenant="{stack.tenant.id}",connection="1"'

        async def flushed() -> str | None:  # hosts flush their counters once a second
            text = (await client.get("/metrics")).text
            wanted = (
                f"atende_session_messages_out_total{{{labels}}} 1.0",
                f"atende_session_messages_in_total{{{labels}}} ",
            )
            return text if all(w in text for w in wanted) else None

        metrics = await eventually(flushed, what="session metrics on /metrics")
        assert f"atende_session_messages_in_total{{{labels}}} " in metrics
        assert f'atende_session_state{{{labels},state="CONNECTED"}} 1' in metrics
        assert f"atende_session_send_latency_seconds_count{{{labels}}} 1.0" in metrics


async def _message_count(stack: Stack) -> int:
    return int(await tenant_value(stack.tenant.slug, "SELECT count(*) FROM messages"))


async def test_duplicate_deliveries_store_one_message(stack_factory: Callable[..., Awaitable[Stack]]) -> None:
    stack = await stack_factory(config=msgspec.structs.replace(FAST, inbound_duplicate=1.0))
    await eventually(lambda: stack.in_state("CONNECTED"))
    for i in range(5):
        await stack.sim.send("+5511977776666", stack.number, f"dup {i}")

    async def settled() -> bool:
        state = await stack.sim.number(stack.number)
        return state.pending == 0 and state.delivered >= 10 and await _message_count(stack) == 5

    await eventually(settled, what="5 messages delivered twice each, stored once")
    await asyncio.sleep(0.3)
    assert await _message_count(stack) == 5


async def test_logged_out_is_not_restarted(stack_factory: Callable[..., Awaitable[Stack]]) -> None:
    stack = await stack_factory()
    await eventually(lambda: stack.in_state("CONNECTED"))
    connects = (await stack.sim.number(stack.number)).connects
    await stack.sim.fault(stack.number, "logged_out")
    await eventually(lambda: stack.in_state("LOGGED_OUT"), what="LOGGED_OUT")
    await asyncio.sleep(1.0)
    assert (await stack.sim.number(stack.number)).connects == connects  # no reconnection attempt
    assert stack.tenant.id not in {s.tenant_id for s in await desired_sessions()}
    async with tenant_context(stack.tenant.slug) as session:
        assert await session.conn.fetchval("SELECT credentials FROM connections") is None


async def test_replaced_is_quarantined(stack_factory: Callable[..., Awaitable[Stack]]) -> None:
    stack = await stack_factory()
    await eventually(lambda: stack.in_state("CONNECTED"))
    await stack.sim.fault(stack.number, "replaced")
    await eventually(lambda: stack.in_state("QUARANTINED"), what="QUARANTINED")
    connects = (await stack.sim.number(stack.number)).connects
    await asyncio.sleep(1.0)
    assert (await stack.sim.number(stack.number)).connects == connects


async def test_network_loss_restarts_and_resumes_without_qr(stack_factory: Callable[..., Awaitable[Stack]]) -> None:
    stack = await stack_factory()
    await eventually(lambda: stack.in_state("CONNECTED"))
    async with tenant_context(stack.tenant.slug) as session:
        stored = await session.conn.fetchval("SELECT credentials FROM connections")
    assert stored is not None and is_sealed(stored)  # credentials at rest are encrypted with the tenant's data key
    assert b"simcred" not in stored
    before = (await stack.sim.number(stack.number)).connects
    await stack.sim.fault(stack.number, "network")
    await eventually(lambda: _reconnected(stack, before), what="a new connection")
    await eventually(lambda: stack.in_state("CONNECTED"))
    await stack.sim.send("+5511966665555", stack.number, "after the blip")
    await eventually(lambda: _count_is(stack, 1), what="the message after reconnecting")


async def _reconnected(stack: Stack, before: int) -> bool:
    state = await stack.sim.number(stack.number)
    return state.connects > before and state.connected


async def _count_is(stack: Stack, n: int) -> bool:
    return await _message_count(stack) == n


async def test_crash_loop_gives_up_after_the_intensity_limit(stack_factory: Callable[..., Awaitable[Stack]]) -> None:
    policy = RestartPolicy(max_restarts=3, within_s=60, backoff_min_s=0.05, backoff_max_s=0.2)
    stack = await stack_factory(policy=policy)
    await eventually(lambda: stack.in_state("CONNECTED"))
    await stack.sim.fault(stack.number, "refuse", seconds=60)
    await stack.sim.fault(stack.number, "network")
    await eventually(lambda: stack.in_state("GAVE_UP"), what="GAVE_UP")
    runner = next(iter(stack.host.runners.values()))
    assert runner.restarts == 3
    assert stack.tenant.id not in {s.tenant_id for s in await desired_sessions()}


async def test_one_live_connection_per_session_across_hosts(stack_factory: Callable[..., Awaitable[Stack]]) -> None:
    stack = await stack_factory()
    await eventually(lambda: stack.in_state("CONNECTED"))
    spec = await stack.spec()
    assert stack.settings.database_url is not None
    rival = SessionHostCore(HostConfig(master_key=MASTER_KEY, name="rival-host", database_url=stack.settings.database_url,
                                       redis_url=stack.host.config.redis_url, redis_prefix=stack.keys.prefix,
                                       stream_shards=stack.keys.shards, simulator_url=stack.settings.simulator_url,
                                       lease_ttl_s=5.0))  # fmt: skip
    try:
        await rival.ensure([spec])  # a second host told to run the same session (e.g. a stale placement)
        await asyncio.sleep(1.5)
        assert [r["state"] for r in rival.status()] == ["STOPPED"]  # it waits for the lease, never connects
        number = await stack.sim.number(stack.number)
        assert number.connected
        owner = await pool().fetchrow("SELECT lease_owner, lease_token FROM public.session_registry WHERE id = $1",
                                      spec.registry_id)  # fmt: skip
        assert owner is not None and owner["lease_owner"] == stack.host.config.name
        await stack.sim.send("+5511955554444", stack.number, "still one connection")
        await eventually(lambda: _count_is(stack, 1), what="the message through the lease holder")

        # A zombie holding an old fencing token can no longer write the session's state.
        from supervisor.registry import record_state
        from supervisor.wire import SessionState

        assert not await record_state(spec, owner["lease_token"] - 1, SessionState.STOPPED, masters=stack.host.masters)
        assert await stack.state() == "CONNECTED"
    finally:
        await rival.shutdown()
