"""What the router does with a conversation before and around the agents, on real PostgreSQL and Redis: one contact
per person whatever number form or LID WhatsApp shows, reopen rules, satisfaction answers, closed hours, the
chatbot menu's timeout, snoozes that wake up, blocked contacts, and tickets returning when an agent goes offline."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import msgspec
import pytest
from redis.asyncio import Redis

from saas import presence
from saas.app import create_app
from saas.automation.menu import Bot, Menu, MenuOption
from saas.connections.service import create_connection
from saas.router.worker import RouterWorker
from saas.settings import Settings
from supervisor.streams import StreamKeys, append_events
from supervisor.wire import ChatType, Envelope, InboundMessage, utcnow
from tenants.context import tenant_context
from tenants.passwords import hash_password
from tenants.provisioning import TenantInfo
from tests.conftest import PASSWORD, app_client, eventually, login
from tests.integration.conftest import MakeTenant, TenantQueries, drain, waiting_on_a_lock


@dataclass
class Harness(TenantQueries):
    tenant: TenantInfo
    connection_id: int
    redis: Redis
    keys: StreamKeys
    worker: RouterWorker
    settings: Settings
    sent: int = 0

    async def say(self, chat: str, text: str | None, *, alt: str | None = None, from_me: bool = False,
                  name: str | None = None, sender: str | None = None) -> None:  # fmt: skip
        """A WhatsApp message on ``chat`` (``<digits>@s.whatsapp.net``, ``<id>@lid``, ``<id>@g.us`` with a
        ``sender``), routed at once."""
        self.sent += 1
        kind: ChatType = "group" if chat.endswith("@g.us") else "broadcast" if chat.endswith("@broadcast") else "direct"
        message = InboundMessage(provider_message_id=f"p{self.sent}-{uuid.uuid4().hex[:6]}", chat_id=chat,
                                 chat_id_raw=chat, chat_type=kind, sender_id=sender or chat, sender_alt_id=alt,
                                 sender_name=name, text=text, from_me=from_me, occurred_at=utcnow())  # fmt: skip
        await append_events(self.redis, self.keys, [Envelope(
            event_id=message.provider_message_id, tenant_id=self.tenant.id, connection_id=self.connection_id,
            provider="simulator", received_at=utcnow(), event=message)])  # fmt: skip
        await drain(self.worker)

    async def bot_texts(self) -> list[str]:
        return [r["body"] for r in await self.rows("SELECT body FROM messages WHERE bot ORDER BY id")]


@pytest.fixture
async def harness(settings: Settings, make_tenant: MakeTenant, redis_url: str) -> AsyncIterator[Harness]:
    tenant = await make_tenant("auto", plan="pro")
    keys = StreamKeys(f"{settings.redis_prefix}:{uuid.uuid4().hex[:6]}", shards=2)
    async with tenant_context(tenant.slug) as session:
        connection = await create_connection(session, name="Main", provider="simulator",
                                             business_number="+55119" + str(uuid.uuid4().int)[:8])  # fmt: skip
    redis = Redis.from_url(redis_url)
    own = msgspec.structs.replace(settings, redis_prefix=keys.prefix, stream_shards=keys.shards)
    yield Harness(tenant, connection.id, redis, keys, RouterWorker(redis, keys), own)
    await redis.aclose()


async def _agent(h: Harness, name: str, *, presence_: str = "online") -> int:
    return int(await h.value(
        "INSERT INTO users (email, name, role, password_hash, presence) VALUES ($1, $2, 'agent', $3, $4) RETURNING id",
        f"{name.lower()}@auto.io", name, hash_password(PASSWORD), presence_))  # fmt: skip


async def test_a_person_is_one_contact_across_lid_and_phone_forms(harness: Harness) -> None:
    h = harness
    await h.say("5511988887777@s.whatsapp.net", "oi pelo número", name="Rosa")
    await h.say("101234567@lid", "oi pelo lid", alt="5511988887777@s.whatsapp.net", name="Rosa")
    contacts = await h.rows("SELECT id, wa_id, phone, phone_key, lid FROM contacts")
    assert len(contacts) == 1
    assert (contacts[0]["lid"], contacts[0]["phone"], contacts[0]["wa_id"]) == (
        "101234567@lid", "+5511988887777", "101234567@lid")  # replies go to the chat she used last  # fmt: skip
    assert await h.value("SELECT count(*) FROM tickets") == 1
    assert await h.value("SELECT count(*) FROM messages") == 2

    # An account from before Brazil's 9th digit: WhatsApp shows 12 digits, the person is the same.
    async with app_client(create_app(h.settings)) as client:
        auth = await login(client, h.tenant.slug)
        added = await client.post("/api/v1/contacts", headers=auth, json={"phone": "(21) 99876-5432", "name": "Téo"})
        assert added.status_code == 201, added.text
        assert added.json()["phone"] == "+5521998765432"
        again = await client.post("/api/v1/contacts", headers=auth, json={"phone": "+55 21 9876-5432"})
        assert (again.status_code, again.json()["code"]) == (409, "contact_exists")
    await h.say("552198765432@s.whatsapp.net", "sou eu, o Téo", name="Teo")
    teo = await h.rows("SELECT id, name, push_name, wa_id FROM contacts WHERE phone_key = '5521998765432'")
    assert len(teo) == 1 and teo[0]["id"] == added.json()["id"]
    assert (teo[0]["name"], teo[0]["push_name"], teo[0]["wa_id"]) == ("Téo", "Teo", "552198765432@s.whatsapp.net")


async def test_two_contacts_found_to_be_one_person_are_merged(harness: Harness) -> None:
    h = harness
    await h.say("5511955554444@s.whatsapp.net", "pelo telefone")  # a contact known by phone only
    await h.say("909090@lid", "pelo lid, sem o telefone")  # another known by LID only (WhatsApp hid the number)
    assert await h.value("SELECT count(*) FROM contacts") == 2
    assert await h.value("SELECT count(*) FROM tickets WHERE status <> 'closed'") == 2
    await h.say("909090@lid", "agora com o telefone", alt="5511955554444@s.whatsapp.net")
    contacts = await h.rows("SELECT id, phone, lid FROM contacts")
    assert [(c["phone"], c["lid"]) for c in contacts] == [("+5511955554444", "909090@lid")]
    tickets = await h.rows("SELECT id, status, contact_id FROM tickets ORDER BY id")
    assert [t["status"] for t in tickets] == ["pending", "closed"]  # the LID ticket merged into the phone's
    assert {t["contact_id"] for t in tickets} == {contacts[0]["id"]}
    assert await h.value("SELECT count(*) FROM messages WHERE ticket_id = $1", tickets[0]["id"]) == 3
    assert await h.value("SELECT action FROM ticket_events WHERE ticket_id = $1", tickets[1]["id"]) == "merged"


async def test_reopen_within_the_window_then_a_new_ticket(harness: Harness) -> None:
    h = harness
    ana = await _agent(h, "Ana")
    chat = "5511944443333@s.whatsapp.net"
    await h.say(chat, "primeiro contato")
    first = await h.value("SELECT id FROM tickets")
    closed_at = utcnow() - timedelta(seconds=100)
    await h.value("UPDATE tickets SET status = 'closed', closed_at = $1, user_id = $2", closed_at, ana)
    await h.value("UPDATE tenant_settings SET reopen_mode = 'window', reopen_window_s = 600")
    await h.say(chat, "esqueci de perguntar")
    ticket = (await h.rows("SELECT id, status, user_id, reopened_count FROM tickets"))[0]
    assert (ticket["id"], ticket["status"], ticket["user_id"], ticket["reopened_count"]) == (first, "open", ana, 1)

    await h.value("UPDATE tickets SET status = 'closed', closed_at = $1", utcnow() - timedelta(seconds=601))
    await h.say(chat, "dias depois")
    assert [r["status"] for r in await h.rows("SELECT status FROM tickets ORDER BY id")] == ["closed", "pending"]

    await h.value("UPDATE tickets SET status = 'closed', closed_at = now()")
    await h.value("UPDATE tenant_settings SET reopen_mode = 'new'")
    await h.say(chat, "de novo")
    assert await h.value("SELECT count(*) FROM tickets") == 3


async def test_reopen_to_an_agent_going_offline_meanwhile_waits_in_the_queue(harness: Harness, database: str) -> None:
    """The reopen looks at the agent's presence without the distribution lock; if the agent goes offline in
    between (their presence change commits under that lock), the reopened ticket must not stay with them."""
    import asyncpg

    h = harness
    ana = await _agent(h, "Ana")
    queue = await h.value("INSERT INTO queues (name, return_on_offline) VALUES ('Suporte', true) RETURNING id")
    chat = "5511944440000@s.whatsapp.net"
    await h.say(chat, "oi")
    await h.value("UPDATE tickets SET status = 'closed', closed_at = now(), user_id = $1, queue_id = $2", ana, queue)
    await h.value("UPDATE tenant_settings SET reopen_mode = 'window', reopen_window_s = 600")
    offline = await asyncpg.connect(database)  # Ana's presence change, holding the distribution lock
    try:
        going = offline.transaction()
        await going.start()
        await offline.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"atende.distribute.{h.tenant.id}"
        )
        await offline.execute(f"UPDATE \"{h.tenant.schema}\".users SET presence = 'offline' WHERE id = $1", ana)
        routed = asyncio.create_task(h.say(chat, "voltei"))
        await eventually(lambda: waiting_on_a_lock(database), what="the router waiting on the distribution lock")
        await going.commit()
        await routed
    finally:
        await offline.close()
    ticket = (await h.rows("SELECT status, user_id, queue_id FROM tickets"))[0]
    assert (ticket["status"], ticket["user_id"], ticket["queue_id"]) == ("pending", None, queue)
    events = [r["action"] for r in await h.rows("SELECT action FROM ticket_events ORDER BY id")]
    assert events[-2:] == ["reopened", "returned"]


async def test_a_conversation_the_business_started_is_routed_when_the_customer_answers(harness: Harness) -> None:
    h = harness
    queue = await h.value("INSERT INTO queues (name, greeting) VALUES ('Suporte', 'Fila de suporte.') RETURNING id")
    await h.value("INSERT INTO queue_connections VALUES ($1, $2)", queue, h.connection_id)
    chat = "5511944441111@s.whatsapp.net"
    await h.say(chat, "Olá! Seu pedido saiu para entrega.", from_me=True)  # typed on the business's phone
    assert (await h.rows("SELECT queue_id FROM tickets"))[0]["queue_id"] is None
    await h.say(chat, "obrigado! e o prazo?")
    assert (await h.rows("SELECT queue_id FROM tickets"))[0]["queue_id"] == queue
    assert await h.bot_texts() == ["Fila de suporte."]
    await h.say(chat, "alô?")
    assert await h.bot_texts() == ["Fila de suporte."]  # started once


async def test_survey_answers_and_what_is_not_an_answer(harness: Harness) -> None:
    h = harness
    chat = "5511933332222@s.whatsapp.net"
    await h.say(chat, "olá")
    ticket = await h.value("SELECT id FROM tickets")
    contact = await h.value("SELECT id FROM contacts")
    await h.value("UPDATE tenant_settings SET reopen_mode = 'new'")

    async def survey(expires_in_s: float) -> None:
        await h.value("UPDATE tickets SET status = 'closed', closed_at = now()")
        await h.value("INSERT INTO csat_surveys (ticket_id, contact_id, connection_id, expires_at)"
                      " VALUES ($1, $2, $3, now() + make_interval(secs => $4))",
                      ticket, contact, h.connection_id, expires_in_s)  # fmt: skip

    await survey(3600)
    await h.say(chat, "⭐⭐⭐⭐")
    assert await h.rows("SELECT state, rating FROM csat_surveys") == [("answered", 4)]
    assert await h.value("SELECT count(*) FROM tickets") == 1  # stored on the closed ticket, nothing reopened
    assert await h.value("SELECT status FROM tickets") == "closed"
    assert "Obrigado pela sua avaliação!" in await h.bot_texts()

    await h.value("DELETE FROM csat_surveys")
    await survey(3600)
    await h.say(chat, "na verdade tenho outra dúvida")  # not a rating: the survey lapses, a new conversation starts
    assert await h.value("SELECT state FROM csat_surveys") == "expired"
    assert await h.value("SELECT count(*) FROM tickets WHERE status <> 'closed'") == 1

    await h.value("DELETE FROM csat_surveys")
    await h.value("UPDATE tickets SET status = 'closed', closed_at = now()")
    await survey(-1)  # asked long ago
    await h.say(chat, "5")
    assert await h.value("SELECT state FROM csat_surveys") == "expired"
    assert await h.value("SELECT count(*) FROM tickets WHERE status <> 'closed'") == 1


async def test_closed_hours_message_goes_once_per_window(harness: Harness) -> None:
    h = harness
    closed_week = '{"weekly": [[], [], [], [], [], [], []]}'
    await h.value("UPDATE tenant_settings SET hours = $1::jsonb, out_of_hours_message = 'Estamos fechados agora.'",
                  closed_week)  # fmt: skip
    await h.say("5511922221111@s.whatsapp.net", "alguém aí?")
    await h.say("5511922221111@s.whatsapp.net", "oi??")
    await h.say("5511922220000@s.whatsapp.net", "outro cliente")
    assert await h.bot_texts() == ["Estamos fechados agora.", "Estamos fechados agora."]  # once per contact
    assert await h.value("SELECT count(*) FROM out_of_hours_notices") == 2


async def test_menu_timeout_routes_to_the_fallback_queue(harness: Harness) -> None:
    h = harness
    fallback = await h.value("INSERT INTO queues (name, greeting) VALUES ('Geral', 'Fila geral.') RETURNING id")
    sales = await h.value("INSERT INTO queues (name) VALUES ('Vendas') RETURNING id")
    bot = Bot(menu=Menu(prompt="Escolha:", options=[MenuOption(key="1", label="Vendas", queue_id=sales)]),
              timeout_s=1, timeout_reply="Vou te passar para a fila geral.", fallback_queue_id=fallback)  # fmt: skip
    await h.value("UPDATE connections SET bot = $1::jsonb", msgspec.json.encode(bot).decode())
    await h.say("5511911110000@s.whatsapp.net", "oi")
    assert await h.value("SELECT bot_state FROM tickets") == "menu"
    assert await h.bot_texts() == ["Escolha:\n1 - Vendas"]
    await asyncio.sleep(1.1)
    assert await h.worker.timers_once() == 1
    ticket = (await h.rows("SELECT bot_state, queue_id FROM tickets"))[0]
    assert (ticket["bot_state"], ticket["queue_id"]) == (None, fallback)
    assert (await h.bot_texts())[1:] == ["Vou te passar para a fila geral.", "Fila geral."]
    assert await h.worker.timers_once() == 0  # handled, gone


async def test_groups_get_no_automated_messages_and_statuses_are_not_conversations(harness: Harness) -> None:
    h = harness
    queue = await h.value("INSERT INTO queues (name, greeting) VALUES ('Suporte', 'Fila de suporte.') RETURNING id")
    await h.value("INSERT INTO queue_connections VALUES ($1, $2)", queue, h.connection_id)
    await h.value("UPDATE connections SET greeting = 'Olá! Bem-vindo.'")
    await h.value("UPDATE tenant_settings SET hours = $1::jsonb, out_of_hours_message = 'Fechados.',"
                  " farewell_message = 'Até logo!', csat_enabled = true",
                  '{"weekly": [[], [], [], [], [], [], []]}')  # fmt: skip
    await h.say("120363012345678@g.us", "bom dia, grupo", sender="5511955554444@s.whatsapp.net", name="Rita")
    await h.say("120363012345678@g.us", "alguém?", sender="5511955553333@s.whatsapp.net", name="Caio")
    group = await h.rows("SELECT t.id, t.queue_id, c.is_group FROM tickets t JOIN contacts c ON c.id = t.contact_id")
    assert [(g["queue_id"], g["is_group"]) for g in group] == [(queue, True)]  # the only queue, silently
    assert await h.bot_texts() == []
    assert await h.value("SELECT count(*) FROM out_of_hours_notices") == 0

    # Contacts' status updates and channel posts are not someone writing to the business.
    await h.say("status@broadcast", "minha viagem", sender="5511955552222@s.whatsapp.net")
    await h.say("120363099999999@newsletter", "novidades do canal")
    assert await h.value("SELECT count(*) FROM messages") == 2
    assert await h.value("SELECT count(*) FROM contacts") == 1

    # Closing with the tenant's defaults sends the group neither the farewell nor the survey.
    async with app_client(create_app(h.settings)) as client:
        auth = await login(client, h.tenant.slug)
        closed = await client.post(f"/api/v1/tickets/{group[0]['id']}/close", headers=auth)
        assert closed.status_code == 200, closed.text
    assert await h.bot_texts() == []
    assert await h.value("SELECT count(*) FROM csat_surveys") == 0
    # A person on the same connection gets all of it.
    await h.say("5511955551111@s.whatsapp.net", "oi")
    assert await h.bot_texts() == ["Olá! Bem-vindo.", "Fila de suporte.", "Fechados."]


async def test_blocked_contacts_are_not_heard(harness: Harness) -> None:
    h = harness
    await h.say("5511900001111@s.whatsapp.net", "spam")
    await h.value("UPDATE contacts SET blocked_at = now()")
    await h.value("UPDATE tickets SET status = 'closed', closed_at = now()")
    await h.say("5511900001111@s.whatsapp.net", "spam de novo")
    assert await h.value("SELECT count(*) FROM messages") == 1
    assert await h.value("SELECT count(*) FROM tickets WHERE status <> 'closed'") == 0


async def test_snoozed_ticket_wakes_up_and_a_message_wakes_it_early(harness: Harness) -> None:
    h = harness
    await h.say("5511900002222@s.whatsapp.net", "oi")
    ticket = await h.value("SELECT id FROM tickets")
    async with app_client(create_app(h.settings)) as client:
        auth = await login(client, h.tenant.slug)
        until = (utcnow() + timedelta(seconds=1)).isoformat()
        snoozed = await client.patch(f"/api/v1/tickets/{ticket}", headers=auth, json={"snoozed_until": until})
        assert snoozed.status_code == 200, snoozed.text
        assert (await client.get("/api/v1/tickets", headers=auth)).json()["items"] == []
        listed = (await client.get("/api/v1/tickets?snoozed=true", headers=auth)).json()["items"]
        assert [t["id"] for t in listed] == [ticket]
        await asyncio.sleep(1.1)
        assert await h.worker.timers_once() == 1
        assert [t["id"] for t in (await client.get("/api/v1/tickets", headers=auth)).json()["items"]] == [ticket]

        later = (utcnow() + timedelta(hours=2)).isoformat()
        await client.patch(f"/api/v1/tickets/{ticket}", headers=auth, json={"snoozed_until": later})
        await h.say("5511900002222@s.whatsapp.net", "ainda estou aqui")
        assert await h.value("SELECT snoozed_until FROM tickets") is None
        bad = await client.patch(f"/api/v1/tickets/{ticket}", headers=auth,
                                 json={"snoozed_until": (utcnow() - timedelta(minutes=1)).isoformat()})  # fmt: skip
        assert (bad.status_code, bad.json()["code"]) == (400, "invalid_input")


async def test_going_offline_returns_tickets_to_queues_that_ask_for_it(harness: Harness) -> None:
    h = harness
    ana, bia = await _agent(h, "Ana", presence_="offline"), await _agent(h, "Bia", presence_="offline")
    queue = await h.value("INSERT INTO queues (name, strategy, return_on_offline) VALUES ('Suporte', 'round_robin',"
                          " true) RETURNING id")  # fmt: skip
    await h.value("INSERT INTO queue_members VALUES ($1, $2), ($1, $3)", queue, ana, bia)
    await h.value("INSERT INTO queue_connections VALUES ($1, $2)", queue, h.connection_id)
    await h.say("5511900003333@s.whatsapp.net", "preciso de ajuda")
    assert await h.value("SELECT user_id FROM tickets") is None  # nobody online: it waits
    assert await presence.reconcile(h.redis, h.keys, h.tenant.id, ana) == "offline"
    await presence.connected(h.redis, h.keys, h.tenant.id, ana, "sock-ana")
    assert await h.value("SELECT user_id FROM tickets") == ana  # coming online took the waiting ticket
    await presence.connected(h.redis, h.keys, h.tenant.id, bia, "sock-bia")
    await presence.disconnected(h.redis, h.keys, h.tenant.id, ana, "sock-ana")
    assert await h.value("SELECT presence FROM users WHERE id = $1", ana) == "offline"
    assert await h.value("SELECT user_id FROM tickets") == bia  # back to the queue, and on to Bia
    actions = [r["action"] for r in await h.rows("SELECT action FROM ticket_events ORDER BY id")]
    assert actions == ["routed", "assigned", "returned", "assigned"]
    await presence.connected(h.redis, h.keys, h.tenant.id, bia, "sock-bia", away=True)
    assert await h.value("SELECT presence FROM users WHERE id = $1", bia) == "away"
    assert await h.value("SELECT user_id FROM tickets") == bia  # away keeps the tickets


async def test_silent_sockets_go_offline_through_the_sweep(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    h = harness
    ana = await _agent(h, "Ana", presence_="offline")
    await presence.connected(h.redis, h.keys, h.tenant.id, ana, "sock-1")
    assert await h.value("SELECT presence FROM users WHERE id = $1", ana) == "online"
    monkeypatch.setattr(presence, "PRESENCE_TIMEOUT_S", 0.2)  # the inbox would have sent a heartbeat by now
    await asyncio.sleep(0.3)
    await eventually(lambda: _swept(h), what="the sweep")
    assert await h.value("SELECT presence FROM users WHERE id = $1", ana) == "offline"


async def _swept(h: Harness) -> bool:
    return await h.worker.presence_once() >= 1


async def test_making_a_queue_automatic_or_raising_capacity_distributes_the_waiting(harness: Harness) -> None:
    h = harness
    ana = await _agent(h, "Ana")
    await h.value("UPDATE users SET capacity = 1 WHERE id = $1", ana)
    queue = await h.value("INSERT INTO queues (name) VALUES ('Manual') RETURNING id")
    await h.value("INSERT INTO queue_members VALUES ($1, $2)", queue, ana)
    await h.value("INSERT INTO queue_connections VALUES ($1, $2)", queue, h.connection_id)
    for i in range(3):
        await h.say(f"55119000055{i:02d}@s.whatsapp.net", "oi")
    assert await h.value("SELECT count(*) FROM tickets WHERE user_id IS NULL") == 3  # manual: they wait
    async with app_client(create_app(h.settings)) as client:
        auth = await login(client, h.tenant.slug)
        changed = await client.patch(f"/api/v1/queues/{queue}", headers=auth, json={"strategy": "least_busy"})
        assert changed.status_code == 200, changed.text
        assert await h.value("SELECT count(*) FROM tickets WHERE user_id = $1", ana) == 1  # up to her capacity
        raised = await client.patch(f"/api/v1/users/{ana}", headers=auth, json={"capacity": 3})
        assert (raised.status_code, raised.json()["capacity"]) == (200, 3)
        assert await h.value("SELECT count(*) FROM tickets WHERE user_id = $1", ana) == 3


async def test_merging_several_contacts_folds_their_active_tickets_in_turn(harness: Harness) -> None:
    from saas.contacts.merge import merge_contacts

    h = harness
    for chat in ("111@lid", "222@lid", "333@lid"):
        await h.say(chat, f"oi de {chat}")
    keep, first, second = [r["id"] for r in await h.rows("SELECT id FROM contacts ORDER BY id")]
    await h.value("UPDATE tickets SET status = 'closed', closed_at = now() WHERE contact_id = $1", keep)
    await h.value("INSERT INTO csat_surveys (ticket_id, contact_id, connection_id, expires_at)"
                  " SELECT id, contact_id, connection_id, now() + interval '1 hour' FROM tickets")  # fmt: skip
    async with tenant_context(h.tenant.slug) as session:
        changed = await merge_contacts(session.conn, keep, [first, second], reason="test")
    assert changed
    tickets = await h.rows("SELECT status, contact_id FROM tickets ORDER BY id")
    assert {t["contact_id"] for t in tickets} == {keep}
    assert [t["status"] for t in tickets].count("closed") == 2  # one active ticket left per contact and connection
    assert (
        await h.value(
            "SELECT count(*) FROM messages WHERE ticket_id = (SELECT id FROM tickets WHERE status <> 'closed')"
        )
        == 2
    )
    assert await h.value("SELECT count(*) FROM csat_surveys WHERE state = 'asked'") == 1


async def test_a_nul_character_never_blocks_a_message(harness: Harness) -> None:
    h = harness
    await h.say("5511900006666@s.whatsapp.net", "meu pedido\x00 chegou", name="Jo\x00ão")
    assert await h.value("SELECT body FROM messages") == "meu pedido chegou"
    assert await h.value("SELECT push_name FROM contacts") == "João"


async def test_a_timer_that_fires_early_fires_again_later_even_past_its_lease(harness: Harness) -> None:
    from saas import timers

    h = harness
    await h.say("5511900007777@s.whatsapp.net", "oi")
    ticket = await h.value("SELECT id FROM tickets")
    async with app_client(create_app(h.settings)) as client:
        auth = await login(client, h.tenant.slug)
        soon = (utcnow() + timedelta(seconds=1)).isoformat()
        await client.patch(f"/api/v1/tickets/{ticket}", headers=auth, json={"snoozed_until": soon})
        later = utcnow() + timedelta(minutes=5)  # snoozed again, further than the claim lease (60 s)
        await client.patch(f"/api/v1/tickets/{ticket}", headers=auth, json={"snoozed_until": later.isoformat()})
    await asyncio.sleep(1.1)
    assert await h.worker.timers_once() == 1  # fired at the first time: too early, so due again at the later one
    assert await h.value("SELECT snoozed_until IS NOT NULL FROM tickets")
    score = await h.redis.zscore(timers.timers_key(h.keys), f"{h.tenant.id}:snooze:{ticket}")
    assert score is not None and abs(score - later.timestamp()) < 1


async def test_a_message_racing_a_close_opens_a_conversation(harness: Harness, database: str) -> None:
    import asyncpg

    h = harness
    chat = "5511900008888@s.whatsapp.net"
    await h.say(chat, "oi")
    first = await h.value("SELECT id FROM tickets")
    await h.value("UPDATE tenant_settings SET reopen_mode = 'new'")
    agent = await asyncpg.connect(database)  # an agent's close, committed while the router waits on the ticket
    try:
        closing = agent.transaction()
        await closing.start()
        await agent.execute(f"UPDATE \"{h.tenant.schema}\".tickets SET status = 'closed', closed_at = now()")
        routed = asyncio.create_task(h.say(chat, "mais uma coisa"))
        await eventually(lambda: waiting_on_a_lock(database), what="the router waiting on the closing ticket")
        assert not routed.done()  # the router waits for the close instead of writing into the closing ticket
        await closing.commit()
        await routed
    finally:
        await agent.close()
    tickets = await h.rows("SELECT id, status FROM tickets ORDER BY id")
    assert [(t["id"] == first, t["status"]) for t in tickets] == [(True, "closed"), (False, "pending")]
    assert await h.value("SELECT body FROM messages WHERE ticket_id = $1", tickets[1]["id"]) == "mais uma coisa"


async def test_a_redelivered_old_message_opens_nothing(harness: Harness) -> None:
    h = harness
    chat = "5511900009999@s.whatsapp.net"
    message = InboundMessage(provider_message_id="old-1", chat_id=chat, chat_id_raw=chat, sender_id=chat, text="oi",
                             occurred_at=utcnow())  # fmt: skip
    envelope = Envelope(event_id="old-1", tenant_id=h.tenant.id, connection_id=h.connection_id, provider="simulator",
                        received_at=utcnow(), event=message)  # fmt: skip
    await append_events(h.redis, h.keys, [envelope])
    await drain(h.worker)
    await h.value("UPDATE tickets SET status = 'closed', closed_at = now()")
    for mode in ("new", "window"):
        await h.value("UPDATE tenant_settings SET reopen_mode = $1", mode)
        await append_events(h.redis, h.keys, [envelope])  # the provider delivers it again, days later
        await drain(h.worker)
        assert await h.rows("SELECT status, reopened_count FROM tickets") == [("closed", 0)]


async def test_presence_changes_never_deadlock_with_ticket_actions(harness: Harness, database: str) -> None:
    from saas import timers
    from saas.tickets.lifecycle import lock_distribution

    h = harness
    ana = await _agent(h, "Ana")
    queue = await h.value("INSERT INTO queues (name, strategy, return_on_offline) VALUES ('Q', 'round_robin', true)"
                          " RETURNING id")  # fmt: skip
    await h.value("INSERT INTO queue_members VALUES ($1, $2)", queue, ana)
    await h.value("INSERT INTO queue_connections VALUES ($1, $2)", queue, h.connection_id)
    await h.say("5511900012345@s.whatsapp.net", "oi")
    ticket = await h.value("SELECT id FROM tickets WHERE user_id = $1", ana)
    assert ticket is not None

    row_held = asyncio.Event()

    async def goes_offline() -> str:  # while an action holds her ticket
        await row_held.wait()
        return await presence.reconcile(h.redis, h.keys, h.tenant.id, ana)  # no socket: offline

    offline = asyncio.create_task(goes_offline())

    async def offline_done_or_blocked() -> bool:
        return offline.done() or await waiting_on_a_lock(database)

    async def action() -> None:  # what an action does: the ticket row first, the distribution lock after
        async with tenant_context(h.tenant.slug) as session:
            await session.conn.fetchrow("SELECT id FROM tickets WHERE id = $1 FOR UPDATE", ticket)
            row_held.set()
            # The distribution lock once going offline is over, or as soon as it waits on a lock: on this ticket,
            # under the distribution lock, that would be the deadlock (PostgreSQL would abort one of the two).
            await eventually(offline_done_or_blocked, what="going offline to finish or wait on a lock")
            await lock_distribution(session.conn, h.tenant.id)

    _, went = await asyncio.wait_for(asyncio.gather(action(), offline), 10)
    assert went == "offline"
    # Her ticket was held by the action, so it stays with her for now and a timer looks again.
    assert await h.value("SELECT user_id FROM tickets") == ana
    due = await h.redis.zscore(timers.timers_key(h.keys), f"{h.tenant.id}:presence:{ana}")
    assert due is not None
    await asyncio.sleep(max(0.0, due - time.time()) + 0.1)
    assert await h.worker.timers_once() == 1
    assert await h.value("SELECT user_id FROM tickets") is None  # back in the queue now
