"""The router on real PostgreSQL and Redis: events in a stream become tickets and messages exactly once,
replies go out through the outbox, statuses only move forward, and the inbox hears it all live."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
import websockets
from redis.asyncio import Redis

from saas.app import create_app
from saas.connections.service import create_connection
from saas.router.worker import RouterWorker
from saas.settings import Settings
from supervisor.streams import StreamKeys, append_events
from supervisor.wire import Envelope, InboundMessage, MessageStatus, decode_outbound, utcnow
from tenants.context import tenant_context
from tenants.provisioning import TenantInfo
from tests.conftest import PASSWORD, app_client, live_server, login, xrange
from tests.integration.conftest import MakeTenant, drain


@pytest.fixture
def keys(settings: Settings) -> StreamKeys:
    return StreamKeys(f"{settings.redis_prefix}:{uuid.uuid4().hex[:6]}", shards=2)


@pytest.fixture
def app_settings(settings: Settings, keys: StreamKeys) -> Settings:
    import msgspec

    return msgspec.structs.replace(settings, redis_prefix=keys.prefix, stream_shards=keys.shards)


def _inbound(tenant: TenantInfo, connection_id: int, phone: str, n: int, text: str) -> Envelope:
    chat = f"{phone}@s.whatsapp.net"
    message = InboundMessage(provider_message_id=f"{phone}-{n}", chat_id=chat, chat_id_raw=f"{phone}@c.us",
                             sender_id=chat, sender_name=f"Customer {phone[-2:]}", text=text,
                             occurred_at=utcnow() + timedelta(milliseconds=n))  # fmt: skip
    return Envelope(event_id=f"{phone}-{n}", tenant_id=tenant.id, connection_id=connection_id, provider="simulator",
                    received_at=utcnow(), event=message)  # fmt: skip


def _status(tenant: TenantInfo, connection_id: int, chat: str, status: str, *, pid: str | None,
            client_id: int | None = None) -> Envelope:  # fmt: skip
    event = MessageStatus(provider_message_id=pid, status=status, chat_id=chat, client_message_id=client_id,  # type: ignore[arg-type]
                          occurred_at=utcnow())  # fmt: skip
    return Envelope(event_id=f"st-{uuid.uuid4().hex}", tenant_id=tenant.id, connection_id=connection_id,
                    provider="simulator", received_at=utcnow(), event=event)  # fmt: skip


async def test_inbound_to_tickets_reply_and_acks(
    app_settings: Settings, keys: StreamKeys, redis: Redis, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant("router")
    async with tenant_context(tenant.slug) as session:
        connection = await create_connection(
            session, name="Main", provider="simulator", business_number="+5511900000001"
        )
    worker = RouterWorker(redis, keys)
    phones = ["5511988880001", "5511988880002"]
    events = [_inbound(tenant, connection.id, p, n, f"msg {n} from {p}") for p in phones for n in range(3)]
    await append_events(redis, keys, events + events[:2])  # provider redelivered two
    await drain(worker)

    async with app_client(create_app(app_settings)) as client:
        auth = await login(client, tenant.slug)
        tickets = (await client.get("/api/v1/tickets", headers=auth)).json()["items"]
        assert sorted(t["contact"]["phone"] for t in tickets) == sorted(f"+{p}" for p in phones)
        assert all(t["unread_count"] == 3 and t["status"] == "pending" for t in tickets)
        ticket = tickets[0]
        messages = (await client.get(f"/api/v1/tickets/{ticket['id']}/messages", headers=auth)).json()["items"]
        assert [m["text"] for m in messages] == [f"msg {n} from {ticket['contact']['phone'][1:]}" for n in range(3)]

        client_id = str(uuid.uuid4())
        sent = await client.post(f"/api/v1/tickets/{ticket['id']}/messages", headers=auth,
                                 json={"text": "Olá! Como posso ajudar?", "client_id": client_id})  # fmt: skip
        assert sent.status_code == 201, sent.text
        reply = sent.json()
        assert reply["status"] == "QUEUED"
        again = await client.post(f"/api/v1/tickets/{ticket['id']}/messages", headers=auth,
                                  json={"text": "Olá! Como posso ajudar?", "client_id": client_id})  # fmt: skip
        assert again.json()["id"] == reply["id"]  # idempotent

        outbound = await xrange(redis, keys.outbound(tenant.id, connection.id))
        assert len(outbound) == 1
        command = decode_outbound(outbound[0][1][b"e"])
        assert (command.message_id, command.chat_id, command.text) == (reply["id"], ticket["contact"]["wa_id"],
                                                                     "Olá! Como posso ajudar?")  # fmt: skip

        chat = ticket["contact"]["wa_id"]
        # An ack that overtakes the send result, the result itself, then a late, older ack.
        await append_events(redis, keys, [_status(tenant, connection.id, chat, "DELIVERED", pid="3EB0AAA")])
        await drain(worker)
        await append_events(
            redis, keys, [_status(tenant, connection.id, chat, "SENT", pid="3EB0AAA", client_id=reply["id"])]
        )
        await drain(worker)
        await append_events(redis, keys, [_status(tenant, connection.id, chat, "READ", pid="3EB0AAA"),
                                          _status(tenant, connection.id, chat, "SENT", pid="3EB0AAA")])  # fmt: skip
        await drain(worker)
        messages = (await client.get(f"/api/v1/tickets/{ticket['id']}/messages", headers=auth)).json()["items"]
        assert messages[-1]["id"] == reply["id"]
        assert messages[-1]["status"] == "READ"
        assert messages[-1]["provider_message_id"] == "3EB0AAA"
        opened = (await client.get(f"/api/v1/tickets/{ticket['id']}", headers=auth)).json()
        assert (opened["status"], opened["unread_count"]) == ("open", 0)

    async with tenant_context(tenant.slug) as session:
        assert await session.conn.fetchval("SELECT count(*) FROM messages") == 7
        assert await session.conn.fetchval("SELECT count(*) FROM early_statuses") == 0
        assert await session.conn.fetchval("SELECT count(*) FROM outbox WHERE relayed_at IS NULL") == 0


async def test_the_providers_echo_of_our_send_does_not_duplicate_it(
    app_settings: Settings, keys: StreamKeys, redis: Redis, make_tenant: MakeTenant
) -> None:
    """Linked-device sync may deliver our own send as a message "from me" before the send result names it; the
    result must still land (not dead-letter on the unique provider id) and the conversation show it once."""
    tenant = await make_tenant("echo")
    async with tenant_context(tenant.slug) as session:
        connection = await create_connection(session, name="Main", provider="simulator",
                                             business_number="+5511900000002")  # fmt: skip
    worker = RouterWorker(redis, keys)
    await append_events(redis, keys, [_inbound(tenant, connection.id, "5511988880009", 0, "oi")])
    await drain(worker)
    async with app_client(create_app(app_settings)) as client:
        auth = await login(client, tenant.slug)
        ticket = (await client.get("/api/v1/tickets", headers=auth)).json()["items"][0]
        sent = await client.post(f"/api/v1/tickets/{ticket['id']}/messages", headers=auth, json={"text": "Olá!"})
        reply = sent.json()
        chat = ticket["contact"]["wa_id"]
        echo = InboundMessage(provider_message_id="3EB0ECHO", chat_id=chat, chat_id_raw=chat, sender_id=chat,
                              from_me=True, text="Olá!", occurred_at=utcnow())  # fmt: skip
        await append_events(redis, keys, [Envelope(event_id="echo", tenant_id=tenant.id, connection_id=connection.id,
                                                   provider="simulator", received_at=utcnow(), event=echo)])  # fmt: skip
        await drain(worker)
        assert len((await client.get(f"/api/v1/tickets/{ticket['id']}/messages", headers=auth)).json()["items"]) == 3
        await append_events(redis, keys, [_status(tenant, connection.id, chat, "SENT", pid="3EB0ECHO",
                                                  client_id=reply["id"])])  # fmt: skip
        await drain(worker)
        messages = (await client.get(f"/api/v1/tickets/{ticket['id']}/messages", headers=auth)).json()["items"]
        assert [(m["id"], m["text"], m["status"], m["provider_message_id"]) for m in messages[1:]] == [
            (reply["id"], "Olá!", "SENT", "3EB0ECHO")]  # fmt: skip
    assert sum([await redis.xlen(keys.dead_letter(shard)) for shard in range(keys.shards)]) == 0


async def test_router_killed_between_commit_and_xack_stores_nothing_twice(
    keys: StreamKeys, redis: Redis, make_tenant: MakeTenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = await make_tenant("crash")
    async with tenant_context(tenant.slug) as session:
        connection = await create_connection(
            session, name="Main", provider="simulator", business_number="+5511900000002"
        )
    await append_events(redis, keys, [_inbound(tenant, connection.id, "5511977770001", n, f"m{n}") for n in range(5)])

    doomed = RouterWorker(redis, keys)

    async def crash(self: object, ids: object) -> None:
        raise ConnectionError("killed before XACK")

    with monkeypatch.context() as patch:
        from supervisor.streams import StreamConsumer

        patch.setattr(StreamConsumer, "ack", crash)
        with pytest.raises(ConnectionError):
            await drain(doomed)
    async with tenant_context(tenant.slug) as session:
        assert await session.conn.fetchval("SELECT count(*) FROM messages") == 5  # committed

    await drain(RouterWorker(redis, keys))  # the successor replays the unacknowledged batch
    async with tenant_context(tenant.slug) as session:
        assert await session.conn.fetchval("SELECT count(*) FROM messages") == 5
        assert await session.conn.fetchval("SELECT unread_count FROM tickets") == 5
    for shard in range(keys.shards):
        assert (await redis.xpending(keys.inbound(shard), "router"))["pending"] == 0


async def test_poison_event_goes_to_dead_letter_and_the_rest_flows(
    keys: StreamKeys, redis: Redis, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant("poison")
    async with tenant_context(tenant.slug) as session:
        connection = await create_connection(
            session, name="Main", provider="simulator", business_number="+5511900000003"
        )
    good = _inbound(tenant, connection.id, "5511966660001", 1, "fine")
    bad = _inbound(tenant, connection.id + 999, "5511966660001", 2, "unknown connection -> FK violation")
    await append_events(redis, keys, [good, bad])
    worker = RouterWorker(redis, keys, max_failures=2)
    for _ in range(3):
        await drain(worker)
    async with tenant_context(tenant.slug) as session:
        assert await session.conn.fetchval("SELECT body FROM messages") == "fine"
    dead = [e for s in range(keys.shards) for e in await xrange(redis, keys.dead_letter(s))]
    assert len(dead) == 1
    assert b"ForeignKeyViolation" in dead[0][1][b"error"]


async def test_inbox_websocket_receives_events_and_replays_missed_ones(
    app_settings: Settings, keys: StreamKeys, redis: Redis, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant("live")
    async with tenant_context(tenant.slug) as session:
        connection = await create_connection(
            session, name="Main", provider="simulator", business_number="+5511900000004"
        )
    worker = RouterWorker(redis, keys)
    async with live_server(create_app(app_settings)) as base, httpx.AsyncClient(base_url=base) as client:
        auth = await login(client, tenant.slug)
        ticket = (await client.post("/api/v1/auth/ws-ticket", headers=auth)).json()["ticket"]
        ws_url = base.replace("http", "ws") + "/api/v1/events"
        async with websockets.connect(f"{ws_url}?ticket={ticket}") as socket:
            await append_events(redis, keys, [_inbound(tenant, connection.id, "5511955550001", 1, "live one")])
            await drain(worker)
            seen: list[dict[str, Any]] = []
            while not any(e["type"] == "message.created" for e in seen):
                seen.append(json.loads(await asyncio.wait_for(socket.recv(), 10)))
            created = next(e for e in seen if e["type"] == "message.created")
            assert created["data"]["text"] == "live one"
            last_id = seen[-1]["id"]

        # Reusing a ticket fails; a bad Origin fails.
        with pytest.raises(websockets.exceptions.InvalidStatus):
            async with websockets.connect(f"{ws_url}?ticket={ticket}") as socket:
                await socket.recv()
        fresh = (await client.post("/api/v1/auth/ws-ticket", headers=auth)).json()["ticket"]
        with pytest.raises(websockets.exceptions.InvalidStatus):
            async with websockets.connect(f"{ws_url}?ticket={fresh}", origin="https://evil.example") as socket:  # type: ignore[arg-type]
                await socket.recv()

        # Missed while disconnected, replayed on reconnect.
        await append_events(redis, keys, [_inbound(tenant, connection.id, "5511955550001", 2, "while away")])
        await drain(worker)
        ticket = (await client.post("/api/v1/auth/ws-ticket", headers=auth)).json()["ticket"]
        async with websockets.connect(f"{ws_url}?ticket={ticket}&last_event_id={last_id}") as socket:
            replayed = json.loads(await asyncio.wait_for(socket.recv(), 10))
            while replayed["type"] != "message.created":
                replayed = json.loads(await asyncio.wait_for(socket.recv(), 10))
            assert replayed["data"]["text"] == "while away"


async def test_only_who_may_link_a_number_sees_its_qr_code(
    app_settings: Settings, keys: StreamKeys, redis: Redis, make_tenant: MakeTenant
) -> None:
    """A session's QR code links a device to the business's WhatsApp number: agents hear that the session is
    waiting for a scan, but never the code itself."""
    from supervisor.realtime import RealtimeEvent, publish
    from tenants.passwords import hash_password

    tenant = await make_tenant("qr")
    async with tenant_context(tenant.slug) as session:
        await session.conn.execute(
            "INSERT INTO users (email, name, role, password_hash) VALUES ('ana@qr.io', 'Ana', 'agent', $1)",
            hash_password(PASSWORD),
        )
    async with live_server(create_app(app_settings)) as base, httpx.AsyncClient(base_url=base) as client:
        ws_url = base.replace("http", "ws") + "/api/v1/events"
        admin = await login(client, tenant.slug)
        agent = await login(client, tenant.slug, "ana@qr.io")
        await publish(redis, keys, tenant.id, [RealtimeEvent(type="session.updated", data={
            "connection_id": 1, "state": "AWAITING_QR", "qr": "2@secret-pairing-code"})])  # fmt: skip
        seen: dict[str, dict[str, Any]] = {}
        for who, auth in (("admin", admin), ("agent", agent)):
            ticket = (await client.post("/api/v1/auth/ws-ticket", headers=auth)).json()["ticket"]
            async with websockets.connect(f"{ws_url}?ticket={ticket}&last_event_id=0") as socket:
                while who not in seen:
                    event = json.loads(await asyncio.wait_for(socket.recv(), 10))
                    if event["type"] == "session.updated":
                        seen[who] = event["data"]
    assert (seen["admin"]["state"], seen["admin"]["qr"]) == ("AWAITING_QR", "2@secret-pairing-code")
    assert (seen["agent"]["state"], seen["agent"]["qr"]) == ("AWAITING_QR", None)


async def test_the_relay_loop_sends_what_a_dead_writer_left_and_keeps_marks_of_writers_in_flight(
    keys: StreamKeys, redis: Redis, make_tenant: MakeTenant, database: str
) -> None:
    """A writer marks the tenant before its commit and relays after it; if it dies in between, the relay loop
    sends the entry. A mark set while the loop finds nothing (a transaction still in flight) survives the loop."""
    import asyncpg

    from saas.outbox import dirty_tenants, mark_dirty
    from saas.tickets.lifecycle import insert_outgoing

    tenant = await make_tenant("relay")
    async with tenant_context(tenant.slug) as session:
        connection = await create_connection(session, name="Main", provider="simulator",
                                             business_number="+5511900000005")  # fmt: skip
    worker = RouterWorker(redis, keys, relay_after_s=0.0, mark_grace_s=0.0)
    await append_events(redis, keys, [_inbound(tenant, connection.id, "5511955550009", 1, "oi")])
    await drain(worker)
    outbound = keys.outbound(tenant.id, connection.id)

    async def write(text: str) -> None:
        await mark_dirty(redis, keys, tenant.id)
        async with tenant_context(tenant.slug) as session:
            ticket = await session.conn.fetchval("SELECT id FROM tickets")
            await insert_outgoing(session.conn, ticket_id=ticket, connection_id=connection.id, text=text)
        # ... and the writer dies before relaying.

    await write("primeira")
    assert await worker.relay_once() == 1
    assert [decode_outbound(e[1][b"e"]).text for e in await xrange(redis, outbound)] == ["primeira"]
    assert await worker.relay_once() == 0
    assert await dirty_tenants(redis, keys) == []  # nothing left: the mark is gone

    # A writer in flight: marked, not committed, while the loop runs and finds nothing. The mark is younger
    # than any transaction may last, so it stays for the next round.
    worker = RouterWorker(redis, keys, relay_after_s=0.0)
    writer = await asyncpg.connect(database, server_settings={"search_path": f'"{tenant.schema}"'})
    try:
        async with writer.transaction():
            await mark_dirty(redis, keys, tenant.id)
            ticket = await writer.fetchval("SELECT id FROM tickets")
            await insert_outgoing(writer, ticket_id=ticket, connection_id=connection.id, text="segunda")
            assert await worker.relay_once() == 0
            assert [t for t, _mark in await dirty_tenants(redis, keys)] == [tenant.id]
    finally:
        await writer.close()
    assert await worker.relay_once() == 1
    assert [decode_outbound(e[1][b"e"]).text for e in await xrange(redis, outbound)][-1] == "segunda"


async def test_api_rejects_missing_and_forged_tokens(app_settings: Settings, make_tenant: MakeTenant) -> None:
    tenant = await make_tenant("auth")
    async with app_client(create_app(app_settings)) as client:
        assert (await client.get("/api/v1/tickets")).json()["code"] == "invalid_token"
        forged = {"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0."}
        assert (await client.get("/api/v1/tickets", headers=forged)).status_code == 401
        bad = await client.post("/api/v1/auth/login", json={"tenant": tenant.slug, "email": f"admin@{tenant.slug}.example",
                                                           "password": "wrong password"})  # fmt: skip
        assert (bad.status_code, bad.json()["code"]) == (401, "invalid_credentials")
        auth = await login(client, tenant.slug)
        missing = await client.get("/api/v1/tickets/999999/messages", headers=auth)
        assert (missing.status_code, missing.json()["code"]) == (404, "ticket_not_found")
        invalid = await client.post("/api/v1/tickets/1/messages", headers=auth, json={"text": ""})
        assert invalid.status_code == 400


async def test_acks_that_never_meet_their_message_are_swept(
    keys: StreamKeys, redis: Redis, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant("sweep")
    async with tenant_context(tenant.slug) as session:
        await session.conn.execute(
            "INSERT INTO early_statuses (connection_id, provider_message_id, status, status_rank, received_at) VALUES"
            " (1, 'old', 'READ', 4, now() - interval '2 days'), (1, 'fresh', 'READ', 4, now())"
        )
    assert await RouterWorker(redis, keys).sweep_early_statuses() >= 1
    async with tenant_context(tenant.slug) as session:
        assert [
            r["provider_message_id"] for r in await session.conn.fetch("SELECT provider_message_id FROM early_statuses")
        ] == ["fresh"]
