"""The daily work of an inbox, end to end on the real stack — a phone on the simulator, a session host, the router,
PostgreSQL, Redis, the API and its WebSocket: chatbot menu -> queue -> automatic assignment -> reply -> transfer ->
close with farewell -> satisfaction rating, and what the agents see live along the way."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import websockets

from saas.app import create_app
from tenants.context import tenant_context
from tenants.passwords import hash_password
from tests.conftest import PASSWORD, eventually, live_server, login
from tests.integration.conftest import Stack

PHONE = "+5511987650001"


class Live:
    """One agent's events socket; collects every frame."""

    def __init__(self, socket: Any) -> None:
        self.socket = socket
        self.frames: list[dict[str, Any]] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.socket:
            self.frames.append(json.loads(raw))

    def seen(self, kind: str, ticket_id: int, **data: Any) -> bool:
        return any(f["type"] == kind and f.get("ticket_id") == ticket_id
                   and all(f.get("data", {}).get(k) == v for k, v in data.items()) for f in self.frames)  # fmt: skip


@asynccontextmanager
async def _live(client: httpx.AsyncClient, base: str, auth: dict[str, str]) -> AsyncIterator[Live]:
    ticket = (await client.post("/api/v1/auth/ws-ticket", headers=auth)).json()["ticket"]
    async with websockets.connect(f"{base.replace('http', 'ws')}/api/v1/events?ticket={ticket}") as socket:
        live = Live(socket)
        try:
            yield live
        finally:
            live.task.cancel()


async def _phone_got(stack: Stack, text: str) -> bool:
    return any(text in (m.text or "") for m in (await stack.sim.inbox(PHONE)).messages)


async def _ticket(stack: Stack) -> Any:
    async with tenant_context(stack.tenant.slug) as session:
        return await session.conn.fetchrow("SELECT * FROM tickets ORDER BY id DESC LIMIT 1")


async def test_menu_queue_assignment_reply_transfer_close_and_rating(
    stack_factory: Callable[..., Awaitable[Stack]],
) -> None:
    stack = await stack_factory(plan="pro")
    await eventually(lambda: stack.in_state("CONNECTED"), what="CONNECTED")
    async with tenant_context(stack.tenant.slug) as session:
        conn = session.conn
        ana, bia = [await conn.fetchval("INSERT INTO users (email, name, role, password_hash) VALUES ($1, $2, 'agent', $3)"
                                        " RETURNING id", f"{n.lower()}@flow.io", n, hash_password(PASSWORD))
                    for n in ("Ana", "Bia")]  # fmt: skip
        sales = await conn.fetchval("INSERT INTO queues (name, greeting, strategy) VALUES ('Vendas',"
                                    " 'Bem-vindo às Vendas!', 'round_robin') RETURNING id")  # fmt: skip
        support = await conn.fetchval("INSERT INTO queues (name, greeting, strategy) VALUES ('Suporte',"
                                      " 'Suporte técnico, um momento.', 'least_busy') RETURNING id")  # fmt: skip
        await conn.execute("INSERT INTO queue_members VALUES ($1, $2), ($3, $4)", sales, ana, support, bia)
        await conn.execute("INSERT INTO queue_connections VALUES ($1, $3), ($2, $3)", sales, support,
                           stack.connection_id)  # fmt: skip
        await conn.execute("UPDATE connections SET greeting = 'Olá! Bem-vindo à Loja.'")
        await conn.execute("UPDATE tenant_settings SET csat_enabled = true, farewell_message = 'Até logo!'")

    async with (
        live_server(create_app(stack.settings)) as base,
        httpx.AsyncClient(base_url=base) as client,
        AsyncExitStack() as sockets,
    ):
        admin = await login(client, stack.tenant.slug)
        as_ana = await login(client, stack.tenant.slug, "ana@flow.io")
        as_bia = await login(client, stack.tenant.slug, "bia@flow.io")
        ana_live = await sockets.enter_async_context(_live(client, base, as_ana))
        bia_live = await sockets.enter_async_context(_live(client, base, as_bia))
        await eventually(lambda: _online(stack, 2), what="both agents online through their sockets")

        # The customer writes: greeting and the menu of the connection's queues.
        await stack.sim.send(PHONE, stack.number, "Oi, boa tarde", name="Carla")
        await eventually(lambda: _phone_got(stack, "2 - Suporte"), what="the menu on the phone")
        assert await _phone_got(stack, "Olá! Bem-vindo à Loja.")
        ticket = await _ticket(stack)
        assert (ticket["status"], ticket["queue_id"], ticket["bot_state"]) == ("pending", None, "menu")

        await stack.sim.send(PHONE, stack.number, "quero falar com alguém")
        await eventually(lambda: _phone_got(stack, "Não entendi"), what="the invalid-choice reply")

        await stack.sim.send(PHONE, stack.number, "2")
        await eventually(lambda: _phone_got(stack, "Suporte técnico, um momento."), what="the queue greeting")
        ticket = await eventually(lambda: _assigned(stack, bia), what="automatic assignment to Bia")
        assert (ticket["queue_id"], ticket["status"], ticket["bot_state"]) == (support, "open", None)
        ticket_id = ticket["id"]
        await eventually(lambda: _seen(bia_live, "ticket.updated", ticket_id, user_id=bia), what="Bia sees it live")

        reply = await client.post(f"/api/v1/tickets/{ticket_id}/messages", headers=as_bia,
                                  json={"text": "Oi Carla, sou a Bia. Como posso ajudar?"})  # fmt: skip
        assert reply.status_code == 201, reply.text
        await eventually(lambda: _phone_got(stack, "sou a Bia"), what="Bia's reply on the phone")

        moved = await client.post(f"/api/v1/tickets/{ticket_id}/transfer", headers=as_bia,
                                  json={"queue_id": sales, "note": "Ela quer comprar, não é suporte."})  # fmt: skip
        assert moved.status_code == 200, moved.text
        assert (moved.json()["queue_id"], moved.json()["user_id"]) == (sales, ana)  # round robin gave it to Ana
        await eventually(lambda: _seen(bia_live, "ticket.hidden", ticket_id), what="the ticket leaving Bia's inbox")
        await eventually(lambda: _seen(ana_live, "ticket.updated", ticket_id, user_id=ana), what="Ana sees it live")
        # Her socket has caught up past Bia's assignment and reply, and showed her none of it: she was not in Suporte.
        assert not ana_live.seen("ticket.updated", ticket_id, user_id=bia)
        assert (await client.get(f"/api/v1/tickets/{ticket_id}", headers=as_bia)).status_code == 404
        notes = [m for m in (await client.get(f"/api/v1/tickets/{ticket_id}/messages", headers=as_ana)).json()["items"]
                 if m["private"]]  # fmt: skip
        assert [n["text"] for n in notes] == ["Ela quer comprar, não é suporte."]

        closed = await client.post(f"/api/v1/tickets/{ticket_id}/close", headers=as_ana, json={})
        assert closed.status_code == 200, closed.text
        assert closed.json()["status"] == "closed"
        await eventually(lambda: _phone_got(stack, "Até logo!"), what="the farewell")
        await eventually(lambda: _phone_got(stack, "nota de 1 a 5"), what="the satisfaction survey")
        assert not await _phone_got(stack, "não é suporte")  # the note, sent before these, never reached the customer

        await stack.sim.send(PHONE, stack.number, "5, muito bom!")
        await eventually(lambda: _phone_got(stack, "Obrigado pela sua avaliação"), what="thanks for the rating")
        async with tenant_context(stack.tenant.slug) as session:
            assert await session.conn.fetchval("SELECT count(*) FROM tickets") == 1  # the rating opened nothing
            survey = await session.conn.fetchrow("SELECT state, rating, user_id, message_id FROM csat_surveys")
            assert survey is not None and (survey["state"], survey["rating"], survey["user_id"]) == ("answered", 5, ana)
            assert survey["message_id"] is not None
            actions = [r["action"] for r in await session.conn.fetch(
                "SELECT action FROM ticket_events WHERE ticket_id = $1 ORDER BY id", ticket_id)]  # fmt: skip
        assert actions == ["routed", "assigned", "transferred", "assigned", "closed", "rated"]
        assert (await _ticket(stack))["status"] == "closed"

        board = (await client.get("/api/v1/dashboard", headers=admin)).json()
        assert (board["created"], board["closed"]) == (1, 1)
        assert (board["satisfaction"]["answered"], board["satisfaction"]["average"]) == (1, 5.0)
        assert board["first_response"]["count"] == 1 and board["waiting"]["count"] == 1
        by_agent = {row["id"]: row for row in board["by_agent"]}
        assert by_agent[ana]["closed"] == 1 and by_agent[ana]["csat_average"] == 5.0


async def _online(stack: Stack, n: int) -> bool:
    async with tenant_context(stack.tenant.slug) as session:
        return int(await session.conn.fetchval("SELECT count(*) FROM users WHERE presence = 'online'")) == n


async def _assigned(stack: Stack, user_id: int) -> Any:
    ticket = await _ticket(stack)
    return ticket if ticket is not None and ticket["user_id"] == user_id else None


async def _seen(live: Live, kind: str, ticket_id: int, **data: Any) -> bool:
    return live.seen(kind, ticket_id, **data)
