"""The ticketing API over HTTP, on real PostgreSQL and Redis, with tickets opened by customer messages going
through the real router: ticket actions and their rules, the inbox order and its filters, who sees what, contacts,
tags and quick replies, settings, queues and connections, strict request bodies, the dashboard and message search."""

from __future__ import annotations

import asyncio
import re
import unicodedata
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import msgspec
import pytest
from redis.asyncio import Redis

from saas.app import create_app
from saas.connections.service import create_connection
from saas.router.worker import RouterWorker
from saas.search import word_frequency
from saas.settings import Settings
from saas.tickets.rules import inbox_sort_key
from supervisor.streams import StreamKeys, append_events
from supervisor.wire import Envelope, InboundMessage, utcnow
from tenants.context import tenant_context
from tenants.passwords import hash_password
from tenants.provisioning import TenantInfo
from tests.conftest import PASSWORD, app_client, eventually, login
from tests.integration.conftest import MakeTenant, TenantQueries, drain, waiting_on_a_lock

WEEK_9_TO_18 = {"weekly": [[{"start": "09:00", "end": "18:00"}]] * 7}


@dataclass
class Desk(TenantQueries):
    """One tenant's help desk: queues Suporte (Ana, Bia, supervisor Sol) and Vendas (Bia); new conversations on
    the ``main`` connection go straight into Suporte, those on ``second`` into no queue. Zeca is disabled and Novo
    never accepted the invitation."""

    tenant: TenantInfo
    client: httpx.AsyncClient
    redis: Redis
    keys: StreamKeys
    worker: RouterWorker
    main: int
    second: int
    queues: dict[str, int]
    users: dict[str, int]
    auth: dict[str, dict[str, str]]
    sent: int = 0

    async def say(self, phone: str, text: str, *, name: str | None = None,
                  connection_id: int | None = None) -> int | None:  # fmt: skip
        """The customer on ``phone`` (digits) writes, routed at once; the message's ticket (None: dropped)."""
        self.sent += 1
        chat = f"{phone}@s.whatsapp.net"
        message = InboundMessage(provider_message_id=f"in{self.sent}-{uuid.uuid4().hex[:6]}", chat_id=chat,
                                 chat_id_raw=chat, sender_id=chat, sender_name=name, text=text,
                                 occurred_at=utcnow())  # fmt: skip
        await append_events(self.redis, self.keys, [Envelope(
            event_id=message.provider_message_id, tenant_id=self.tenant.id,
            connection_id=connection_id or self.main, provider="simulator", received_at=utcnow(), event=message)])  # fmt: skip
        await drain(self.worker)
        ticket = await self.value("SELECT ticket_id FROM messages WHERE provider_message_id = $1",
                                  message.provider_message_id)  # fmt: skip
        return None if ticket is None else int(ticket)

    async def ticket(self, phone: str, text: str, *, name: str | None = None, connection_id: int | None = None) -> int:
        """Like :meth:`say`, for a message that must land on a ticket."""
        ticket = await self.say(phone, text, name=name, connection_id=connection_id)
        assert ticket is not None
        return ticket

    async def api(self, who: str, method: str, path: str, body: Any = None, **params: Any) -> httpx.Response:
        return await self.client.request(method, f"/api/v1{path}", headers=self.auth[who], json=body,
                                         params={k: v for k, v in params.items() if v is not None})  # fmt: skip


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The answer is a problem with this status and stable code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json", response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


def _number() -> str:
    return "+55119" + str(uuid.uuid4().int)[:8]


@pytest.fixture
async def desk(settings: Settings, make_tenant: MakeTenant, redis_url: str) -> AsyncIterator[Desk]:
    tenant = await make_tenant("desk", plan="pro")
    keys = StreamKeys(f"{settings.redis_prefix}:{uuid.uuid4().hex[:6]}", shards=2)
    own = msgspec.structs.replace(settings, redis_prefix=keys.prefix, stream_shards=keys.shards)
    async with tenant_context(tenant.slug) as session:
        conn = session.conn
        main = await create_connection(session, name="Main", provider="simulator", business_number=_number())
        second = await create_connection(session, name="Second", provider="simulator", business_number=_number())
        users = {"admin": await conn.fetchval("SELECT id FROM users WHERE role = 'admin'")}
        password = hash_password(PASSWORD)
        for key, name, role, active, invited in (("ana", "Ana Souza", "agent", True, False),
                                                 ("bia", "Bia Lima", "agent", True, False),
                                                 ("sol", "Sol Ramos", "supervisor", True, False),
                                                 ("zeca", "Zeca", "agent", False, False),
                                                 ("novo", "Novo", "agent", True, True)):  # fmt: skip
            users[key] = await conn.fetchval(
                "INSERT INTO users (email, name, role, active, password_hash) VALUES ($1, $2, $3, $4, $5) RETURNING id",
                f"{key}@desk.io", name, role, active, None if invited else password,
            )  # fmt: skip
        queues = {n: await conn.fetchval("INSERT INTO queues (name) VALUES ($1) RETURNING id", n)
                  for n in ("Suporte", "Vendas")}  # fmt: skip
        await conn.execute("INSERT INTO queue_members VALUES ($1, $2), ($1, $3), ($1, $4), ($5, $3)",
                           queues["Suporte"], users["ana"], users["bia"], users["sol"], queues["Vendas"])  # fmt: skip
        await conn.execute("INSERT INTO queue_connections VALUES ($1, $2)", queues["Suporte"], main.id)
    redis = Redis.from_url(redis_url)
    async with app_client(create_app(own)) as client:
        auth = {key: await login(client, tenant.slug, None if key == "admin" else f"{key}@desk.io")
                for key in ("admin", "ana", "bia", "sol")}  # fmt: skip
        yield Desk(tenant, client, redis, keys, RouterWorker(redis, keys), main.id, second.id, queues, users, auth)
    await redis.aclose()


# -- 1. ticket actions ---------------------------------------------------------------------------------------------


async def test_accept_assign_transfer_notes_and_idempotent_sends(desk: Desk) -> None:
    d = desk
    ana, bia = d.users["ana"], d.users["bia"]
    t = await d.ticket("5511990000001", "Oi, meu pedido atrasou", name="Carla Dias")
    ticket = ok(await d.api("ana", "GET", f"/tickets/{t}"))
    assert (ticket["status"], ticket["queue_id"], ticket["user_id"], ticket["unread_count"]) == (
        "pending", d.queues["Suporte"], None, 1)  # fmt: skip
    assert ticket["contact"]["name"] == "Carla Dias" and ticket["waiting_since"] is not None

    accepted = ok(await d.api("ana", "POST", f"/tickets/{t}/accept"))
    assert (accepted["status"], accepted["user_id"]) == ("open", ana) and accepted["accepted_at"] is not None
    assert ok(await d.api("ana", "POST", f"/tickets/{t}/read"))["unread_count"] == 0
    assert ok(await d.api("ana", "PATCH", f"/tickets/{t}", {"priority": "urgent"}))["priority"] == "urgent"
    refused(await d.api("ana", "PATCH", f"/tickets/{t}", {"priority": "asap"}), 400, "validation_error")

    vip = ok(await d.api("admin", "POST", "/tags", {"name": "VIP"}), 201)
    late = ok(await d.api("admin", "POST", "/tags", {"name": "Atraso", "color": "#ff0000"}), 201)
    tagged = ok(await d.api("ana", "PUT", f"/tickets/{t}/tags", {"tag_ids": [vip["id"], late["id"]]}))
    assert [g["name"] for g in tagged["tags"]] == ["Atraso", "VIP"]
    refused(await d.api("ana", "PUT", f"/tickets/{t}/tags", {"tag_ids": [vip["id"], 999999]}), 400, "invalid_input")
    assert [g["name"] for g in ok(await d.api("ana", "GET", f"/tickets/{t}"))["tags"]] == ["Atraso", "VIP"]
    assert ok(await d.api("ana", "PUT", f"/tickets/{t}/tags", {"tag_ids": [vip["id"]]}))["tags"] == [vip]

    # A retried send (same client_id) is stored and queued once; a note never reaches the outbox.
    send, note = {"text": "Vou verificar, Carla.", "client_id": str(uuid.uuid4())}, {
        "text": "Cliente antiga, tratar com carinho", "client_id": str(uuid.uuid4())}  # fmt: skip
    reply = ok(await d.api("ana", "POST", f"/tickets/{t}/messages", send), 201)
    assert ok(await d.api("ana", "POST", f"/tickets/{t}/messages", send), 201)["id"] == reply["id"]
    assert (reply["status"], reply["from_me"], reply["private"], reply["user_id"]) == ("QUEUED", True, False, ana)
    written = ok(await d.api("ana", "POST", f"/tickets/{t}/notes", note), 201)
    assert ok(await d.api("ana", "POST", f"/tickets/{t}/notes", note), 201)["id"] == written["id"]
    assert (written["status"], written["private"]) == ("NOTE", True)
    assert await d.value("SELECT count(*) FROM messages WHERE ticket_id = $1", t) == 3
    outbox = await d.rows("SELECT message_id FROM outbox WHERE message_id IN (SELECT id FROM messages WHERE"
                          " ticket_id = $1)", t)  # fmt: skip
    assert [r["message_id"] for r in outbox] == [reply["id"]]
    answered = ok(await d.api("ana", "GET", f"/tickets/{t}"))
    assert (answered["waiting_since"], answered["first_response_at"] is not None) == (None, True)

    # Transfer to a queue Ana is not in: it waits there unassigned and Ana loses sight of it.
    moved = ok(await d.api("ana", "POST", f"/tickets/{t}/transfer", {"queue_id": d.queues["Vendas"]}))
    assert (moved["queue_id"], moved["user_id"], moved["status"]) == (d.queues["Vendas"], None, "pending")
    refused(await d.api("ana", "GET", f"/tickets/{t}"), 404, "ticket_not_found")
    refused(await d.api("ana", "POST", f"/tickets/{t}/accept"), 404, "ticket_not_found")
    assert t not in [i["id"] for i in ok(await d.api("ana", "GET", "/tickets"))["items"]]

    # Bia (in Vendas) takes it and sees the whole conversation, the note included.
    assert ok(await d.api("bia", "POST", f"/tickets/{t}/accept"))["user_id"] == bia
    messages = ok(await d.api("bia", "GET", f"/tickets/{t}/messages"))["items"]
    assert [(m["text"], m["private"]) for m in messages] == [
        ("Oi, meu pedido atrasou", False), ("Vou verificar, Carla.", False),
        ("Cliente antiga, tratar com carinho", True)]  # fmt: skip

    # Assigning: only to users who can take tickets.
    refused(await d.api("bia", "POST", f"/tickets/{t}/assign", {"user_id": d.users["zeca"]}), 400, "user_unavailable")
    refused(await d.api("bia", "POST", f"/tickets/{t}/assign", {"user_id": d.users["novo"]}), 400, "user_unavailable")
    refused(await d.api("bia", "POST", f"/tickets/{t}/assign", {"user_id": 999999}), 404, "user_not_found")
    assert ok(await d.api("bia", "POST", f"/tickets/{t}/assign", {"user_id": ana}))["user_id"] == ana
    assert ok(await d.api("ana", "GET", f"/tickets/{t}"))["user_id"] == ana  # hers now, though not in Vendas
    refused(await d.api("bia", "GET", f"/tickets/{t}"), 404, "ticket_not_found")

    # Moving the conversation to a connection where the customer already talks to us is refused.
    other = await d.ticket("5511990000001", "escrevi no outro número também", connection_id=d.second)
    assert other != t
    refused(await d.api("ana", "POST", f"/tickets/{t}/transfer", {"connection_id": d.second}), 409,
            "active_ticket_exists")  # fmt: skip
    ok(await d.api("admin", "POST", f"/tickets/{other}/close", {"farewell": ""}))
    rerouted = ok(await d.api("ana", "POST", f"/tickets/{t}/transfer", {"connection_id": d.second}))
    assert (rerouted["connection_id"], rerouted["queue_id"], rerouted["user_id"]) == (d.second, d.queues["Vendas"], ana)
    refused(await d.api("admin", "POST", f"/tickets/{other}/reopen"), 409, "active_ticket_exists")

    events = ok(await d.api("ana", "GET", f"/tickets/{t}/events"))
    assert [(e["action"], e["actor_id"]) for e in events] == [
        ("routed", None), ("accepted", ana), ("priority", ana), ("tagged", ana), ("tagged", ana),
        ("transferred", ana), ("accepted", bia), ("assigned", bia), ("transferred", ana)]  # fmt: skip
    assert events[5]["details"]["to"] == {"queue_id": d.queues["Vendas"], "user_id": None, "connection_id": d.main}
    assert events[7]["details"] == {"user_id": ana, "previous_user_id": bia}
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)


async def test_close_farewell_survey_reopen(desk: Desk) -> None:
    d = desk
    ana, bia = d.users["ana"], d.users["bia"]
    t = await d.ticket("5511990000002", "Quero cancelar", name="Davi")
    ok(await d.api("ana", "POST", f"/tickets/{t}/accept"))

    async def bot_messages() -> list[tuple[str, bool]]:
        rows = await d.rows("SELECT m.body, o.id IS NOT NULL AS queued FROM messages m LEFT JOIN outbox o"
                            " ON o.message_id = m.id WHERE m.ticket_id = $1 AND m.bot ORDER BY m.id", t)  # fmt: skip
        return [(r["body"], r["queued"]) for r in rows]

    # Blank texts are refused, never sent: a farewell is a text or "" (none), a transfer note a text.
    refused(await d.api("ana", "POST", f"/tickets/{t}/close", {"farewell": "   "}), 400, "validation_error")
    refused(await d.api("ana", "POST", f"/tickets/{t}/transfer", {"queue_id": None, "note": " \n"}), 400,
            "validation_error")  # fmt: skip
    refused(await d.api("ana", "PATCH", f"/contacts/{await d.value('SELECT contact_id FROM tickets WHERE id = $1', t)}",
                        {"name": "  "}), 400, "validation_error")  # fmt: skip
    closed = ok(await d.api("ana", "POST", f"/tickets/{t}/close", {"farewell": "Até logo!", "survey": True}))
    assert (closed["status"], closed["waiting_since"]) == ("closed", None) and closed["closed_at"] is not None
    prompt = "Como você avalia o nosso atendimento? Responda com uma nota de 1 a 5."
    assert await bot_messages() == [("Até logo!", True), (prompt, True)]
    survey = await d.rows("SELECT state, user_id, queue_id FROM csat_surveys WHERE ticket_id = $1", t)
    assert [tuple(s) for s in survey] == [("asked", ana, d.queues["Suporte"])]
    refused(await d.api("ana", "POST", f"/tickets/{t}/messages", {"text": "mais uma coisa"}), 409, "ticket_closed")
    refused(await d.api("ana", "POST", f"/tickets/{t}/close"), 409, "ticket_closed")
    refused(await d.api("ana", "POST", f"/tickets/{t}/accept"), 409, "ticket_closed")

    # Reopened to wait in its queue: the pending survey lapses.
    waiting = ok(await d.api("ana", "POST", f"/tickets/{t}/reopen", {"assign_to_me": False}))
    assert (waiting["status"], waiting["user_id"], waiting["closed_at"]) == ("pending", None, None)
    assert await d.value("SELECT state FROM csat_surveys WHERE ticket_id = $1", t) == "expired"
    refused(await d.api("ana", "POST", f"/tickets/{t}/reopen"), 409, "ticket_not_closed")

    # Closed again without farewell or survey (overriding the tenant's defaults): nothing goes to the customer.
    ok(await d.api("admin", "PATCH", "/settings", {"farewell_message": "Tchau!", "csat_enabled": True}))
    ok(await d.api("bia", "POST", f"/tickets/{t}/close", {"farewell": "", "survey": False}))
    assert len(await bot_messages()) == 2
    assert await d.value("SELECT count(*) FROM csat_surveys WHERE ticket_id = $1", t) == 1

    mine = ok(await d.api("bia", "POST", f"/tickets/{t}/reopen", {"assign_to_me": True}))
    assert (mine["status"], mine["user_id"]) == ("open", bia)
    ok(await d.api("bia", "POST", f"/tickets/{t}/messages", {"text": "Voltei, Davi."}), 201)
    ok(await d.api("bia", "POST", f"/tickets/{t}/close"))  # the tenant's defaults: farewell and survey
    assert [text for text, _queued in await bot_messages()][2:] == ["Tchau!", prompt]

    # A ticket whose customer opened a new conversation meanwhile cannot be reopened.
    await d.value("UPDATE tenant_settings SET reopen_mode = 'new'")
    newer = await d.ticket("5511990000002", "Oi de novo")
    assert newer != t
    refused(await d.api("admin", "POST", f"/tickets/{t}/reopen"), 409, "active_ticket_exists")

    events = [(e["action"], e["actor_id"]) for e in ok(await d.api("admin", "GET", f"/tickets/{t}/events"))]
    assert events == [("routed", None), ("accepted", ana), ("closed", ana), ("reopened", ana), ("closed", bia),
                      ("reopened", bia), ("closed", bia)]  # fmt: skip


@asynccontextmanager
async def uncommitted(database: str, schema: str) -> AsyncIterator[asyncpg.Connection]:
    """A second writer's transaction, committed when the block ends."""
    conn = await asyncpg.connect(database, server_settings={"search_path": f'"{schema}"'})
    try:
        async with conn.transaction():
            yield conn
    finally:
        await conn.close()


async def test_staff_and_customers_racing_for_the_one_active_ticket(desk: Desk, database: str) -> None:
    """The router opens tickets under per-pair locks that staff do not take: whoever loses the race for the one
    active ticket of a contact on a connection gets a clean answer — a 409 for staff, the active ticket for a
    customer's message — never a 500 or a dead-lettered message."""
    d = desk
    schema = d.tenant.schema
    first = await d.ticket("5511990000077", "Oi", name="Rui")
    ok(await d.api("ana", "POST", f"/tickets/{first}/close", {"farewell": "", "survey": False}))
    contact, main = (await d.rows("SELECT contact_id, connection_id FROM tickets WHERE id = $1", first))[0]

    # A conversation opens (not yet committed) while staff reopen the old ticket: a 409, not a 500.
    async with uncommitted(database, schema) as conn:
        newer = await conn.fetchval(
            "INSERT INTO tickets (contact_id, connection_id) VALUES ($1, $2) RETURNING id", contact, main
        )
        reopening = asyncio.create_task(d.api("admin", "POST", f"/tickets/{first}/reopen"))
        await eventually(lambda: waiting_on_a_lock(database), what="the reopen waiting on the unique index")
        assert not reopening.done()
    refused(await reopening, 409, "active_ticket_exists")
    assert await d.value("SELECT status FROM tickets WHERE id = $1", first) == "closed"

    # Staff transfer a ticket onto that connection while a conversation opens there: a 409, nothing half-done.
    other = await d.ticket("5511990000077", "no outro número", connection_id=d.second)
    await d.value("UPDATE tickets SET status = 'closed', closed_at = now() WHERE id = $1", newer)
    async with uncommitted(database, schema) as conn:
        await conn.execute("INSERT INTO tickets (contact_id, connection_id) VALUES ($1, $2)", contact, main)
        moving = asyncio.create_task(d.api("admin", "POST", f"/tickets/{other}/transfer", {"connection_id": main}))
        await eventually(lambda: waiting_on_a_lock(database), what="the transfer waiting on the unique index")
        assert not moving.done()
    refused(await moving, 409, "active_ticket_exists")
    assert await d.value("SELECT connection_id FROM tickets WHERE id = $1", other) == d.second

    # The other way round: staff reopen (not yet committed) while the customer writes — in the reopen window
    # and outside it — and the message joins the ticket staff reopened.
    for mode in ("window", "new"):
        await d.value("UPDATE tickets SET status = 'closed', closed_at = now() WHERE contact_id = $1", contact)
        await d.value(f"UPDATE tenant_settings SET reopen_mode = '{mode}'")
        async with uncommitted(database, schema) as conn:
            await conn.execute("UPDATE tickets SET status = 'pending', closed_at = NULL WHERE id = $1", first)
            writing = asyncio.create_task(d.say("5511990000077", f"voltei ({mode})"))
            # The router waits on the reopened row (window) or the unique index (new).
            await eventually(lambda: waiting_on_a_lock(database), what=f"the router waiting on the reopen ({mode})")
            assert not writing.done()
        assert await writing == first, mode
        active = await d.value(
            "SELECT count(*) FROM tickets WHERE contact_id = $1 AND connection_id = $2 AND status <> 'closed'",
            contact, main,
        )  # fmt: skip
        assert active == 1


# -- 2. the inbox -----------------------------------------------------------------------------------------------------

# (name, priority, waiting since (s after base) or None, last activity (s after base) or None = only created at 50).
# Ties on purpose: equal waits, equal activity, no wait at all, and a creation time equal to others' last message.
_INBOX = [
    ("José Ângelo", 1, None, 50),
    ("Joana Prado", 1, None, 50),
    ("Márcia Lopes", 1, 10, 40),
    ("Paulo Reis", 1, 10, 40),
    ("Rita Alves", 1, 10, 45),
    ("Caio Nunes", 1, 5, 60),
    ("Bruna Melo", 3, None, 10),
    ("Ivo Costa", 3, 20, 5),
    ("Lia Rocha", 0, None, 70),
    ("Enzo Dias", 0, 1, 70),
    ("Gil Pires", 2, 30, 30),
    ("Nina Faro", 2, 30.000001, 30),
    ("Otto Luz", 1, None, None),
    ("Vera Sá", 1, 10.5, 40),
]


async def test_inbox_order_pagination_and_filters(desk: Desk) -> None:
    d = desk
    ana, bia = d.users["ana"], d.users["bia"]
    base = utcnow().replace(microsecond=0) - timedelta(hours=3)
    ids: list[int] = []
    for n, (name, priority, waiting, activity) in enumerate(_INBOX):
        t = await d.ticket(f"55119870{n:02d}{n:03d}", f"mensagem {n}", name=name)
        ids.append(t)
        await d.value(
            "UPDATE tickets SET priority = $2, waiting_since = $3, last_message_at = $4, created_at = $5 WHERE id = $1",
            t, priority, None if waiting is None else base + timedelta(seconds=waiting),
            None if activity is None else base + timedelta(seconds=activity), base + timedelta(seconds=50),
        )  # fmt: skip
    # Some owners, queues and tags to filter by.
    await d.value("UPDATE tickets SET user_id = $2, status = 'open' WHERE id = ANY($1::bigint[])", ids[0:3], ana)
    await d.value("UPDATE tickets SET user_id = $2, status = 'open' WHERE id = ANY($1::bigint[])", ids[3:5], bia)
    await d.value("UPDATE tickets SET queue_id = $2 WHERE id = ANY($1::bigint[])", ids[4:8], d.queues["Vendas"])
    tag = ok(await d.api("admin", "POST", "/tags", {"name": "Retorno"}), 201)["id"]
    for t in (ids[1], ids[7], ids[12]):
        ok(await d.api("admin", "PUT", f"/tickets/{t}/tags", {"tag_ids": [tag]}))

    rows = {r["id"]: r for r in await d.rows("SELECT t.id, t.priority, t.waiting_since, t.user_id, t.queue_id,"
                                             " coalesce(t.last_message_at, t.created_at) AS activity FROM tickets t")}  # fmt: skip
    order = sorted(rows, key=lambda i: inbox_sort_key(rows[i]["priority"], rows[i]["waiting_since"],
                                                      rows[i]["activity"], i))  # fmt: skip

    async def listed(who: str = "admin", *, limit: int = 200, **filters: Any) -> list[int]:
        """Every page of the inbox with these filters, checking each page is full until the last."""
        seen: list[int] = []
        cursor = None
        while True:
            page = ok(await d.api(who, "GET", "/tickets", limit=limit, cursor=cursor, **filters))
            seen += [t["id"] for t in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                return seen
            assert len(page["items"]) == limit

    assert await listed() == order
    for limit in (1, 2, 3, 5):
        assert await listed(limit=limit) == order, limit

    def where(keep: Callable[[Any], bool]) -> list[int]:
        return [i for i in order if keep(rows[i])]

    assert await listed(queue_id=d.queues["Vendas"], limit=2) == where(lambda r: r["queue_id"] == d.queues["Vendas"])
    assert await listed(user_id=bia) == where(lambda r: r["user_id"] == bia)
    assert await listed("ana", mine="true", limit=2) == where(lambda r: r["user_id"] == ana)
    assert await listed(unassigned="true", limit=3) == where(lambda r: r["user_id"] is None)
    assert await listed(tag_id=tag, limit=1) == [i for i in order if i in (ids[1], ids[7], ids[12])]
    assert await listed(priority="urgent") == where(lambda r: r["priority"] == 3)
    low_and_free = where(lambda r: r["priority"] == 0 and r["user_id"] is None)
    assert await listed(priority="low", unassigned="true") == low_and_free
    refused(await d.api("admin", "GET", "/tickets", priority="asap"), 400, "validation_error")
    refused(await d.api("admin", "GET", "/tickets", cursor="not a cursor"), 400, "invalid_input")

    # Ana: her own tickets and the unassigned ones of Suporte.
    assert await listed("ana", limit=4) == where(lambda r: r["user_id"] == ana or (
        r["user_id"] is None and r["queue_id"] == d.queues["Suporte"]))  # fmt: skip

    # The contact: word prefixes of the name, accents and case ignored; or digits of the phone.
    assert await listed(q="jose") == [ids[0]]
    assert await listed(q="ÂNGE") == [ids[0]]
    assert await listed(q="jo") == [i for i in order if i in (ids[0], ids[1])]
    assert await listed(q="jo pra") == [ids[1]]
    assert await listed(q="marcia") == [ids[2]]
    assert await listed(q="vera sa") == [ids[13]]
    assert await listed(q="(11) 98700-3003") == [ids[3]]
    assert await listed(q="zzz") == []
    assert await listed("ana", q="paulo") == []  # Bia's ticket

    # Snoozed tickets leave the inbox and are listed on their own.
    until = (utcnow() + timedelta(hours=1)).isoformat()
    ok(await d.api("admin", "PATCH", f"/tickets/{ids[6]}", {"snoozed_until": until}))
    assert await listed(limit=4) == [i for i in order if i != ids[6]]
    assert await listed(snoozed="true") == [ids[6]]
    ok(await d.api("admin", "PATCH", f"/tickets/{ids[6]}", {"snoozed_until": None}))
    assert await listed(snoozed="true") == []

    # A mobile WhatsApp still reports without Brazil's 9th digit is found however the number is written.
    old_mobile = await d.ticket("552187654321", "oi", name="Zé Antigo")
    for typed in ("(21) 98765-4321", "+55 21 9 8765-4321", "(21) 8765-4321", "87654321"):
        assert await listed(q=typed) == [old_mobile], typed
        contacts = ok(await d.api("ana", "GET", "/contacts", q=typed))["items"]
        assert [c["phone"] for c in contacts] == ["+552187654321"], typed


# -- 3. who sees what ---------------------------------------------------------------------------------------------------


async def test_visibility_of_tickets_actions_and_contact_history(desk: Desk) -> None:
    d = desk
    ana, bia = d.users["ana"], d.users["bia"]
    tickets = {
        "ana": await d.ticket("5511991000001", "um", name="Um"),
        "free": await d.ticket("5511991000002", "dois", name="Dois"),
        "bia": await d.ticket("5511991000003", "três", name="Três"),
        "vendas": await d.ticket("5511991000004", "quatro", name="Quatro"),
        "none": await d.ticket("5511991000005", "cinco", name="Cinco", connection_id=d.second),
    }
    ok(await d.api("ana", "POST", f"/tickets/{tickets['ana']}/accept"))
    ok(await d.api("bia", "POST", f"/tickets/{tickets['bia']}/accept"))
    ok(await d.api("admin", "POST", f"/tickets/{tickets['vendas']}/transfer", {"queue_id": d.queues["Vendas"]}))
    expected = {
        "ana": {"ana", "free", "none"},
        "bia": {"free", "bia", "vendas", "none"},
        "sol": {"ana", "free", "bia", "none"},
        "admin": set(tickets),
    }
    for who, labels in expected.items():
        seen = {t["id"] for t in ok(await d.api(who, "GET", "/tickets"))["items"]}
        assert seen == {tickets[label] for label in labels}, who
        for label, t in tickets.items():
            assert (await d.api(who, "GET", f"/tickets/{t}")).status_code == (200 if label in labels else 404)

    # Every action on a ticket Ana cannot see is a 404, and changes nothing.
    hidden = tickets["bia"]
    for method, path, body in (
        ("POST", "/accept", None), ("POST", "/assign", {"user_id": ana}), ("POST", "/transfer", {"queue_id": None}),
        ("POST", "/close", {}), ("POST", "/reopen", {}), ("PATCH", "", {"priority": "low"}),
        ("PUT", "/tags", {"tag_ids": []}), ("POST", "/read", None), ("POST", "/messages", {"text": "oi"}),
        ("POST", "/notes", {"text": "oi"}), ("GET", "/messages", None), ("GET", "/events", None),
        ("GET", "/quick-replies", None),
    ):  # fmt: skip
        refused(await d.api("ana", method, f"/tickets/{hidden}{path}", body), 404, "ticket_not_found")
    assert (await d.rows("SELECT user_id, status, priority FROM tickets WHERE id = $1", hidden))[0] == (bia, "open", 1)
    assert await d.value("SELECT count(*) FROM messages WHERE ticket_id = $1", hidden) == 1
    hits = ok(await d.api("ana", "GET", "/search/messages", q="três"))["items"]
    assert hits == []

    # A contact's history: only with a visible ticket, then all of it (earlier tickets with others included),
    # except the team's private notes on tickets the viewer cannot open.
    contact = await d.value("SELECT contact_id FROM tickets WHERE id = $1", hidden)
    refused(await d.api("ana", "GET", f"/contacts/{contact}/messages"), 404, "contact_not_found")
    refused(await d.api("ana", "GET", f"/contacts/{contact}/tickets"), 404, "contact_not_found")
    # The contact itself is tenant-wide.
    assert ok(await d.api("ana", "GET", f"/contacts/{contact}"))["push_name"] == "Três"
    ok(await d.api("bia", "POST", f"/tickets/{hidden}/messages", {"text": "Resolvido!"}), 201)
    ok(await d.api("bia", "POST", f"/tickets/{hidden}/notes", {"text": "cliente difícil"}), 201)
    ok(await d.api("bia", "POST", f"/tickets/{hidden}/close", {"farewell": ""}))
    await d.value("UPDATE tenant_settings SET reopen_mode = 'new'")
    again = await d.ticket("5511991000003", "voltei")
    assert again != hidden
    history = ok(await d.api("ana", "GET", f"/contacts/{contact}/messages"))
    assert [m["text"] for m in history["items"]] == ["três", "Resolvido!", "voltei"]
    assert [m["ticket_id"] for m in history["items"]] == [hidden, hidden, again]
    assert [t["id"] for t in ok(await d.api("ana", "GET", f"/contacts/{contact}/tickets"))["items"]] == [again, hidden]
    older = ok(await d.api("ana", "GET", f"/contacts/{contact}/messages", limit=2))
    assert [m["text"] for m in older["items"]] == ["Resolvido!", "voltei"]
    rest = ok(await d.api("ana", "GET", f"/contacts/{contact}/messages", limit=2, cursor=older["next_cursor"]))
    assert ([m["text"] for m in rest["items"]], rest["next_cursor"]) == (["três"], None)
    refused(await d.api("ana", "GET", f"/contacts/{contact}/messages", cursor="bm9wZQ=="), 400, "invalid_input")
    refused(await d.api("ana", "GET", f"/contacts/{contact}/tickets", cursor="bm9wZQ=="), 400, "invalid_input")
    refused(await d.api("ana", "GET", f"/tickets/{hidden}"), 404, "ticket_not_found")  # the old ticket stays Bia's

    # Once Bia takes the new conversation too, Ana sees none of it again; Sol, supervising Suporte, does.
    ok(await d.api("bia", "POST", f"/tickets/{again}/accept"))
    refused(await d.api("ana", "GET", f"/contacts/{contact}/messages"), 404, "contact_not_found")
    assert len(ok(await d.api("sol", "GET", f"/contacts/{contact}/messages"))["items"]) == 4
    vendas_contact = await d.value("SELECT contact_id FROM tickets WHERE id = $1", tickets["vendas"])
    refused(await d.api("sol", "GET", f"/contacts/{vendas_contact}/tickets"), 404, "contact_not_found")
    assert len(ok(await d.api("bia", "GET", f"/contacts/{vendas_contact}/tickets"))["items"]) == 1


# -- 4. contacts ------------------------------------------------------------------------------------------------------


async def test_contacts_phone_forms_fields_tags_and_notes(desk: Desk) -> None:
    d = desk
    teo = ok(await d.api("ana", "POST", "/contacts", {"phone": "(21) 99876-5432", "name": "Téo"}), 201)
    assert (teo["phone"], teo["wa_id"], teo["name"]) == ("+5521998765432", "5521998765432@s.whatsapp.net", "Téo")
    for same in ("+55 21 99876-5432", "021 99876 5432", "+55 (21) 9876-5432", "5521998765432@s.whatsapp.net",
                 "0055 21 998765432"):  # fmt: skip
        clash = refused(await d.api("ana", "POST", "/contacts", {"phone": same}), 409, "contact_exists")
        assert clash["contact_id"] == teo["id"], same
    us = ok(await d.api("ana", "POST", "/contacts", {"phone": "+1 (415) 555-0100"}), 201)
    landline = ok(await d.api("ana", "POST", "/contacts", {"phone": "11 3333-4444", "email": "loja@ex.com"}), 201)
    assert (us["phone"], landline["phone"], landline["email"]) == ("+14155550100", "+551133334444", "loja@ex.com")
    for bad in ("abc-defg", "123456", "099876-5432"):
        refused(await d.api("ana", "POST", "/contacts", {"phone": bad}), 400, "invalid_input")
    refused(await d.api("ana", "POST", "/contacts", {"phone": "11988887777", "email": "nope"}), 400, "validation_error")
    found = ok(await d.api("ana", "GET", "/contacts", q="99876"))["items"]
    assert [c["id"] for c in found] == [teo["id"]]
    assert [c["id"] for c in ok(await d.api("ana", "GET", "/contacts", q="teo"))["items"]] == [teo["id"]]

    # Custom fields replace the whole set, within limits.
    fields = {"plano": "ouro", "cliente desde": "2019", "CPF_ok": "sim", "v1.2-beta": "x"}
    updated = ok(await d.api("ana", "PATCH", f"/contacts/{teo['id']}", {"custom_fields": fields, "name": "Téo Braga"}))
    assert (updated["custom_fields"], updated["name"]) == (fields, "Téo Braga")
    for bad_fields in ({f"k{i}": "v" for i in range(51)}, {"-lead": "x"}, {"a/b": "x"}, {"": "x"}, {"k" * 65: "x"},
                       {"ok": "v" * 1025}):  # fmt: skip
        refused(await d.api("ana", "PATCH", f"/contacts/{teo['id']}", {"custom_fields": bad_fields}), 400,
                "validation_error")  # fmt: skip
    fifty = {f"k{i}": "v" * 1024 for i in range(50)}
    assert ok(await d.api("ana", "PATCH", f"/contacts/{teo['id']}", {"custom_fields": fifty}))["custom_fields"] == fifty
    cleared = ok(await d.api("ana", "PATCH", f"/contacts/{teo['id']}", {"custom_fields": {}, "name": None}))
    assert (cleared["custom_fields"], cleared["name"]) == ({}, None)

    vip = ok(await d.api("admin", "POST", "/tags", {"name": "VIP"}), 201)
    assert ok(await d.api("ana", "PUT", f"/contacts/{teo['id']}/tags", {"tag_ids": [vip["id"]]}))["tags"] == [vip]
    refused(await d.api("ana", "PUT", f"/contacts/{teo['id']}/tags", {"tag_ids": [999999]}), 400, "invalid_input")
    assert [c["id"] for c in ok(await d.api("ana", "GET", "/contacts", tag_id=vip["id"]))["items"]] == [teo["id"]]

    # Notes: the author or a supervisor/admin deletes them, another agent may not.
    notes = [
        ok(await d.api("ana", "POST", f"/contacts/{teo['id']}/notes", {"text": f"nota {i}"}), 201) for i in range(3)
    ]
    listed = ok(await d.api("bia", "GET", f"/contacts/{teo['id']}/notes"))
    assert [(n["text"], n["user_id"]) for n in listed] == [(f"nota {i}", d.users["ana"]) for i in (2, 1, 0)]
    refused(await d.api("bia", "DELETE", f"/contacts/{teo['id']}/notes/{notes[0]['id']}"), 403, "permission_denied")
    ok(await d.api("ana", "DELETE", f"/contacts/{teo['id']}/notes/{notes[0]['id']}"), 204)
    ok(await d.api("admin", "DELETE", f"/contacts/{teo['id']}/notes/{notes[1]['id']}"), 204)
    ok(await d.api("sol", "DELETE", f"/contacts/{teo['id']}/notes/{notes[2]['id']}"), 204)
    refused(await d.api("ana", "DELETE", f"/contacts/{teo['id']}/notes/{notes[2]['id']}"), 404, "note_not_found")
    assert ok(await d.api("ana", "GET", f"/contacts/{teo['id']}/notes")) == []


async def test_merge_block_and_unblock_contacts(desk: Desk) -> None:
    d = desk
    # Rosa wrote from two numbers: two contacts, each with a conversation on the main connection.
    kept_ticket = await d.ticket("5511992000001", "oi, sou a Rosa", name="Rosa")
    dropped_ticket = await d.ticket("5511992000002", "oi, é a Rosa de novo, outro chip", name="Rosa M")
    older = await d.ticket("5511992000002", "pelo outro número", connection_id=d.second)
    ok(await d.api("admin", "POST", f"/tickets/{older}/close", {"farewell": ""}))
    keep, drop = [
        await d.value("SELECT contact_id FROM tickets WHERE id = $1", t) for t in (kept_ticket, dropped_ticket)
    ]
    vip = ok(await d.api("admin", "POST", "/tags", {"name": "VIP"}), 201)
    late = ok(await d.api("admin", "POST", "/tags", {"name": "Atraso"}), 201)
    ok(await d.api("ana", "PUT", f"/contacts/{keep}/tags", {"tag_ids": [vip["id"]]}))
    ok(await d.api("ana", "PUT", f"/contacts/{drop}/tags", {"tag_ids": [late["id"], vip["id"]]}))
    ok(await d.api("ana", "PATCH", f"/contacts/{keep}", {"custom_fields": {"plano": "ouro"}}))
    ok(await d.api("ana", "PATCH", f"/contacts/{drop}", {"custom_fields": {"plano": "prata", "cidade": "Recife"},
                                                         "email": "rosa@ex.com"}))  # fmt: skip
    ok(await d.api("ana", "POST", f"/contacts/{drop}/notes", {"text": "prefere áudio"}), 201)

    refused(await d.api("ana", "POST", f"/contacts/{keep}/merge", {"other_id": drop}), 403, "permission_denied")
    refused(await d.api("admin", "POST", f"/contacts/{keep}/merge", {"other_id": keep}), 400, "invalid_input")
    refused(await d.api("admin", "POST", f"/contacts/{keep}/merge", {"other_id": 999999}), 404, "contact_not_found")
    merged = ok(await d.api("admin", "POST", f"/contacts/{keep}/merge", {"other_id": drop}))
    assert [g["name"] for g in merged["tags"]] == ["Atraso", "VIP"]
    assert (merged["custom_fields"], merged["email"]) == ({"plano": "ouro", "cidade": "Recife"}, "rosa@ex.com")
    refused(await d.api("admin", "GET", f"/contacts/{drop}"), 404, "contact_not_found")
    assert [n["text"] for n in ok(await d.api("admin", "GET", f"/contacts/{keep}/notes"))] == ["prefere áudio"]
    listed = ok(await d.api("admin", "GET", f"/contacts/{keep}/tickets"))["items"]
    assert [(t["id"], t["status"]) for t in listed] == [(older, "closed"), (dropped_ticket, "closed"),
                                                         (kept_ticket, "pending")]  # fmt: skip
    # Both were active on the main connection: one conversation remains, with every message.
    texts = [m["text"] for m in ok(await d.api("admin", "GET", f"/tickets/{kept_ticket}/messages"))["items"]]
    assert texts == ["oi, sou a Rosa", "oi, é a Rosa de novo, outro chip"]
    assert ok(await d.api("admin", "GET", f"/tickets/{dropped_ticket}/events"))[-1]["action"] == "merged"

    blocked = ok(await d.api("sol", "POST", f"/contacts/{keep}/block"))
    assert blocked["blocked"] and blocked["blocked_at"] is not None
    refused(await d.api("ana", "POST", f"/contacts/{keep}/block"), 403, "permission_denied")
    assert ok(await d.api("ana", "GET", f"/tickets/{kept_ticket}"))["contact"]["blocked"] is True
    refused(await d.api("ana", "POST", f"/tickets/{kept_ticket}/messages", {"text": "olá"}), 409, "contact_blocked")
    before = await d.value("SELECT count(*) FROM messages")
    assert await d.say("5511992000001", "me desbloqueia") is None
    assert await d.value("SELECT count(*) FROM messages") == before
    assert [c["id"] for c in ok(await d.api("ana", "GET", "/contacts", blocked="true"))["items"]] == [keep]

    assert ok(await d.api("admin", "POST", f"/contacts/{keep}/unblock"))["blocked"] is False
    ok(await d.api("ana", "POST", f"/tickets/{kept_ticket}/messages", {"text": "olá, Rosa"}), 201)
    assert await d.say("5511992000001", "obrigada") == kept_ticket
    actions = [e["action"] for e in ok(await d.api("admin", "GET", "/audit"))["items"]]
    assert actions[:3] == ["contact.unblocked", "contact.blocked", "contact.merged"]

    # Closing a blocked contact's ticket sends them nothing, whatever was asked.
    ok(await d.api("admin", "POST", f"/contacts/{keep}/block"))
    ok(await d.api("ana", "POST", f"/tickets/{kept_ticket}/close", {"farewell": "Tchau!", "survey": True}))
    assert await d.value("SELECT count(*) FROM messages WHERE bot AND ticket_id = $1", kept_ticket) == 0
    assert await d.value("SELECT count(*) FROM csat_surveys") == 0

    # A block is about the person: merging a blocked number into an unblocked contact keeps them blocked.
    ok(await d.api("admin", "POST", f"/contacts/{keep}/unblock"))
    spam = await d.value("SELECT contact_id FROM tickets WHERE id = $1", await d.ticket("5511992000003", "spam"))
    ok(await d.api("admin", "POST", f"/contacts/{spam}/block"))
    assert ok(await d.api("admin", "POST", f"/contacts/{keep}/merge", {"other_id": spam}))["blocked"] is True
    assert await d.say("5511992000001", "de novo") is None


# -- 5. tags and quick replies ----------------------------------------------------------------------------------------


async def test_tags_crud(desk: Desk) -> None:
    d = desk
    vip = ok(await d.api("admin", "POST", "/tags", {"name": " VIP "}), 201)
    assert (vip["name"], vip["color"]) == ("VIP", "#78909c")
    refused(await d.api("admin", "POST", "/tags", {"name": "vip"}), 409, "conflict")
    refused(await d.api("ana", "POST", "/tags", {"name": "Minha"}), 403, "permission_denied")
    refused(await d.api("admin", "POST", "/tags", {"name": "Cor", "color": "red"}), 400, "validation_error")
    refused(await d.api("admin", "POST", "/tags", {"name": ""}), 400, "validation_error")
    refused(await d.api("admin", "POST", "/tags", {"name": "   "}), 400, "validation_error")
    refused(await d.api("admin", "PATCH", f"/tags/{vip['id']}", {"name": " "}), 400, "validation_error")
    urgent = ok(await d.api("sol", "POST", "/tags", {"name": "urgente", "color": "#FF0000"}), 201)
    assert [g["name"] for g in ok(await d.api("ana", "GET", "/tags"))] == ["urgente", "VIP"]
    refused(await d.api("admin", "PATCH", f"/tags/{urgent['id']}", {"name": "Vip"}), 409, "conflict")
    renamed = ok(await d.api("admin", "PATCH", f"/tags/{urgent['id']}", {"name": "Urgente"}))
    assert (renamed["name"], renamed["color"]) == ("Urgente", "#FF0000")
    assert ok(await d.api("sol", "PATCH", f"/tags/{urgent['id']}", {"color": "#00ff00"}))["color"] == "#00ff00"
    refused(await d.api("ana", "PATCH", f"/tags/{urgent['id']}", {"color": "#000000"}), 403, "permission_denied")
    refused(await d.api("admin", "PATCH", "/tags/999999", {"color": "#000000"}), 404, "tag_not_found")

    t = await d.ticket("5511993000001", "oi")
    contact = await d.value("SELECT contact_id FROM tickets WHERE id = $1", t)
    ok(await d.api("ana", "PUT", f"/tickets/{t}/tags", {"tag_ids": [vip["id"], urgent["id"]]}))
    ok(await d.api("ana", "PUT", f"/contacts/{contact}/tags", {"tag_ids": [vip["id"]]}))
    refused(await d.api("ana", "DELETE", f"/tags/{vip['id']}"), 403, "permission_denied")
    ok(await d.api("admin", "DELETE", f"/tags/{vip['id']}"), 204)
    refused(await d.api("admin", "DELETE", f"/tags/{vip['id']}"), 404, "tag_not_found")
    assert [g["name"] for g in ok(await d.api("ana", "GET", f"/tickets/{t}"))["tags"]] == ["Urgente"]
    assert ok(await d.api("ana", "GET", f"/contacts/{contact}"))["tags"] == []


async def test_quick_replies_scopes_and_rendering(desk: Desk) -> None:
    d = desk
    suporte, vendas = d.queues["Suporte"], d.queues["Vendas"]
    greeting = {"shortcut": "oi", "body": "Olá {{contact.first_name}}, aqui é {{ agent.name }}."}
    mine = ok(await d.api("ana", "POST", "/quick-replies", greeting), 201)
    assert (mine["scope"], mine["user_id"], mine["queue_id"]) == ("user", d.users["ana"], None)
    refused(await d.api("ana", "POST", "/quick-replies", greeting), 409, "conflict")
    ok(await d.api("bia", "POST", "/quick-replies", greeting), 201)  # her own personal scope
    refused(await d.api("ana", "POST", "/quick-replies", {**greeting, "scope": "tenant"}), 403, "permission_denied")
    refused(await d.api("ana", "POST", "/quick-replies", {**greeting, "scope": "queue", "queue_id": suporte}), 403,
            "permission_denied")  # fmt: skip
    refused(await d.api("sol", "POST", "/quick-replies", {**greeting, "scope": "tenant"}), 403, "permission_denied")
    refused(await d.api("sol", "POST", "/quick-replies", {**greeting, "scope": "queue", "queue_id": vendas}), 403,
            "permission_denied")  # fmt: skip
    queue_reply = ok(await d.api("sol", "POST", "/quick-replies", {
        "shortcut": "fila", "body": "Você está na fila {{queue.name}}.", "scope": "queue", "queue_id": suporte}), 201)  # fmt: skip
    ok(await d.api("admin", "POST", "/quick-replies", {
        "shortcut": "vendas", "body": "Fila de vendas.", "scope": "queue", "queue_id": vendas}), 201)  # fmt: skip
    closing = {"shortcut": "fim", "body": "Ticket #{{ticket.number}} encerrado. {{greeting}}!", "scope": "tenant"}
    ok(await d.api("admin", "POST", "/quick-replies", closing), 201)
    refused(await d.api("admin", "POST", "/quick-replies", closing), 409, "conflict")
    # The same shortcut in another scope is another reply.
    ok(await d.api("admin", "POST", "/quick-replies", {**greeting, "scope": "tenant"}), 201)
    for bad in ({"shortcut": "x", "body": "Oi {{cliente.nome}}"}, {"shortcut": "x", "body": "Oi {{contact.name"},
                {"shortcut": "x", "body": "Oi {{ Contact.Name }}"}):  # fmt: skip
        refused(await d.api("ana", "POST", "/quick-replies", bad), 400, "invalid_input")
    refused(await d.api("admin", "POST", "/quick-replies", {"shortcut": "x", "body": "y", "scope": "queue"}), 400,
            "invalid_input")  # fmt: skip
    spaced = {"shortcut": "Não Pode", "body": "y"}
    refused(await d.api("ana", "POST", "/quick-replies", spaced), 400, "validation_error")

    def shortcuts(replies: list[dict[str, Any]]) -> list[tuple[str, str]]:
        return [(r["shortcut"], r["scope"]) for r in replies]

    assert shortcuts(ok(await d.api("ana", "GET", "/quick-replies"))) == [
        ("fila", "queue"), ("fim", "tenant"), ("oi", "tenant"), ("oi", "user")]  # fmt: skip
    assert len(ok(await d.api("admin", "GET", "/quick-replies"))) == 4  # shared ones, not the agents' personal ones

    # Filled in for a ticket: personal first, then the ticket's queue, then the tenant's.
    t = await d.ticket("5511993000002", "bom dia", name="Carla Dias Souza")
    number = ok(await d.api("ana", "GET", f"/tickets/{t}"))["number"]
    rendered = ok(await d.api("ana", "GET", f"/tickets/{t}/quick-replies"))
    assert [(r["shortcut"], r["scope"]) for r in rendered] == [("oi", "user"), ("fila", "queue"), ("fim", "tenant"),
                                                                ("oi", "tenant")]  # fmt: skip
    assert rendered[0]["text"] == "Olá Carla, aqui é Ana Souza."
    assert rendered[1]["text"] == "Você está na fila Suporte."
    assert re.fullmatch(rf"Ticket #{number} encerrado\. (Bom dia|Boa tarde|Boa noite)!", rendered[2]["text"])
    by_bia = ok(await d.api("bia", "GET", f"/tickets/{t}/quick-replies"))
    assert by_bia[0]["text"] == "Olá Carla, aqui é Bia Lima."

    # Managing: owners their personal replies; shared ones admins (supervisors for their queues).
    refused(await d.api("ana", "PATCH", f"/quick-replies/{queue_reply['id']}", {"body": "x"}), 403, "permission_denied")
    changed = ok(await d.api("sol", "PATCH", f"/quick-replies/{queue_reply['id']}", {"body": "Fila {{queue.name}}!"}))
    assert changed["body"] == "Fila {{queue.name}}!"
    refused(await d.api("ana", "PATCH", f"/quick-replies/{mine['id']}", {"body": "{{nope}}"}), 400, "invalid_input")
    refused(await d.api("bia", "DELETE", f"/quick-replies/{mine['id']}"), 404, "quick_reply_not_found")
    ok(await d.api("ana", "DELETE", f"/quick-replies/{mine['id']}"), 204)
    assert ("oi", "user") not in shortcuts(ok(await d.api("ana", "GET", "/quick-replies")))


# -- 6. settings, queues and connections ----------------------------------------------------------------------------


async def test_settings_validation_and_audit(desk: Desk) -> None:
    d = desk
    current = ok(await d.api("admin", "GET", "/settings"))
    assert (current["timezone"], current["hours"], current["reopen_mode"]) == ("America/Sao_Paulo", None, "window")
    overlapping = {"weekly": [[{"start": "09:00", "end": "12:00"}, {"start": "11:00", "end": "14:00"}], *[[]] * 6]}
    for body, code in (
        ({"timezone": "Mars/Olympus"}, "invalid_input"),
        ({"hours": overlapping}, "invalid_input"),
        ({"hours": {**WEEK_9_TO_18, "timezone": "Nowhere/City"}}, "invalid_input"),
        ({"hours": {"weekly": [[]] * 6}}, "validation_error"),
        ({"hours": {"weekly": [[{"start": "9:00", "end": "18:00"}]] * 7}}, "validation_error"),
        ({"reopen_window_s": 2_592_001}, "validation_error"),
        ({"reopen_window_s": -1}, "validation_error"),
        ({"csat_window_s": 59}, "validation_error"),
        ({"reopen_mode": "sometimes"}, "validation_error"),
        ({"csat_prompt": ""}, "validation_error"),
        ({"theme": "dark"}, "validation_error"),
    ):
        refused(await d.api("admin", "PATCH", "/settings", body), 400, code)
    refused(await d.api("sol", "PATCH", "/settings", {"farewell_message": "x"}), 403, "permission_denied")
    refused(await d.api("ana", "GET", "/settings"), 403, "permission_denied")
    assert ok(await d.api("admin", "GET", "/settings")) == current  # nothing half-written

    change: dict[str, Any] = {"timezone": "America/Manaus", "hours": {**WEEK_9_TO_18, "holidays": ["2026-12-25"]},
              "out_of_hours_message": "Voltamos às 9h.", "reopen_mode": "new", "reopen_window_s": 0,
              "farewell_message": "Até mais!", "csat_enabled": True, "csat_window_s": 3600}  # fmt: skip
    updated = ok(await d.api("admin", "PATCH", "/settings", change))
    assert {k: updated[k] for k in change} == {**change, "hours": {**change["hours"], "timezone": None,
                                                                   "overrides": []}}  # fmt: skip
    assert ok(await d.api("admin", "GET", "/settings")) == updated
    audit = ok(await d.api("admin", "GET", "/audit"))["items"]
    assert [a["action"] for a in audit if a["action"].startswith("settings")] == ["settings.updated"]
    assert audit[0]["details"]["timezone"] == "America/Manaus" and audit[0]["details"]["hours"] == "changed"
    assert audit[0]["actor_id"] == d.users["admin"]
    assert ok(await d.api("admin", "PATCH", "/settings", {"hours": None}))["hours"] is None


async def test_queues_and_connections_round_trip(desk: Desk) -> None:
    d = desk
    hours = {"timezone": "America/Recife", "weekly": [[{"start": "08:00", "end": "12:00"},
                                                       {"start": "13:00", "end": "17:00"}]] * 5 + [[], []],
             "holidays": [], "overrides": [{"day": "2026-12-24", "intervals": [{"start": "08:00", "end": "11:00"}]}]}  # fmt: skip
    body = {"name": "Financeiro", "strategy": "least_busy", "return_on_offline": True, "hours": hours,
            "out_of_hours_message": "O financeiro atende das 8h às 17h.", "connection_ids": [d.second, d.main],
            "member_ids": [d.users["ana"]], "greeting": "Financeiro, bom dia."}  # fmt: skip
    created = ok(await d.api("admin", "POST", "/queues", body), 201)
    expected = {**body, "connection_ids": sorted([d.main, d.second])}
    assert {k: created[k] for k in body} == expected
    assert {k: ok(await d.api("admin", "GET", f"/queues/{created['id']}"))[k] for k in body} == expected
    queue = created["id"]
    overlapping = {"weekly": [[{"start": "22:00", "end": "02:00"}, {"start": "23:00", "end": "23:30"}], *[[]] * 6]}
    for bad, code in (
        ({"hours": overlapping}, "invalid_input"),
        ({"hours": {"weekly": [[{"start": "09:00", "end": "09:00"}], *[[]] * 6]}}, "invalid_input"),
        ({"hours": {**hours, "timezone": "America/Atlantis"}}, "invalid_input"),
        ({"hours": {**hours, "holidays": ["2026-12-24"]}}, "invalid_input"),  # a holiday and an override
        ({"strategy": "random"}, "validation_error"),
        ({"name": "   "}, "validation_error"),
        ({"connection_ids": [999999]}, "invalid_input"),
        ({"member_ids": [999999]}, "invalid_input"),
    ):
        refused(await d.api("admin", "PATCH", f"/queues/{queue}", bad), 400, code)
        refused(await d.api("admin", "POST", "/queues", {**body, "name": "Outra", **bad}), 400, code)
    assert {k: ok(await d.api("admin", "GET", f"/queues/{queue}"))[k] for k in body} == expected
    refused(await d.api("admin", "PATCH", f"/queues/{queue}", {"name": " vendas "}), 409, "conflict")
    assert ok(await d.api("admin", "PATCH", f"/queues/{queue}", {"name": " Cobrança "}))["name"] == "Cobrança"
    patched = ok(await d.api("admin", "PATCH", f"/queues/{queue}", {"hours": None, "strategy": "manual",
                                                                    "connection_ids": []}))  # fmt: skip
    assert (patched["hours"], patched["strategy"], patched["connection_ids"]) == (None, "manual", [])

    # The chatbot menu of a connection: only known queues; what a new customer then reads.
    suporte, vendas = d.queues["Suporte"], d.queues["Vendas"]
    unknown = {"menu": {"prompt": "Escolha:", "options": [{"key": "1", "label": "Vendas", "queue_id": 999999}]}}
    refused(await d.api("admin", "PATCH", f"/connections/{d.main}", {"bot": unknown}), 400, "invalid_input")
    fallback = {"menu": {"prompt": "Escolha:", "options": [{"key": "1", "label": "Vendas", "queue_id": vendas}]},
                "fallback_queue_id": 999999}  # fmt: skip
    refused(await d.api("admin", "PATCH", f"/connections/{d.main}", {"bot": fallback}), 400, "invalid_input")
    zero = {"menu": {"prompt": "Escolha:", "options": [{"key": "0", "label": "Vendas", "queue_id": vendas}]}}
    refused(await d.api("admin", "PATCH", f"/connections/{d.main}", {"bot": zero}), 400, "validation_error")
    refused(await d.api("admin", "PATCH", f"/connections/{d.main}", {"queue_ids": [999999]}), 400, "invalid_input")
    refused(await d.api("sol", "PATCH", f"/connections/{d.main}", {"greeting": "oi"}), 403, "permission_denied")
    bot: dict[str, Any] = {"menu": {"prompt": "Como podemos ajudar?", "options": [
        {"key": "1", "label": "Comprar", "queue_id": vendas},
        {"key": "2", "label": "Outros", "menu": {"prompt": "Sobre o quê?", "options": [
            {"key": "1", "label": "Suporte técnico", "queue_id": suporte},
            {"key": "2", "label": "Horários", "reply": "Abrimos das 9h às 18h."}]}}]},
        "greeting": "Olá! Bem-vindo.", "timeout_s": 600, "fallback_queue_id": suporte, "max_invalid": 2}  # fmt: skip
    saved = ok(await d.api("admin", "PATCH", f"/connections/{d.main}", {"bot": bot, "queue_ids": [vendas, suporte],
                                                                         "greeting": "Oi!"}))  # fmt: skip
    defaults = {"reply": None, "menu": None, "queue_id": None}
    assert saved["bot"]["menu"]["options"][0] == {**defaults, **bot["menu"]["options"][0]}
    assert (saved["bot"]["timeout_s"], saved["bot"]["fallback_queue_id"], saved["bot"]["greeting"]) == (
        600, suporte, "Olá! Bem-vindo.")  # fmt: skip
    assert (saved["queue_ids"], saved["greeting"]) == (sorted([suporte, vendas]), "Oi!")
    assert ok(await d.api("admin", "GET", f"/connections/{d.main}")) == saved
    t = await d.ticket("5511994000001", "oi")
    assert [r["body"] for r in await d.rows("SELECT body FROM messages WHERE bot AND ticket_id = $1 ORDER BY id", t)] == [
        "Olá! Bem-vindo.", "Como podemos ajudar?\n1 - Comprar\n2 - Outros"]  # fmt: skip
    assert await d.say("5511994000001", "comprar") == t
    assert ok(await d.api("admin", "GET", f"/tickets/{t}"))["queue_id"] == vendas
    cleared = ok(await d.api("admin", "PATCH", f"/connections/{d.main}", {"bot": None, "queue_ids": []}))
    assert (cleared["bot"], cleared["queue_ids"]) == (None, [])


# -- 7. strict request bodies -----------------------------------------------------------------------------------------


async def test_bodies_must_have_the_exact_json_types(desk: Desk) -> None:
    d = desk
    t = await d.ticket("5511995000001", "oi", name="Lia")
    queue = d.queues["Suporte"]
    for method, path, body in (
        ("PATCH", f"/queues/{queue}", {"return_on_offline": 0}),
        ("PATCH", f"/queues/{queue}", {"return_on_offline": "true"}),
        ("PATCH", f"/queues/{queue}", {"member_ids": ["1"]}),
        ("POST", f"/tickets/{t}/assign", {"user_id": "1"}),
        ("POST", f"/tickets/{t}/assign", {"user_id": 1.0}),
        ("POST", f"/tickets/{t}/assign", {"user_id": True}),
        ("POST", f"/tickets/{t}/transfer", {"queue_id": str(queue)}),
        ("POST", f"/tickets/{t}/close", {"survey": 1}),
        ("POST", f"/tickets/{t}/close", {"survey": "false"}),
        ("POST", f"/tickets/{t}/reopen", {"assign_to_me": 0}),
        ("PATCH", f"/tickets/{t}", {"priority": 3}),
        ("PUT", f"/tickets/{t}/tags", {"tag_ids": ["1"]}),
        ("POST", f"/tickets/{t}/messages", {"text": 5}),
        ("PATCH", "/settings", {"csat_enabled": "yes"}),
        ("PATCH", "/settings", {"reopen_window_s": "600"}),
        ("POST", "/contacts", {"phone": 5511988887777}),
        ("POST", "/quick-replies", {"shortcut": "x", "body": "y", "scope": "queue", "queue_id": str(queue)}),
        ("PATCH", f"/connections/{d.main}", {"queue_ids": [str(queue)]}),
        ("POST", f"/tickets/{t}/assign", {"user_id": d.users["ana"], "force": True}),  # unknown field
    ):
        refused(await d.api("admin", method, path, body), 400, "validation_error")
    # Labelling the JSON as something else does not make Litestar's lenient conversion apply.
    for content_type in ("text/plain", "application/octet-stream"):
        labelled = await d.client.patch(f"/api/v1/queues/{queue}", content=b'{"return_on_offline": 1}',
                                        headers={**d.auth["admin"], "content-type": content_type})  # fmt: skip
        refused(labelled, 400, "validation_error")
    ticket = ok(await d.api("admin", "GET", f"/tickets/{t}"))
    assert (ticket["status"], ticket["user_id"], ticket["priority"], ticket["tags"]) == ("pending", None, "normal", [])
    assert ok(await d.api("admin", "GET", f"/queues/{queue}"))["return_on_offline"] is False
    assert ok(await d.api("admin", "GET", "/settings"))["csat_enabled"] is False
    ok(await d.api("admin", "PATCH", f"/queues/{queue}", {"return_on_offline": True}))
    ok(await d.api("admin", "POST", f"/tickets/{t}/assign", {"user_id": d.users["ana"]}))


# -- 8. the dashboard -------------------------------------------------------------------------------------------------


async def test_dashboard_counts_averages_business_hours_and_scope(desk: Desk) -> None:
    d = desk
    ana, bia = d.users["ana"], d.users["bia"]
    vendas = d.queues["Vendas"]
    # Open two hours a day, from ten to eight hours ago: a ticket that waited sixteen hours waited two of them.
    now = utcnow()
    opens = (now - timedelta(hours=10)).astimezone(ZoneInfo("America/Sao_Paulo"))
    closes = opens + timedelta(hours=2)
    ok(await d.api("admin", "PATCH", "/settings", {"hours": {"weekly": [[{"start": f"{opens:%H:%M}",
                                                                          "end": f"{closes:%H:%M}"}]] * 7}}))  # fmt: skip
    slow = await d.ticket("5511996000001", "alguém?", name="Lento")
    await d.value("UPDATE tickets SET created_at = $2, waiting_since = $2 WHERE id = $1", slow,
                  now - timedelta(hours=16))  # fmt: skip
    ok(await d.api("ana", "POST", f"/tickets/{slow}/accept"))
    ok(await d.api("ana", "POST", f"/tickets/{slow}/messages", {"text": "Desculpe a demora!"}), 201)
    ok(await d.api("ana", "POST", f"/tickets/{slow}/close", {"survey": True}))
    assert await d.say("5511996000001", "5") == slow  # the customer rates it

    fast = await d.ticket("5511996000002", "oi", name="Rápido")
    ok(await d.api("admin", "POST", f"/tickets/{fast}/transfer", {"queue_id": vendas}))
    ok(await d.api("bia", "POST", f"/tickets/{fast}/messages", {"text": "Oi! Já resolvo."}), 201)  # takes it too
    ok(await d.api("bia", "POST", f"/tickets/{fast}/close"))
    await d.ticket("5511996000003", "esperando", name="Espera")
    waiting_sales = await d.ticket("5511996000004", "também", name="Também")
    ok(await d.api("admin", "POST", f"/tickets/{waiting_sales}/transfer", {"queue_id": vendas}))

    metrics = {r["id"]: r for r in await d.rows("SELECT id, wait_s, wait_bh_s, first_response_s, first_response_bh_s,"
                                                " resolution_s, resolution_bh_s FROM tickets")}  # fmt: skip
    assert metrics[slow]["wait_s"] == pytest.approx(16 * 3600, abs=5)
    assert (metrics[slow]["wait_bh_s"], metrics[slow]["first_response_bh_s"], metrics[slow]["resolution_bh_s"]) == (
        7200, 7200, 7200)  # fmt: skip
    assert metrics[fast]["wait_s"] < 5 and metrics[fast]["wait_bh_s"] == 0  # closed hours now

    board = ok(await d.api("admin", "GET", "/dashboard"))
    assert (board["created"], board["closed"], board["reopened"]) == (4, 2, 0)
    assert {k: board["now"][k] for k in ("pending", "open", "snoozed", "waiting")} == {
        "pending": 2, "open": 0, "snoozed": 0, "waiting": 2}  # fmt: skip
    for metric in ("waiting", "first_response", "resolution"):
        stats = board[metric]
        assert (stats["count"], stats["avg_business_s"]) == (2, 3600.0), metric
        assert stats["avg_s"] == pytest.approx(8 * 3600, abs=5), metric
    assert board["satisfaction"] == {"asked": 1, "answered": 1, "average": 5.0,
                                     "distribution": {"1": 0, "2": 0, "3": 0, "4": 0, "5": 1}}  # fmt: skip
    agents = {row["id"]: row for row in board["by_agent"]}
    assert set(agents) == {ana, bia, None}
    assert (agents[ana]["name"], agents[ana]["closed"], agents[ana]["csat_average"]) == ("Ana Souza", 1, 5.0)
    assert (agents[ana]["waiting"]["avg_business_s"], agents[bia]["waiting"]["avg_business_s"]) == (7200.0, 0.0)
    assert agents[ana]["resolution"]["avg_s"] == pytest.approx(16 * 3600, abs=5)
    assert (agents[bia]["closed"], agents[bia]["csat_answered"], agents[None]["open_now"]) == (1, 0, 2)
    by_queue = {row["name"]: (row["created"], row["closed"], row["open_now"]) for row in board["by_queue"]}
    assert by_queue == {"Suporte": (2, 1, 1), "Vendas": (2, 1, 1)}
    assert [(c["id"], c["created"]) for c in board["by_connection"]] == [(d.main, 4)]
    sales = ok(await d.api("admin", "GET", "/dashboard", queue_id=vendas))
    assert (sales["created"], sales["closed"], sales["waiting"]["avg_business_s"]) == (2, 1, 0.0)

    # Sol supervises Suporte only.
    mine = ok(await d.api("sol", "GET", "/dashboard"))
    assert (mine["created"], mine["closed"], mine["now"]["pending"]) == (2, 1, 1)
    assert (mine["waiting"]["count"], mine["waiting"]["avg_business_s"]) == (1, 7200.0)
    assert [q["name"] for q in mine["by_queue"]] == ["Suporte"]
    assert mine["satisfaction"]["answered"] == 1
    refused(await d.api("ana", "GET", "/dashboard"), 403, "permission_denied")

    # A period before all of it is empty; bad periods are refused.
    past = ok(await d.api("admin", "GET", "/dashboard", **{"from": (now - timedelta(days=30)).isoformat(),
                                                          "to": (now - timedelta(days=20)).isoformat()}))  # fmt: skip
    assert (past["created"], past["closed"], past["waiting"]["count"], past["waiting"]["avg_s"]) == (0, 0, 0, None)
    for period in ({"from": now.isoformat(), "to": (now - timedelta(days=1)).isoformat()},
                   {"from": (now - timedelta(days=400)).isoformat(), "to": now.isoformat()}):  # fmt: skip
        refused(await d.api("admin", "GET", "/dashboard", **period), 400, "invalid_input")
    for when in ("2026-11-01T00:00:00", "last week"):  # no zone; no instant
        bad = await d.api("admin", "GET", "/dashboard", **{"from": when})
        assert bad.status_code == 400 and bad.json()["code"] in ("invalid_input", "validation_error"), bad.text


# -- 9. message search ------------------------------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    """Lower-case words without accents: what a person means by "the words of this text"."""
    bare = "".join(ch for ch in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(ch))
    return re.findall(r"[a-z0-9]+", bare)


def _body(i: int) -> str:
    """Message ``i`` of the archive: 'pedido' in 60% of them, 'entrega' in 1%, 'reembolso' in three, 'cartão' in
    2%; 'alfa' and 'beta' are each in half of them but never together."""
    words = ["pedido" if i % 10 < 5 else "pedidos"] if i % 10 < 6 else ["olá"]
    words.append("alfa" if i % 2 else "beta")
    if i % 100 == 7:
        words.append("entrega" if i % 200 == 7 else "entregador")
    if i in (10, 1011, 2012):
        words.append("reembolso")
    if i % 50 == 5:
        words.append("Cartão" if i % 100 == 5 else "cartão")
    return " ".join(words) + ("?" if i % 3 else ", obrigado.")


async def test_message_search_matches_a_brute_force_ground_truth(desk: Desk) -> None:
    d = desk
    ana = d.users["ana"]
    tickets = [await d.ticket(f"55119970000{n:02d}", f"primeira mensagem {n}", name=f"Cliente {n}",
                              connection_id=d.second if n == 4 else None) for n in range(10)]  # fmt: skip
    ok(await d.api("ana", "POST", f"/tickets/{tickets[0]}/accept"))
    for t in tickets[2:4]:
        ok(await d.api("bia", "POST", f"/tickets/{t}/accept"))
    for t in tickets[5:]:
        ok(await d.api("admin", "POST", f"/tickets/{t}/transfer", {"queue_id": d.queues["Vendas"]}))
    connection_of = {r["id"]: r["connection_id"] for r in await d.rows("SELECT id, connection_id FROM tickets")}
    total = 3000
    start = utcnow() - timedelta(seconds=total)
    archive = [(tickets[(i * 7) % len(tickets)], i % 4 == 1, i % 37 == 0, _body(i)) for i in range(total)]
    await d.value(
        """
        INSERT INTO messages (ticket_id, connection_id, from_me, kind, body, status, status_rank, occurred_at, private)
        SELECT u.t, u.c, u.f OR u.p, 'text', u.b, CASE WHEN u.p THEN 'NOTE' WHEN u.f THEN 'SENT' ELSE 'RECEIVED' END,
               0, u.o, u.p
        FROM unnest($1::bigint[], $2::bigint[], $3::bool[], $4::bool[], $5::text[], $6::timestamptz[])
             AS u(t, c, f, p, b, o)
        """,
        [a[0] for a in archive], [connection_of[a[0]] for a in archive], [a[1] for a in archive],
        [a[2] for a in archive], [a[3] for a in archive], [start + timedelta(seconds=i) for i in range(total)],
    )  # fmt: skip
    await d.value("ANALYZE messages")

    # The statistics put each query on the path the test means it to take (see search_messages): walking newest
    # first for common words, collecting from the index for rare ones, and both for a phrase that never occurs.
    async with tenant_context(d.tenant.slug) as session:
        frequency = {q: await word_frequency(session.conn, session.tenant.schema, q)
                     for q in ("pedido", "entrega", "reembolso", "xyzzy", "alfa beta")}  # fmt: skip
    assert frequency["pedido"] is not None and frequency["pedido"] > 0.1  # walked, by everyone
    assert frequency["entrega"] is not None and 0.002 <= frequency["entrega"] < 0.02  # admins walk, agents collect
    assert frequency["reembolso"] is not None and frequency["reembolso"] < 0.002  # collected
    assert frequency["xyzzy"] == 0.0 and abs((frequency["alfa beta"] or 0) - 0.5) < 0.05  # walked, then collected

    rows = await d.rows("SELECT m.id, m.ticket_id, m.body, t.user_id, t.queue_id FROM messages m"
                        " JOIN tickets t ON t.id = m.ticket_id")  # fmt: skip
    ana_queues = {d.queues["Suporte"]}
    seen_by: dict[str, Callable[[Any], bool]] = {
        "admin": lambda r: True,
        "ana": lambda r: r["user_id"] == ana or (r["user_id"] is None and (r["queue_id"] is None
                                                                           or r["queue_id"] in ana_queues)),
    }  # fmt: skip

    def truth(who: str, q: str, ticket_id: int | None = None) -> list[int]:
        wanted = _words(q)
        return sorted((r["id"] for r in rows if seen_by[who](r) and (ticket_id is None or r["ticket_id"] == ticket_id)
                       and all(any(w.startswith(p) for w in _words(r["body"] or "")) for p in wanted)), reverse=True)  # fmt: skip

    async def search(who: str, q: str, *, limit: int, ticket_id: int | None = None) -> list[int]:
        found: list[int] = []
        cursor = None
        while True:
            page = ok(await d.api(who, "GET", "/search/messages", q=q, limit=limit, cursor=cursor, ticket_id=ticket_id))
            found += [hit["message"]["id"] for hit in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                return found
            assert len(page["items"]) == limit

    queries = ("pedido", "pedi", "PEDIDOS", "entrega", "entregador", "reembolso", "reembolso pedido", "alfa beta",
               "xyzzy", "cartao", "CARTÃO", "cart", "pedido cartão entrega", "obrigado alfa")  # fmt: skip
    for who in ("admin", "ana"):
        for q in queries:
            expected = truth(who, q)
            assert await search(who, q, limit=200 if len(expected) > 400 else 7) == expected, (who, q)
    assert len(truth("admin", "pedido")) > 1500 and len(truth("ana", "reembolso")) == 2
    assert truth("admin", "alfa beta") == [] and len(truth("admin", "cartao")) == 60

    # Within one conversation; an invisible one finds nothing.
    assert await search("ana", "pedido", limit=50, ticket_id=tickets[0]) == truth("ana", "pedido", tickets[0])
    assert await search("admin", "entrega", limit=3, ticket_id=tickets[3]) == truth("admin", "entrega", tickets[3])
    assert await search("ana", "pedido", limit=50, ticket_id=tickets[2]) == []

    hit = ok(await d.api("ana", "GET", "/search/messages", q="primeira mensagem 1"))["items"]
    assert [(h["message"]["text"], h["contact"]["name"], h["ticket_status"]) for h in hit] == [
        ("primeira mensagem 1", "Cliente 1", "pending")]  # fmt: skip
    assert hit[0]["ticket_number"] == ok(await d.api("ana", "GET", f"/tickets/{tickets[1]}"))["number"]
    refused(await d.api("ana", "GET", "/search/messages", q="?! ..."), 400, "invalid_input")
    refused(await d.api("ana", "GET", "/search/messages", q=""), 400, "validation_error")
    refused(await d.api("ana", "GET", "/search/messages", q="pedido", cursor="???"), 400, "invalid_input")


async def test_directory_blank_texts_and_quiet_reads(desk: Desk) -> None:
    d = desk
    team = ok(await d.api("ana", "GET", "/directory"))  # an agent may know the team to transfer to it
    assert {q["name"] for q in team["queues"]} == set(d.queues)
    names = {p["name"] for p in team["people"]}
    assert "Ana Souza" in names and not any(n.startswith(("Zeca", "Novo")) for n in names)  # disabled, invited
    assert {c["id"] for c in team["connections"]} == {d.main, d.second}
    assert set(team["close_defaults"]) == {"farewell_message", "csat_enabled"}
    ticket = await d.ticket("5511977001122", "oi", name="Lia")
    refused(await d.api("ana", "POST", f"/tickets/{ticket}/messages", {"text": "   "}), 400, "validation_error")
    refused(await d.api("ana", "POST", f"/tickets/{ticket}/notes", {"text": "\n"}), 400, "validation_error")
    refused(await d.api("admin", "POST", "/tags", {"name": "nul\u0000"}), 400, "validation_error")  # unstorable
    ok(await d.api("ana", "POST", f"/tickets/{ticket}/read"))
    events_before = await d.redis.xlen(d.keys.realtime(d.tenant.id))
    ok(await d.api("ana", "POST", f"/tickets/{ticket}/read"))  # nothing unread: nothing to tell the inbox
    assert await d.redis.xlen(d.keys.realtime(d.tenant.id)) == events_before
    # Name words and phone digits together narrow the list (both must match).
    await d.ticket("5511977003344", "oi", name="Lia Souza")
    found = ok(await d.api("admin", "GET", "/tickets", q="lia 3344"))["items"]
    assert [t["contact"]["phone"] for t in found] == ["+5511977003344"]
