"""The real simulator server and the real simulator driver over real WebSockets on 127.0.0.1 (no mocks)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from supervisor.drivers.base import DriverConfig, DriverError, RateLimited, SendFailed
from supervisor.drivers.simulator import SimulatorDriver
from supervisor.simulator.cli import add_simulator_verbs
from supervisor.simulator.client import SimulatorClient, SimulatorError
from supervisor.simulator.network import MEDIA_MAX_BYTES, MediaSpec, SimConfig
from supervisor.simulator.server import SimulatorServer
from supervisor.wire import DriverEvent, InboundMessage, MediaRef, MessageStatus, SessionState, SessionStatus, utcnow

NUMBER = "+5511900000000"
PHONE = "+5511988887777"
PHONE_CHAT = "5511988887777@s.whatsapp.net"
WAIT_S = 5.0  # a generous bound for anything the tests wait for (no timing is asserted)
FAST = SimConfig(qr_first_s=5, qr_next_s=5, ack_sent_s=0.01, ack_delivered_s=0.03, ack_read_s=0.06, send_rate=1000,
                 send_burst=1000)  # fmt: skip


class Session:
    """A driver and its one event iterator, with helpers that wait (bounded) for what a test expects."""

    def __init__(self, url: str, number: str = NUMBER, credentials: bytes | None = None, **options: str) -> None:
        self.driver = SimulatorDriver(DriverConfig(connection_id=1, tenant_id=1, business_number=number,
                                                   provider="simulator", endpoint=url, credentials=credentials,
                                                   options=options))  # fmt: skip
        self.events = self.driver.events()
        self.ended: SessionStatus | None = None

    async def next(self) -> DriverEvent:
        event = await asyncio.wait_for(anext(self.events), WAIT_S)
        if isinstance(event, SessionStatus) and event.reason is not None:
            self.ended = event
        return event

    async def until(self, done: Callable[[DriverEvent], bool], *, ack: bool = True, limit: int = 10_000
                    ) -> list[DriverEvent]:  # fmt: skip
        """Events up to and including the first one ``done`` accepts; inbound events are acked on the way."""
        seen: list[DriverEvent] = []
        for _ in range(limit):
            event = await self.next()
            seen.append(event)
            if ack:
                await self.driver.ack(event)
            if done(event):
                return seen
        raise AssertionError(f"gave up after {limit} events: {seen[-5:]}")

    async def statuses(self, provider_id: str, count: int) -> list[MessageStatus]:
        """The first ``count`` acks of one sent message (everything read on the way is acked)."""
        found: list[MessageStatus] = []
        for _ in range(1000):
            event = await self.next()
            await self.driver.ack(event)
            if isinstance(event, MessageStatus) and event.provider_message_id == provider_id:
                found.append(event)
                if len(found) == count:
                    return found
        raise AssertionError(f"only {found} for {provider_id}")

    async def inbound(self, count: int, *, ack: bool = True) -> list[InboundMessage]:
        """The next ``count`` inbound messages (duplicates included)."""
        found: list[InboundMessage] = []
        for _ in range(count * 10 + 100):
            event = await self.next()
            if ack:
                await self.driver.ack(event)
            if isinstance(event, InboundMessage):
                found.append(event)
                if len(found) == count:
                    return found
        raise AssertionError(f"only {len(found)} of {count} messages")

    async def connected(self) -> list[DriverEvent]:
        return await self.until(lambda e: isinstance(e, SessionStatus) and e.state is SessionState.CONNECTED)

    async def end(self) -> SessionStatus:
        """Read to the end of the stream; the last event must be the final status."""
        await self.until(lambda e: isinstance(e, SessionStatus) and e.reason is not None, ack=False)
        with pytest.raises(StopAsyncIteration):
            await self.next()
        assert self.ended is not None
        return self.ended

    async def close(self) -> None:
        await self.driver.stop()
        with contextlib.suppress(Exception):
            await self.events.aclose()  # type: ignore[attr-defined]


def is_status(state: SessionState) -> Callable[[DriverEvent], bool]:
    return lambda e: isinstance(e, SessionStatus) and e.state is state


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    for _ in range(int(WAIT_S / 0.02)):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[SimulatorServer]:
    sim_server = SimulatorServer(config=FAST)
    await sim_server.start()
    yield sim_server
    await sim_server.stop()


@pytest.fixture
async def sim(server: SimulatorServer) -> AsyncIterator[SimulatorClient]:
    async with SimulatorClient(server.url) as client:
        await client.reset()
        yield client


@pytest.fixture
async def open_session(server: SimulatorServer) -> AsyncIterator[Callable[..., Awaitable[Session]]]:
    """Start sessions (drivers) that are all stopped at the end of the test."""
    sessions: list[Session] = []

    async def start(number: str = NUMBER, credentials: bytes | None = None, **options: str) -> Session:
        session = Session(server.url, number, credentials, **options)
        sessions.append(session)
        await session.driver.start()
        return session

    yield start
    for session in sessions:
        await session.close()


@pytest.fixture
async def paired(sim: SimulatorClient, open_session: Callable[..., Awaitable[Session]]
                 ) -> Callable[..., Awaitable[tuple[Session, bytes]]]:  # fmt: skip
    """A connected session on a freshly paired number, and its credentials."""

    async def connect(number: str = NUMBER) -> tuple[Session, bytes]:
        await sim.configure(auto_pair=True)
        pairing = await open_session(number)
        end = await pairing.end()
        assert end.reason == "restart_required" and end.credentials
        await sim.configure(auto_pair=False)
        session = await open_session(number, end.credentials)
        await session.connected()
        return session, end.credentials

    return connect


# -- pairing ------------------------------------------------------------------------------------------------


async def test_qr_codes_rotate_and_run_out_with_logged_out(sim: SimulatorClient,
                                                           open_session: Callable[..., Awaitable[Session]]) -> None:  # fmt: skip
    await sim.configure(qr_first_s=0.3, qr_next_s=0.1, qr_limit=3)
    session = await open_session()
    assert session.driver.status() is SessionState.STARTING
    events = await session.until(lambda e: isinstance(e, SessionStatus) and e.reason is not None)
    assert [e.state for e in events if isinstance(e, SessionStatus)] == [
        SessionState.STARTING, SessionState.AWAITING_QR, SessionState.AWAITING_QR, SessionState.AWAITING_QR,
        SessionState.LOGGED_OUT]  # fmt: skip
    qrs = [e for e in events if isinstance(e, SessionStatus) and e.state is SessionState.AWAITING_QR]
    assert len({e.qr for e in qrs}) == 3
    assert all(e.qr_expires_at is not None and e.qr_expires_at > e.occurred_at for e in qrs)
    final = events[-1]
    assert isinstance(final, SessionStatus)
    assert (final.reason, final.code, final.retryable) == ("logged_out", "qr_limit", False)
    assert session.driver.status() is SessionState.LOGGED_OUT


async def test_pairing_restart_required_then_resume_connects_without_qr(
        sim: SimulatorClient, open_session: Callable[..., Awaitable[Session]]) -> None:  # fmt: skip
    pairing = await open_session()
    await pairing.until(is_status(SessionState.AWAITING_QR))
    assert (await sim.number(NUMBER)).pairing
    await sim.pair(NUMBER)
    paired = await pairing.next()
    assert isinstance(paired, SessionStatus) and paired.state is SessionState.CONNECTED and paired.credentials
    end = await pairing.end()
    assert (end.state, end.reason, end.code, end.retryable) == (SessionState.RECONNECTING, "restart_required", "515",
                                                                True)  # fmt: skip
    assert end.credentials == paired.credentials

    resumed = await open_session(NUMBER, end.credentials)
    events = await resumed.connected()
    assert [e.state for e in events if isinstance(e, SessionStatus)] == [SessionState.STARTING, SessionState.CONNECTED]
    assert resumed.driver.status() is SessionState.CONNECTED
    state = await sim.number(NUMBER)
    assert state.connected and state.paired


async def test_pair_code_pairing(sim: SimulatorClient, open_session: Callable[..., Awaitable[Session]]) -> None:
    session = await open_session(pairing="code")
    shown = (await session.until(is_status(SessionState.AWAITING_PAIR_CODE)))[-1]
    assert isinstance(shown, SessionStatus) and shown.pair_code and len(shown.pair_code) == 8
    with pytest.raises(SimulatorError) as wrong:
        await sim.pair(NUMBER, code="AAAA1111")
    assert wrong.value.code == "bad_pair_code" and wrong.value.status == 400
    await sim.pair(NUMBER, code=shown.pair_code)
    assert (await session.end()).reason == "restart_required"


# -- inbound ----------------------------------------------------------------------------------------------


async def test_inbound_messages_become_driver_events_and_acks_clear_the_backlog(
        sim: SimulatorClient, paired: Callable[..., Awaitable[tuple[Session, bytes]]]) -> None:  # fmt: skip
    session, _ = await paired()
    sent = await sim.send(PHONE, NUMBER, "Bom dia", name="Ana")
    reaction = await sim.send(PHONE, NUMBER, "👍", kind="reaction", reply_to=sent.ids[0])
    in_group = await sim.send(PHONE, NUMBER, "oi grupo", group="120363000000000042@g.us")
    text, react, group = await session.inbound(3)
    assert group.provider_message_id == in_group.ids[0]
    assert (text.provider_message_id, text.chat_id, text.chat_id_raw, text.chat_type) == (
        sent.ids[0], PHONE_CHAT, "5511988887777@c.us", "direct")  # fmt: skip
    assert (text.sender_id, text.sender_name, text.kind, text.text, text.from_me) == (PHONE_CHAT, "Ana", "text",
                                                                                       "Bom dia", False)  # fmt: skip
    assert text.sender_alt_id is not None and text.sender_alt_id.endswith("@lid")
    assert abs(text.occurred_at - utcnow()) < timedelta(minutes=1)
    assert (react.provider_message_id, react.kind, react.text, react.reply_to_id) == (
        reaction.ids[0], "reaction", "👍", sent.ids[0])  # fmt: skip
    assert (group.chat_id, group.chat_type, group.sender_id) == ("120363000000000042@g.us", "group", PHONE_CHAT)

    await session.driver.mark_read(PHONE_CHAT, [text.provider_message_id, react.provider_message_id])

    async def backlog_empty_and_read() -> bool:
        state = await sim.number(NUMBER)
        return state.pending == 0 and state.reads == 2

    await eventually(backlog_empty_and_read)


async def test_lid_addressed_messages_become_lid_chats_and_replies_reach_the_phone(
        sim: SimulatorClient, paired: Callable[..., Awaitable[tuple[Session, bytes]]]) -> None:  # fmt: skip
    session, _ = await paired()
    by_pn = (await sim.send(PHONE, NUMBER, "por número")).ids[0]
    by_lid = (await sim.send(PHONE, NUMBER, "por lid", name="Ana", addressing="lid")).ids[0]
    pn, lid = await session.inbound(2)
    assert (pn.provider_message_id, lid.provider_message_id) == (by_pn, by_lid)
    assert pn.sender_alt_id is not None and pn.sender_alt_id.endswith("@lid")
    assert (lid.chat_id, lid.chat_id_raw, lid.chat_type, lid.sender_id, lid.sender_alt_id, lid.sender_name) == (
        pn.sender_alt_id, pn.sender_alt_id, "direct", pn.sender_alt_id, PHONE_CHAT, "Ana")  # fmt: skip

    reply = await session.driver.send_text(lid.chat_id, "olá, Ana", idempotency_key="lid-1")
    acks = await session.statuses(reply, 3)
    assert all(a.chat_id == lid.chat_id for a in acks)
    (received,) = (await sim.inbox(PHONE)).messages
    assert (received.id, received.chat, received.text) == (reply, "5511900000000@c.us", "olá, Ana")


async def test_unacked_events_come_back_after_a_reconnect_with_the_offline_backlog_in_order(
        sim: SimulatorClient, paired: Callable[..., Awaitable[tuple[Session, bytes]]],
        open_session: Callable[..., Awaitable[Session]]) -> None:  # fmt: skip
    session, credentials = await paired()
    first = (await sim.send(PHONE, NUMBER, "one", count=3)).ids
    got = await session.inbound(3, ack=False)
    assert [m.provider_message_id for m in got] == first
    await session.driver.ack(got[0])  # only the first one was stored
    await session.driver.stop()
    assert (await session.end()).reason == "stopped"

    offline = (await sim.send("+5511977776666", NUMBER, "while you were away", count=2)).ids
    assert (await sim.number(NUMBER)).pending == 4
    again = await open_session(NUMBER, credentials)
    assert [m.provider_message_id for m in await again.inbound(4)] == [first[1], first[2], *offline]


async def test_duplicate_deliveries_carry_the_same_ids(sim: SimulatorClient,
                                                       paired: Callable[..., Awaitable[tuple[Session, bytes]]]) -> None:  # fmt: skip
    session, _ = await paired()
    await sim.configure(inbound_duplicate=1.0)
    ids = (await sim.send(PHONE, NUMBER, "twice", count=2)).ids
    assert [m.provider_message_id for m in await session.inbound(4)] == [ids[0], ids[0], ids[1], ids[1]]


async def test_bulk_load_delivers_exactly_p_times_m_distinct_messages(
        sim: SimulatorClient, paired: Callable[..., Awaitable[tuple[Session, bytes]]]) -> None:  # fmt: skip
    session, _ = await paired()
    await sim.configure(inbound_duplicate=0.05, batch_max=100, window=300)
    job = await sim.bulk(NUMBER, phones=20, messages=50)
    assert job.total == 1000
    distinct: set[str] = set()
    for _ in range(5000):  # bounded: 1000 messages plus ~5% duplicates
        distinct.update(m.provider_message_id for m in await session.inbound(1))
        if len(distinct) == 1000:
            break
    assert len(distinct) == 1000

    async def all_acked() -> bool:
        return (await sim.number(NUMBER)).pending == 0 and (await sim.bulk_job(job.id)).done

    await eventually(all_acked)
    state = await sim.number(NUMBER)
    assert state.acked == 1000 and state.delivered >= 1000


# -- outbound --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "expected"),
    [({}, ["SENT", "DELIVERED", "READ"]), ({"ack_skip_delivered": 1.0}, ["SENT", "READ"]),
     ({"ack_reorder": 1.0}, ["SENT", "READ", "DELIVERED"])],
)  # fmt: skip
async def test_sends_get_a_provider_id_and_acks(sim: SimulatorClient,
                                                paired: Callable[..., Awaitable[tuple[Session, bytes]]],
                                                config: dict[str, Any], expected: list[str]) -> None:  # fmt: skip
    session, _ = await paired()
    await sim.configure(**config)
    provider_id = await session.driver.send_text(PHONE_CHAT, "Olá!", idempotency_key="m-1")
    assert provider_id.startswith("3EB0")
    acks = await session.statuses(provider_id, len(expected))
    assert [a.status for a in acks] == expected
    assert all(a.chat_id == PHONE_CHAT and a.participant is None for a in acks)
    (message,) = (await sim.inbox(PHONE)).messages
    assert (message.id, message.sender, message.text, message.status) == (provider_id, NUMBER, "Olá!", "READ")


async def test_a_repeated_idempotency_key_sends_once(sim: SimulatorClient,
                                                     paired: Callable[..., Awaitable[tuple[Session, bytes]]]) -> None:  # fmt: skip
    session, _ = await paired()
    first = await session.driver.send_text(PHONE_CHAT, "once", idempotency_key="atende-1-42")
    again = await session.driver.send_text(PHONE_CHAT, "once", idempotency_key="atende-1-42")
    assert again == first
    assert [m.id for m in (await sim.inbox(PHONE)).messages] == [first]
    assert (await sim.number(NUMBER)).sent == 1


async def test_rate_limit_raises_rate_limited_and_bad_recipients_send_failed(
        sim: SimulatorClient, paired: Callable[..., Awaitable[tuple[Session, bytes]]]) -> None:  # fmt: skip
    session, _ = await paired()
    await sim.configure(send_rate=1, send_burst=1)
    await session.driver.send_text(PHONE_CHAT, "first", idempotency_key="a")
    with pytest.raises(RateLimited) as limited:
        await session.driver.send_text(PHONE_CHAT, "second", idempotency_key="b")
    assert limited.value.code == "rate_limited" and limited.value.retry_after_s > 0 and limited.value.retryable
    with pytest.raises(SendFailed) as failed:
        await session.driver.send_text("999@g.us", "nobody", idempotency_key="c")
    assert failed.value.code == "unknown_chat"


async def test_group_sends_are_acked_per_participant(sim: SimulatorClient,
                                                     paired: Callable[..., Awaitable[tuple[Session, bytes]]]) -> None:  # fmt: skip
    session, _ = await paired()
    group = await sim.create_group([PHONE, "+5511977776666"], subject="Equipe")
    provider_id = await session.driver.send_text(group.id, "bom dia, equipe", idempotency_key="g1")
    acks = await session.statuses(provider_id, 5)
    assert len(acks) == 5 and {(a.status, a.participant) for a in acks} == {
        ("SENT", None), ("DELIVERED", PHONE_CHAT), ("DELIVERED", "5511977776666@s.whatsapp.net"),
        ("READ", PHONE_CHAT), ("READ", "5511977776666@s.whatsapp.net")}  # fmt: skip
    assert all(a.chat_id == group.id for a in acks)
    for phone in (PHONE, "+5511977776666"):
        assert [(m.id, m.chat) for m in (await sim.inbox(phone)).messages] == [(provider_id, group.id)]


async def test_media_download_and_injected_failure(sim: SimulatorClient,
                                                   paired: Callable[..., Awaitable[tuple[Session, bytes]]]) -> None:  # fmt: skip
    session, _ = await paired()
    sent = await sim.send(PHONE, NUMBER, "the receipt", kind="document",
                          media=MediaSpec(mime="application/pdf", filename="nota.pdf", data=b"%PDF-1.7 hello"))  # fmt: skip
    (message,) = await session.inbound(1)
    assert message.kind == "document" and message.text == "the receipt" and message.media is not None
    media = message.media
    assert (media.mime, media.size, media.filename) == ("application/pdf", 14, "nota.pdf")
    assert await session.driver.download_media(media) == b"%PDF-1.7 hello"

    await sim.fail_media(sent.media[0], times=1)
    with pytest.raises(DriverError) as failed:
        await session.driver.download_media(media)
    assert failed.value.code == "media_unavailable" and failed.value.retryable
    assert await session.driver.download_media(media) == b"%PDF-1.7 hello"
    with pytest.raises(DriverError) as elsewhere:
        await session.driver.download_media(MediaRef(mime="image/png", ref="http://example.com/x.png"))
    assert elsewhere.value.code == "invalid_media_ref"

    photo = MediaRef(mime="image/jpeg", ref="https://cdn.example/p.jpg", filename="p.jpg")
    provider_id = await session.driver.send_media(PHONE_CHAT, photo, caption="look", idempotency_key="p1")
    (received,) = (await sim.inbox(PHONE)).messages
    assert (received.id, received.kind, received.text) == (provider_id, "image", "look")
    assert received.media is not None and received.media.ref == photo.ref


async def test_send_media_with_data_uploads_the_bytes_and_delivers_the_item(
        server: SimulatorServer, sim: SimulatorClient, paired: Callable[..., Awaitable[tuple[Session, bytes]]]
) -> None:  # fmt: skip
    session, _ = await paired()
    data = b"%PDF-1.7 " + bytes(range(256)) * 64
    ref = MediaRef(mime="application/pdf", ref="local:42", filename="orçamento.pdf")
    provider_id = await session.driver.send_media(PHONE_CHAT, ref, caption="segue", idempotency_key="d1", data=data)
    again = await session.driver.send_media(PHONE_CHAT, ref, caption="segue", idempotency_key="d1", data=data)
    assert again == provider_id
    (received,) = (await sim.inbox(PHONE)).messages
    assert (received.id, received.kind, received.text) == (provider_id, "document", "segue")
    media = received.media
    assert media is not None and media.id is not None and media.url == f"/media/{media.id}" and media.ref == media.id
    assert (media.mime, media.size, media.filename, media.sha256) == ("application/pdf", len(data), "orçamento.pdf",
                                                                      hashlib.sha256(data).hexdigest())  # fmt: skip
    async with httpx.AsyncClient(base_url=server.url, trust_env=False) as http:
        download = await http.get(media.url)
    assert download.status_code == 200 and download.content == data
    assert download.headers["content-type"] == "application/pdf"
    assert "filename*=UTF-8''or%C3%A7amento.pdf" in download.headers["content-disposition"]

    with pytest.raises(DriverError) as refused:
        await session.driver.send_media(PHONE_CHAT, ref, caption=None, idempotency_key="d2", data=b"")
    assert (refused.value.code, refused.value.retryable) == ("media_upload_failed", False)
    assert "invalid_input" in str(refused.value)
    assert len((await sim.inbox(PHONE)).messages) == 1


async def test_the_upload_route_answers_media_items_and_refuses_what_is_too_big(sim: SimulatorClient) -> None:
    item = await sim.upload_media(b"GIF89a", "image/gif", "ação.gif")
    assert (item.mime, item.size, item.filename, item.sha256) == ("image/gif", 6, "ação.gif",
                                                                  hashlib.sha256(b"GIF89a").hexdigest())  # fmt: skip
    with pytest.raises(SimulatorError) as empty:
        await sim.upload_media(b"", "image/gif")
    assert (empty.value.code, empty.value.status) == ("invalid_input", 400)
    with pytest.raises(SimulatorError) as too_big:
        await sim.upload_media(bytes(MEDIA_MAX_BYTES + 1), "video/mp4")
    assert (too_big.value.code, too_big.value.status) == ("too_large", 413)


# -- endings ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "state", "reason", "retryable"),
    [("network", SessionState.RECONNECTING, "network", True),
     ("server_error", SessionState.RECONNECTING, "server_error", True),
     ("logged_out", SessionState.LOGGED_OUT, "logged_out", False),
     ("temp_banned", SessionState.QUARANTINED, "temp_banned", True),
     ("banned", SessionState.QUARANTINED, "banned", False),
     ("outdated", SessionState.QUARANTINED, "outdated", False),
     ("replaced", SessionState.QUARANTINED, "replaced", False),
     ("protocol_error", SessionState.RECONNECTING, "crashed", True)],
)  # fmt: skip
async def test_every_fault_ends_the_stream_with_its_reason(sim: SimulatorClient,
                                                           paired: Callable[..., Awaitable[tuple[Session, bytes]]],
                                                           kind: str, state: SessionState, reason: str,
                                                           retryable: bool) -> None:  # fmt: skip
    session, _ = await paired()
    await sim.fault(NUMBER, kind, seconds=600 if kind == "temp_banned" else None)
    end = await session.end()
    assert (end.state, end.reason, end.retryable) == (state, reason, retryable)
    assert session.driver.status() is state
    if kind == "temp_banned":
        assert end.until is not None and timedelta(minutes=9) < end.until - utcnow() <= timedelta(minutes=10)
    with pytest.raises(DriverError) as closed:
        await session.driver.send_text(PHONE_CHAT, "late", idempotency_key="late")
    assert closed.value.code == "not_connected"


async def test_refused_connections_make_a_crash_loop_until_cleared(
        sim: SimulatorClient, paired: Callable[..., Awaitable[tuple[Session, bytes]]],
        open_session: Callable[..., Awaitable[Session]]) -> None:  # fmt: skip
    session, credentials = await paired()
    await sim.fault(NUMBER, "refuse", seconds=60)
    await sim.fault(NUMBER, "network")
    assert (await session.end()).reason == "network"
    for _ in range(2):
        retry = await open_session(NUMBER, credentials)
        end = await retry.end()
        assert (end.reason, end.code, end.retryable) == ("server_error", "503", True)
    await sim.fault(NUMBER, "clear")
    await (await open_session(NUMBER, credentials)).connected()


async def test_a_second_connection_with_the_same_credentials_replaces_the_first(
        paired: Callable[..., Awaitable[tuple[Session, bytes]]], open_session: Callable[..., Awaitable[Session]]
) -> None:  # fmt: skip
    first, credentials = await paired()
    second = await open_session(NUMBER, credentials)
    await second.connected()
    end = await first.end()
    assert (end.state, end.reason, end.code, end.retryable) == (SessionState.QUARANTINED, "replaced", "440", False)


async def test_stop_and_logout(sim: SimulatorClient, paired: Callable[..., Awaitable[tuple[Session, bytes]]],
                               open_session: Callable[..., Awaitable[Session]]) -> None:  # fmt: skip
    session, credentials = await paired()
    await session.driver.stop()
    end = await session.end()
    assert (end.state, end.reason, end.retryable) == (SessionState.STOPPED, "stopped", False)
    assert (await sim.number(NUMBER)).paired

    again = await open_session(NUMBER, credentials)
    await again.connected()
    await again.driver.logout()
    assert (await again.end()).reason == "logged_out"
    assert not (await sim.number(NUMBER)).paired
    assert (await (await open_session(NUMBER, credentials)).end()).reason == "logged_out"


async def test_an_unreachable_simulator_ends_the_stream_with_network(open_session: Callable[..., Awaitable[Session]]
                                                                     ) -> None:  # fmt: skip
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    session = Session(f"http://127.0.0.1:{port}")
    await session.driver.start()
    end = await session.end()
    assert (end.state, end.reason, end.retryable) == (SessionState.RECONNECTING, "network", True)


async def test_a_refused_hello_ends_the_stream_as_crashed(open_session: Callable[..., Awaitable[Session]]) -> None:
    session = await open_session("not-a-number")
    end = await session.end()
    assert (end.reason, end.code, end.retryable) == ("crashed", "invalid_input", True)


async def test_control_api_errors_have_stable_codes(sim: SimulatorClient) -> None:
    with pytest.raises(SimulatorError) as not_pairing:
        await sim.pair(NUMBER)
    assert (not_pairing.value.code, not_pairing.value.status) == ("not_pairing", 409)
    with pytest.raises(SimulatorError) as bad_kind:
        await sim.fault(NUMBER, "meteor")
    assert (bad_kind.value.code, bad_kind.value.status) == ("invalid_input", 400)
    with pytest.raises(SimulatorError) as bad_config:
        await sim.configure(window=0)
    assert bad_config.value.code == "invalid_input"
    with pytest.raises(SimulatorError) as missing:
        await sim.bulk_job("bulk-404")
    assert (missing.value.code, missing.value.status) == ("not_found", 404)


# -- the CLI ------------------------------------------------------------------------------------------------


def cli(*argv: str) -> argparse.Namespace:
    root = argparse.ArgumentParser(prog="atende")
    add_simulator_verbs(root.add_subparsers(dest="verb", required=True))
    return root.parse_args(argv)


async def test_cli_sim_send_and_inbox(server: SimulatorServer, sim: SimulatorClient,
                                      paired: Callable[..., Awaitable[tuple[Session, bytes]]],
                                      capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    session, _ = await paired()
    args = cli("sim", "send", "--to", NUMBER, "--from", PHONE, "--text", "quero pizza", "--name", "Bia", "--count", "2")
    assert await asyncio.to_thread(args.simulator_handler, args, server.url) == 0
    ids = [json.loads(line)["id"] for line in capsys.readouterr().out.splitlines()]
    got = await session.inbound(2)
    assert [(m.provider_message_id, m.text, m.sender_name) for m in got] == [(i, "quero pizza", "Bia") for i in ids]

    reply = await session.driver.send_text(PHONE_CHAT, "sai em 30 min", idempotency_key="r1")
    await session.statuses(reply, 3)
    args = cli("sim", "inbox", "--phone", PHONE)
    assert await asyncio.to_thread(args.simulator_handler, args, server.url) == 0
    (line,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {k: line[k] for k in ("id", "from", "text", "kind", "status")} == {
        "id": reply, "from": NUMBER, "text": "sai em 30 min", "kind": "text", "status": "READ"}  # fmt: skip
    assert line["timestamp"].endswith("+00:00")

    args = cli("sim", "status", "--number", NUMBER)
    assert await asyncio.to_thread(args.simulator_handler, args, server.url) == 0
    assert json.loads(capsys.readouterr().out)["connected"] is True
    args = cli("sim", "fault", "--number", NUMBER, "--kind", "server_error")
    assert await asyncio.to_thread(args.simulator_handler, args, server.url) == 0
    assert (await session.end()).reason == "server_error"
    args = cli("sim", "pair", "--number", NUMBER)
    assert await asyncio.to_thread(args.simulator_handler, args, server.url) == 2
    assert "[not_pairing]" in capsys.readouterr().err


async def test_cli_sim_send_media_sends_the_file_and_inbox_prints_media(
        server: SimulatorServer, sim: SimulatorClient, paired: Callable[..., Awaitable[tuple[Session, bytes]]],
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:  # fmt: skip
    session, _ = await paired()
    photo = tmp_path / "pizza.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    args = cli("sim", "send", "--to", NUMBER, "--from", PHONE, "--media", str(photo), "--caption", "esta aqui",
               "--addressing", "lid")  # fmt: skip
    assert await asyncio.to_thread(args.simulator_handler, args, server.url) == 0
    (line,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    (message,) = await session.inbound(1)
    assert message.provider_message_id == line["id"]
    assert (message.kind, message.text, message.chat_id.endswith("@lid"), message.sender_alt_id) == (
        "image", "esta aqui", True, PHONE_CHAT)  # fmt: skip
    media = message.media
    assert media is not None and media.ref.endswith(f"/media/{line['media']}")
    assert (media.mime, media.size, media.filename, media.sha256) == (
        "image/png", photo.stat().st_size, "pizza.png", hashlib.sha256(photo.read_bytes()).hexdigest())  # fmt: skip
    assert await session.driver.download_media(media) == photo.read_bytes()

    document = tmp_path / "cardapio.bin"
    document.write_bytes(b"menu")
    args = cli("sim", "send", "--to", NUMBER, "--from", PHONE, "--media", str(document), "--text", "o menu",
               "--mime", "application/x-menu")  # fmt: skip
    assert await asyncio.to_thread(args.simulator_handler, args, server.url) == 0
    (doc,) = await session.inbound(1)
    assert (doc.kind, doc.text, doc.chat_id, doc.media and doc.media.mime) == ("document", "o menu", PHONE_CHAT,
                                                                               "application/x-menu")  # fmt: skip
    capsys.readouterr()

    await session.driver.send_media(PHONE_CHAT, MediaRef(mime="image/png", ref="", filename="r.png"),
                                    caption="recebido", idempotency_key="c1", data=b"\x89PNG")  # fmt: skip
    args = cli("sim", "inbox", "--phone", PHONE)
    assert await asyncio.to_thread(args.simulator_handler, args, server.url) == 0
    (printed,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (printed["kind"], printed["text"]) == ("image", "recebido")
    assert {k: printed["media"][k] for k in ("mime", "size", "filename", "sha256")} == {
        "mime": "image/png", "size": 4, "filename": "r.png", "sha256": hashlib.sha256(b"\x89PNG").hexdigest()}  # fmt: skip
    assert printed["media"]["url"] == f"/media/{printed['media']['id']}"

    for argv, why in ((("--text", "x", "--caption", "y"), "--caption only go with --media"),
                      ((), "--text is required"), (("--media", str(tmp_path / "nope.png")), "cannot read")):  # fmt: skip
        args = cli("sim", "send", "--to", NUMBER, "--from", PHONE, *argv)
        assert await asyncio.to_thread(args.simulator_handler, args, server.url) == 2
        assert why in capsys.readouterr().err


async def test_cli_simulator_verb_serves_until_interrupted() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "supervisor.simulator.cli", "--url", "http://127.0.0.1:8010", "simulator", "--port", "0",
        "--auto-pair", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        assert line.startswith("simulator listening on http://127.0.0.1:") and "(auto-pair)" in line
        url = line.split()[3]
        async with SimulatorClient(url) as client:
            assert await client.health()
            assert (await client.config()).auto_pair
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
