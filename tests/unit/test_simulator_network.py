"""The simulated network as a pure model: a fake clock, a seeded RNG, frames in and out, no sockets."""

from __future__ import annotations

import hashlib
import random
from typing import Any

import msgspec
import pytest

from supervisor.simulator.network import (
    MEDIA_MAX_BYTES,
    Ack,
    BulkRequest,
    Connected,
    Connection,
    Disconnect,
    Error,
    Events,
    FaultRequest,
    GroupRequest,
    Hello,
    InboxMedia,
    InMsg,
    InReceipt,
    Logout,
    MediaFailRequest,
    MediaSpec,
    Network,
    OutMedia,
    PairCode,
    Paired,
    PairRequest,
    PhoneMessage,
    Qr,
    RequestPairCode,
    Send,
    SendOk,
    SimConfig,
    SimError,
    WireEvent,
    digits_of,
)

NUMBER = "+5511900000000"
PHONE = "+5511988887777"
PHONE_JID = "5511988887777@c.us"


class Clocks:
    """A monotonic and a wall clock that only move when the test says so."""

    def __init__(self) -> None:
        self.mono = 100.0
        self.wall = 1_800_000_000.0

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += seconds


def make_network(clocks: Clocks, **config: Any) -> Network:
    return Network(SimConfig(**config), clock=lambda: clocks.mono, wall=lambda: clocks.wall, rng=random.Random(7))


@pytest.fixture
def clocks() -> Clocks:
    return Clocks()


@pytest.fixture
def net(clocks: Clocks) -> Network:
    return make_network(clocks)


def drain_all(net: Network, conn: Connection) -> list[Any]:
    """Every frame the server would write now (bounded: the window stops an endless backlog)."""
    frames: list[Any] = []
    for _ in range(1000):
        drained = net.drain(conn)
        frames += drained.frames
        if not drained.frames or drained.close:
            break
    return frames


def events_of(frames: list[Any]) -> list[WireEvent]:
    return [event for frame in frames if isinstance(frame, Events) for event in frame.events]


def advance(net: Network, clocks: Clocks, seconds: float) -> None:
    clocks.advance(seconds)
    net.tick()


def pair_and_connect(net: Network, number: str = NUMBER) -> tuple[Connection, bytes]:
    conn = net.connect(Hello(number=number))
    net.pair(number)
    paired = [f for f in drain_all(net, conn) if isinstance(f, Paired)]
    live = net.connect(Hello(number=number, credentials=paired[0].credentials))
    assert isinstance(drain_all(net, live)[0], Connected)
    return live, paired[0].credentials


def goodbye(frames: list[Any]) -> Disconnect:
    assert isinstance(frames[-1], Disconnect), frames
    return frames[-1]


# -- pairing ----------------------------------------------------------------------------------------------------


def test_qr_codes_rotate_then_run_out_with_logged_out(clocks: Clocks) -> None:
    net = make_network(clocks, qr_first_s=60, qr_next_s=20, qr_limit=3)
    conn = net.connect(Hello(number=NUMBER))
    first = drain_all(net, conn)
    assert [type(f) for f in first] == [Qr]
    assert first[0].index == 0 and first[0].expires_at == int(clocks.wall * 1000) + 60_000

    advance(net, clocks, 59.9)
    assert drain_all(net, conn) == []
    advance(net, clocks, 0.1)
    second = drain_all(net, conn)
    assert second[0].index == 1 and second[0].code != first[0].code
    assert second[0].expires_at == int(clocks.wall * 1000) + 20_000

    advance(net, clocks, 20)
    assert drain_all(net, conn)[0].index == 2
    advance(net, clocks, 20)
    end = goodbye(drain_all(net, conn))
    assert (end.reason, end.code) == ("logged_out", "qr_limit")
    assert net.number_state(NUMBER).pairing is False


def test_pairing_sends_credentials_forces_a_restart_and_resume_connects_without_qr(net: Network) -> None:
    conn = net.connect(Hello(number=NUMBER))
    drain_all(net, conn)
    state = net.pair(NUMBER)
    assert state.paired
    frames = drain_all(net, conn)
    assert isinstance(frames[0], Paired) and frames[0].credentials
    end = goodbye(frames)
    assert (end.reason, end.code) == ("restart_required", "515")
    assert net.drain(conn).frames == []

    resumed = net.connect(Hello(number=NUMBER, credentials=frames[0].credentials))
    first = drain_all(net, resumed)
    assert [type(f) for f in first] == [Connected]
    assert net.number_state(NUMBER).connected


def test_pair_without_a_pairing_connection_is_refused(net: Network) -> None:
    with pytest.raises(SimError) as exc:
        net.pair(NUMBER)
    assert exc.value.code == "not_pairing" and exc.value.status == 409


def test_pair_code_must_match(net: Network) -> None:
    conn = net.connect(Hello(number=NUMBER, pair_code=True))
    shown = drain_all(net, conn)
    assert isinstance(shown[0], PairCode) and len(shown[0].code) == 8
    with pytest.raises(SimError) as exc:
        net.pair(NUMBER, PairRequest(code="WRONG123"))
    assert exc.value.code == "bad_pair_code"
    code = shown[0].code
    net.pair(NUMBER, PairRequest(code=f"{code[:4].lower()}-{code[4:]}"))
    assert isinstance(drain_all(net, conn)[0], Paired)


def test_a_qr_connection_can_switch_to_a_pair_code_which_expires(clocks: Clocks) -> None:
    net = make_network(clocks, pair_code_s=30)
    conn = net.connect(Hello(number=NUMBER))
    drain_all(net, conn)
    net.receive(conn, RequestPairCode())
    assert isinstance(drain_all(net, conn)[0], PairCode)
    advance(net, clocks, 61)  # the QR timer no longer matters
    end = goodbye(drain_all(net, conn))
    assert (end.reason, end.code) == ("logged_out", "pair_code_expired")


def test_auto_pair_pairs_at_the_first_qr(clocks: Clocks) -> None:
    net = make_network(clocks, auto_pair=True)
    conn = net.connect(Hello(number=NUMBER))
    frames = drain_all(net, conn)
    assert [type(f) for f in frames] == [Qr, Paired, Disconnect]


def test_credentials_survive_a_restarted_simulator_but_not_a_logout(clocks: Clocks, net: Network) -> None:
    _, credentials = pair_and_connect(net)
    restarted = make_network(clocks)
    assert isinstance(drain_all(restarted, restarted.connect(Hello(number=NUMBER, credentials=credentials)))[0],
                      Connected)  # fmt: skip

    net.fault(NUMBER, FaultRequest(kind="logged_out"))
    again = net.connect(Hello(number=NUMBER, credentials=credentials))
    assert goodbye(drain_all(net, again)).reason == "logged_out"
    _, fresh = pair_and_connect(net)  # pairing again works after a logout
    assert fresh != credentials


@pytest.mark.parametrize("credentials", [b"garbage", b"simcred1.e30=.00", None])
def test_bad_or_foreign_credentials_are_logged_out(net: Network, credentials: bytes | None) -> None:
    _, other = pair_and_connect(net, "+5511900000099")
    conn = net.connect(Hello(number=NUMBER, credentials=credentials or other))
    end = goodbye(drain_all(net, conn))
    assert (end.reason, end.code) == ("logged_out", "401")


def test_a_second_live_connection_replaces_the_first(net: Network) -> None:
    first, credentials = pair_and_connect(net)
    second = net.connect(Hello(number=NUMBER, credentials=credentials))
    end = goodbye(drain_all(net, first))
    assert (end.reason, end.code) == ("replaced", "440")
    assert isinstance(drain_all(net, second)[0], Connected)
    assert net.number_state(NUMBER).connected


# -- inbound ----------------------------------------------------------------------------------------------------


def test_inbound_messages_are_delivered_then_forgotten_once_acked(net: Network) -> None:
    conn, credentials = pair_and_connect(net)
    sent = net.phone_send(PHONE, PhoneMessage(to=NUMBER, text="oi", name="Ana", count=3))
    delivered = events_of(drain_all(net, conn))
    assert [e.id for e in delivered] == sent.ids
    first = delivered[0]
    assert isinstance(first, InMsg)
    assert (first.chat, first.sender, first.name, first.text) == (PHONE_JID, PHONE_JID, "Ana", "oi")
    assert first.ts == 1_800_000_000_000
    assert first.sender_lid is not None and first.sender_lid.endswith("@lid")
    net.receive(conn, Ack(ids=sent.ids))
    assert net.number_state(NUMBER).pending == 0
    net.drop(conn)
    again = net.connect(Hello(number=NUMBER, credentials=credentials))
    assert events_of(drain_all(net, again)) == []


def test_unacked_and_offline_messages_arrive_as_one_burst_in_original_order(net: Network) -> None:
    conn, credentials = pair_and_connect(net)
    early = net.phone_send(PHONE, PhoneMessage(to=NUMBER, text="1", count=2)).ids
    delivered = events_of(drain_all(net, conn))
    net.receive(conn, Ack(ids=[delivered[0].id]))  # only the first one is stored
    net.drop(conn)
    offline = net.phone_send("+5511977776666", PhoneMessage(to=NUMBER, text="2", count=3)).ids
    assert net.number_state(NUMBER).pending == 4

    again = net.connect(Hello(number=NUMBER, credentials=credentials))
    frames = drain_all(net, again)
    assert isinstance(frames[0], Connected) and frames[0].backlog == 4
    assert [e.id for e in events_of(frames)] == [early[1], *offline]


def test_messages_queue_for_a_number_that_never_connected(net: Network) -> None:
    ids = net.phone_send(PHONE, PhoneMessage(to=NUMBER, text="anyone?")).ids
    pairing = net.connect(Hello(number=NUMBER))
    net.pair(NUMBER)
    credentials = next(f.credentials for f in drain_all(net, pairing) if isinstance(f, Paired))
    frames = drain_all(net, net.connect(Hello(number=NUMBER, credentials=credentials)))
    assert isinstance(frames[0], Connected) and frames[0].backlog == 1
    assert [e.id for e in events_of(frames)] == ids


def test_window_bounds_events_in_flight_and_batches_respect_batch_max(clocks: Clocks) -> None:
    net = make_network(clocks, window=5, batch_max=2)
    conn, _ = pair_and_connect(net)
    ids = net.phone_send(PHONE, PhoneMessage(to=NUMBER, text="x", count=8)).ids
    frames = drain_all(net, conn)
    batches = [f.events for f in frames if isinstance(f, Events)]
    assert [len(b) for b in batches] == [2, 2, 1]
    assert net.number_state(NUMBER).inflight == 5
    net.receive(conn, Ack(ids=ids[:3]))
    assert [e.id for e in events_of(drain_all(net, conn))] == ids[5:]


def test_duplicate_rate_delivers_events_twice(clocks: Clocks) -> None:
    net = make_network(clocks, inbound_duplicate=1.0)
    conn, _ = pair_and_connect(net)
    ids = net.phone_send(PHONE, PhoneMessage(to=NUMBER, text="x", count=3)).ids
    assert [e.id for e in events_of(drain_all(net, conn))] == [i for i in ids for _ in (1, 2)]


def test_groups_media_reactions_edits_revokes_and_from_me(net: Network) -> None:
    conn, _ = pair_and_connect(net)
    group = "120363000000000001@g.us"
    net.phone_send(PHONE, PhoneMessage(to=NUMBER, text="in the group", group=group))
    photo = net.phone_send(PHONE, PhoneMessage(to=NUMBER, kind="image", text="caption",
                                               media=MediaSpec(mime="image/jpeg", size=10, filename="a.jpg")))  # fmt: skip
    target = photo.ids[0]
    net.phone_send(PHONE, PhoneMessage(to=NUMBER, kind="reaction", text="👍", reply_to=target))
    net.phone_send(PHONE, PhoneMessage(to=NUMBER, kind="edit", text="new caption", reply_to=target))
    net.phone_send(PHONE, PhoneMessage(to=NUMBER, kind="revoke", reply_to=target))
    net.phone_send(PHONE, PhoneMessage(to=NUMBER, text="typed on the business phone", from_me=True))
    got = events_of(drain_all(net, conn))
    assert all(isinstance(e, InMsg) for e in got)
    in_group, image, reaction, edit, revoke, mine = got
    assert isinstance(in_group, InMsg) and (in_group.chat, in_group.sender) == (group, PHONE_JID)
    assert isinstance(image, InMsg) and image.media is not None
    assert (image.media.mime, image.media.size, image.media.filename) == ("image/jpeg", 10, "a.jpg")
    assert image.media.url == f"/media/{photo.media[0]}"
    item, data = net.media(photo.media[0])
    assert len(data) == 10 and item.sha256 is not None
    assert [(e.kind, e.reply_to) for e in (reaction, edit, revoke) if isinstance(e, InMsg)] == [
        ("reaction", target), ("edit", target), ("revoke", target)]  # fmt: skip
    assert isinstance(mine, InMsg) and mine.from_me and mine.chat == PHONE_JID and mine.sender == "5511900000000@c.us"


def test_lid_addressing_names_the_phone_by_its_lid_with_the_phone_jid_alongside(net: Network) -> None:
    conn, _ = pair_and_connect(net)
    group = "120363000000000001@g.us"
    net.phone_send(PHONE, PhoneMessage(to=NUMBER, text="by number"))
    net.phone_send(PHONE, PhoneMessage(to=NUMBER, text="by lid", addressing="lid"))
    net.phone_send(PHONE, PhoneMessage(to=NUMBER, text="lid group", group=group, addressing="lid"))
    net.phone_send(PHONE, PhoneMessage(to=NUMBER, text="mine", from_me=True, addressing="lid"))
    by_pn, by_lid, in_group, mine = events_of(drain_all(net, conn))
    assert isinstance(by_pn, InMsg) and isinstance(by_lid, InMsg) and isinstance(in_group, InMsg)
    lid = by_pn.sender_lid
    assert lid is not None and lid.endswith("@lid") and lid.partition("@")[0].isdigit()
    assert (by_pn.chat, by_pn.sender, by_pn.sender_pn) == (PHONE_JID, PHONE_JID, None)
    assert (by_lid.chat, by_lid.sender, by_lid.sender_pn, by_lid.sender_lid) == (lid, lid, PHONE_JID, None)
    assert (in_group.chat, in_group.sender, in_group.sender_pn) == (group, lid, PHONE_JID)  # groups keep their id
    assert isinstance(mine, InMsg) and mine.from_me
    assert (mine.chat, mine.sender, mine.sender_pn, mine.sender_lid) == (lid, "5511900000000@c.us", None, None)


def test_a_reply_to_a_lid_chat_reaches_the_phone_and_its_receipts_name_the_lid(clocks: Clocks) -> None:
    net = make_network(clocks, ack_sent_s=0, ack_delivered_s=0, ack_read_s=0, recipient_rate=1, recipient_burst=1)
    conn, _ = pair_and_connect(net)
    net.phone_send(PHONE, PhoneMessage(to=NUMBER, text="oi", addressing="lid"))
    (inbound,) = events_of(drain_all(net, conn))
    assert isinstance(inbound, InMsg)
    ok = send(net, conn, to=inbound.chat, text="olá")
    assert isinstance(ok, SendOk)
    (received,) = net.inbox(PHONE).messages
    assert (received.id, received.chat, received.sender, received.text) == (ok.id, "5511900000000@c.us", NUMBER,
                                                                            "olá")  # fmt: skip
    net.tick()
    got = [e for e in events_of(drain_all(net, conn)) if isinstance(e, InReceipt)]
    assert [(e.status, e.chat) for e in got] == [("SENT", inbound.chat), ("DELIVERED", inbound.chat),
                                                 ("READ", inbound.chat)]  # fmt: skip
    # the same person whichever id the business uses: one per-recipient rate bucket
    limited = send(net, conn, to=PHONE_JID, ref=2)
    assert isinstance(limited, Error) and limited.code == "pair_rate_limited"
    unknown = send(net, conn, to="123456789@lid", ref=3)
    assert isinstance(unknown, Error) and unknown.code == "invalid_recipient"


def test_bulk_can_address_phones_by_lid(net: Network) -> None:
    conn, _ = pair_and_connect(net)
    net.bulk(BulkRequest(to=NUMBER, phones=2, messages=1, first_phone="+5521700000000", addressing="lid"))
    net.tick()
    got = [e for e in events_of(drain_all(net, conn)) if isinstance(e, InMsg)]
    assert [e.sender_pn for e in got] == ["5521700000000@c.us", "5521700000001@c.us"]
    assert all(e.chat == e.sender and e.sender.endswith("@lid") and e.sender_lid is None for e in got)


@pytest.mark.parametrize(
    ("message", "why"),
    [(PhoneMessage(to=NUMBER), "needs text"), (PhoneMessage(to=NUMBER, kind="image"), "needs media"),
     (PhoneMessage(to=NUMBER, kind="reaction", text="x"), "needs reply_to"),
     (PhoneMessage(to=NUMBER, text="x", count=0), "count"), (PhoneMessage(to="12", text="x"), "business number"),
     (PhoneMessage(to=NUMBER, text="x", group="nope"), "group id")],
)  # fmt: skip
def test_bad_phone_messages_are_refused(net: Network, message: PhoneMessage, why: str) -> None:
    with pytest.raises(SimError) as exc:
        net.phone_send(PHONE, message)
    assert exc.value.code == "invalid_input" and why in exc.value.message


def test_media_download_failures_can_be_injected(net: Network) -> None:
    media_id = net.phone_send(PHONE, PhoneMessage(to=NUMBER, kind="document", media=MediaSpec(
        mime="application/pdf", data=b"%PDF", fail=1))).media[0]  # fmt: skip
    with pytest.raises(SimError) as exc:
        net.media(media_id)
    assert exc.value.code == "media_unavailable"
    assert net.media(media_id)[1] == b"%PDF"
    net.fail_media(media_id, MediaFailRequest(times=-1))
    for _ in range(3):
        with pytest.raises(SimError):
            net.media(media_id)
    with pytest.raises(SimError) as missing:
        net.media("nope")
    assert missing.value.code == "not_found"


# -- outbound -----------------------------------------------------------------------------------------------


def send(net: Network, conn: Connection, to: str = PHONE_JID, **fields: Any) -> SendOk | Error:
    ref = fields.pop("ref", 1)
    net.receive(conn, Send(ref=ref, to=to, text=fields.pop("text", "hello"), **fields))
    answer = [f for f in net.drain(conn).frames if isinstance(f, SendOk | Error)]
    assert len(answer) == 1
    return answer[0]


def receipts(net: Network, conn: Connection) -> list[tuple[str, str | None]]:
    return [(e.status, e.participant) for e in events_of(drain_all(net, conn)) if isinstance(e, InReceipt)]


def test_send_returns_an_id_fills_the_inbox_and_acks_in_order(clocks: Clocks) -> None:
    net = make_network(clocks, ack_sent_s=0.1, ack_delivered_s=0.5, ack_read_s=2.0)
    conn, _ = pair_and_connect(net)
    ok = send(net, conn, to="+55 11 98888-7777")
    assert isinstance(ok, SendOk) and ok.id.startswith("3EB0")
    inbox = net.inbox(PHONE)
    assert [(m.id, m.sender, m.chat, m.text, m.status) for m in inbox.messages] == [
        (ok.id, NUMBER, "5511900000000@c.us", "hello", "PENDING")]  # fmt: skip

    advance(net, clocks, 0.1)
    assert receipts(net, conn) == [("SENT", None)]
    advance(net, clocks, 0.4)
    assert receipts(net, conn) == [("DELIVERED", None)]
    assert net.inbox(PHONE).messages[0].status == "DELIVERED"
    advance(net, clocks, 1.5)
    assert receipts(net, conn) == [("READ", None)]
    assert net.inbox(PHONE).messages[0].status == "READ"


def test_receipt_ids_are_stable_and_acked_like_messages(clocks: Clocks) -> None:
    net = make_network(clocks, ack_sent_s=0, ack_delivered_s=0, ack_read_s=0)
    conn, credentials = pair_and_connect(net)
    ok = send(net, conn)
    assert isinstance(ok, SendOk)
    net.tick()
    got = events_of(drain_all(net, conn))
    assert [e.id for e in got] == [f"{ok.id}/SENT", f"{ok.id}/DELIVERED", f"{ok.id}/READ"]
    net.receive(conn, Ack(ids=[got[0].id]))
    net.drop(conn)
    again = net.connect(Hello(number=NUMBER, credentials=credentials))
    assert [e.id for e in events_of(drain_all(net, again))] == [f"{ok.id}/DELIVERED", f"{ok.id}/READ"]


@pytest.mark.parametrize(
    ("config", "expected"),
    [({"ack_skip_delivered": 1.0}, ["SENT", "READ"]), ({"ack_skip_read": 1.0}, ["SENT", "DELIVERED"]),
     ({"ack_reorder": 1.0}, ["SENT", "READ", "DELIVERED"]),
     ({"ack_duplicate": 1.0}, ["SENT", "SENT", "DELIVERED", "DELIVERED", "READ", "READ"])],
)  # fmt: skip
def test_receipts_can_be_skipped_reordered_and_duplicated(clocks: Clocks, config: dict[str, Any],
                                                          expected: list[str]) -> None:  # fmt: skip
    net = make_network(clocks, ack_sent_s=0.1, ack_delivered_s=0.2, ack_read_s=0.3, **config)
    conn, _ = pair_and_connect(net)
    send(net, conn)
    statuses: list[str] = []
    for _ in range(5):
        advance(net, clocks, 0.1)
        statuses += [s for s, _ in receipts(net, conn)]
    assert statuses == expected
    assert net.inbox(PHONE).messages[0].status == ("DELIVERED" if "READ" not in expected else "READ")


def test_group_sends_ack_once_per_participant(clocks: Clocks) -> None:
    net = make_network(clocks, ack_sent_s=0, ack_delivered_s=0.1, ack_read_s=0.2)
    conn, _ = pair_and_connect(net)
    group = net.create_group(GroupRequest(participants=[PHONE, "+5511977776666"], subject="Team"))
    ok = send(net, conn, to=group.id)
    assert isinstance(ok, SendOk)
    advance(net, clocks, 0.3)
    assert receipts(net, conn) == [("SENT", None), ("DELIVERED", PHONE_JID), ("DELIVERED", "5511977776666@c.us"),
                                   ("READ", PHONE_JID), ("READ", "5511977776666@c.us")]  # fmt: skip
    for phone in (PHONE, "+5511977776666"):
        (message,) = net.inbox(phone).messages
        assert (message.id, message.chat, message.status) == (ok.id, group.id, "READ")
    unknown = send(net, conn, to="999@g.us", ref=2)
    assert isinstance(unknown, Error) and unknown.code == "unknown_chat"


def test_a_repeated_idempotency_key_returns_the_same_id_and_sends_nothing(net: Network) -> None:
    conn, _ = pair_and_connect(net)
    first = send(net, conn, idempotency_key="k1")
    again = send(net, conn, idempotency_key="k1", ref=2)
    other = send(net, conn, idempotency_key="k2", ref=3)
    assert isinstance(first, SendOk) and isinstance(again, SendOk) and isinstance(other, SendOk)
    assert again.id == first.id and again.duplicate and again.ref == 2
    assert other.id != first.id
    assert [m.id for m in net.inbox(PHONE).messages] == [first.id, other.id]
    assert net.number_state(NUMBER).sent == 2


def test_token_bucket_rate_limit_answers_retry_after(clocks: Clocks) -> None:
    net = make_network(clocks, send_rate=2, send_burst=2)
    conn, _ = pair_and_connect(net)
    assert isinstance(send(net, conn), SendOk)
    assert isinstance(send(net, conn), SendOk)
    limited = send(net, conn)
    assert isinstance(limited, Error) and limited.code == "rate_limited"
    assert limited.retry_after == pytest.approx(0.5)
    clocks.advance(0.5)
    assert isinstance(send(net, conn), SendOk)


def test_per_recipient_rate_limit(clocks: Clocks) -> None:
    net = make_network(clocks, recipient_rate=1, recipient_burst=1)
    conn, _ = pair_and_connect(net)
    assert isinstance(send(net, conn), SendOk)
    limited = send(net, conn)
    assert isinstance(limited, Error) and limited.code == "pair_rate_limited"
    assert isinstance(send(net, conn, to="+5511977776666"), SendOk)


def test_an_uploaded_media_item_is_delivered_with_its_bytes(net: Network) -> None:
    conn, _ = pair_and_connect(net)
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    item = net.upload_media(data, "image/png", "foto.png")
    assert (item.mime, item.size, item.filename, item.url) == ("image/png", len(data), "foto.png", f"/media/{item.id}")
    assert item.sha256 == hashlib.sha256(data).hexdigest()
    ok = send(net, conn, kind="image", text="olha", media=OutMedia(mime="image/png", ref=item.id, filename="a.png"))
    assert isinstance(ok, SendOk)
    (received,) = net.inbox(PHONE).messages
    assert (received.kind, received.text) == ("image", "olha")
    assert received.media == InboxMedia(mime="image/png", ref=item.id, filename="a.png", size=len(data), id=item.id,
                                        sha256=item.sha256, url=item.url)  # fmt: skip
    assert net.media(item.id) == (item, data)


def test_a_media_ref_that_was_not_uploaded_passes_through(net: Network) -> None:
    conn, _ = pair_and_connect(net)
    inbound = net.phone_send(PHONE, PhoneMessage(to=NUMBER, kind="image", media=MediaSpec(mime="image/jpeg")))
    for ref in ("https://cdn.example/p.jpg", inbound.media[0]):  # a phone's item is not the business's to send
        out = OutMedia(mime="image/jpeg", ref=ref, filename="p.jpg", size=7)
        assert isinstance(send(net, conn, kind="image", media=out), SendOk)
    assert [m.media for m in net.inbox(PHONE).messages] == [
        InboxMedia(mime="image/jpeg", ref=ref, filename="p.jpg", size=7)
        for ref in ("https://cdn.example/p.jpg", inbound.media[0])]  # fmt: skip


@pytest.mark.parametrize(
    ("size", "mime", "filename", "code"),
    [(0, "image/png", None, "invalid_input"), (MEDIA_MAX_BYTES + 1, "image/png", None, "too_large"),
     (1, "png", None, "invalid_input"), (1, "text/plain", "a\nb.txt", "invalid_input")],
)  # fmt: skip
def test_bad_uploads_are_refused(net: Network, size: int, mime: str, filename: str | None, code: str) -> None:
    with pytest.raises(SimError) as exc:
        net.upload_media(bytes(size), mime, filename)
    assert exc.value.code == code
    assert exc.value.status == (413 if code == "too_large" else 400)


def test_uploads_take_up_to_64_mib_and_mime_parameters(net: Network) -> None:
    item = net.upload_media(bytes(MEDIA_MAX_BYTES), "audio/ogg; codecs=opus")
    assert (item.size, item.mime, item.filename) == (MEDIA_MAX_BYTES, "audio/ogg; codecs=opus", None)


def test_sends_need_a_live_connection_and_valid_content(net: Network) -> None:
    pairing = net.connect(Hello(number=NUMBER))
    drain_all(net, pairing)
    refused = send(net, pairing)
    assert isinstance(refused, Error) and refused.code == "not_connected"
    conn, _ = pair_and_connect(net, "+5511900000001")
    bad = send(net, conn, to="not a number")
    assert isinstance(bad, Error) and bad.code == "invalid_recipient"
    empty = send(net, conn, text=None)
    assert isinstance(empty, Error) and empty.code == "invalid_input"


# -- faults -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "reason", "code", "sticky"),
    [("server_error", "server_error", "503", False), ("logged_out", "logged_out", "401", True),
     ("temp_banned", "temp_banned", "402", True), ("banned", "banned", "403", True),
     ("outdated", "outdated", "405", True), ("replaced", "replaced", "440", False)],
)  # fmt: skip
def test_faults_end_the_connection_with_their_reason(clocks: Clocks, net: Network, kind: str, reason: str, code: str,
                                                     sticky: bool) -> None:  # fmt: skip
    conn, credentials = pair_and_connect(net)
    net.fault(NUMBER, FaultRequest(kind=kind, seconds=30 if kind == "temp_banned" else None))  # type: ignore[arg-type]
    end = goodbye(drain_all(net, conn))
    assert (end.reason, end.code) == (reason, code)
    if kind == "temp_banned":
        assert end.until == int(clocks.wall * 1000) + 30_000
    again = net.connect(Hello(number=NUMBER, credentials=credentials))
    first = drain_all(net, again)[0]
    if sticky:
        assert isinstance(first, Disconnect) and first.reason == reason
    else:
        assert isinstance(first, Connected)


def test_network_loss_closes_without_a_goodbye(net: Network) -> None:
    conn, _ = pair_and_connect(net)
    net.fault(NUMBER, FaultRequest(kind="network"))
    drained = net.drain(conn)
    assert drained.frames == [] and drained.close and drained.abort


def test_temp_ban_expires_and_clear_lifts_bans(clocks: Clocks, net: Network) -> None:
    _, credentials = pair_and_connect(net)
    net.fault(NUMBER, FaultRequest(kind="temp_banned", seconds=10))
    clocks.advance(10.001)
    assert isinstance(drain_all(net, net.connect(Hello(number=NUMBER, credentials=credentials)))[0], Connected)
    net.fault(NUMBER, FaultRequest(kind="banned"))
    net.fault(NUMBER, FaultRequest(kind="clear"))
    assert isinstance(drain_all(net, net.connect(Hello(number=NUMBER, credentials=credentials)))[0], Connected)


def test_refuse_turns_connections_away_for_a_while(clocks: Clocks, net: Network) -> None:
    _, credentials = pair_and_connect(net)
    state = net.fault(NUMBER, FaultRequest(kind="refuse", seconds=5))
    assert state.refusing and state.connected  # the live connection is not touched
    refused = goodbye(drain_all(net, net.connect(Hello(number=NUMBER, credentials=credentials))))
    assert (refused.reason, refused.code) == ("server_error", "503")
    clocks.advance(5)
    assert isinstance(drain_all(net, net.connect(Hello(number=NUMBER, credentials=credentials)))[0], Connected)


def test_logout_from_the_client_invalidates_its_credentials(net: Network) -> None:
    conn, credentials = pair_and_connect(net)
    net.receive(conn, Logout())
    assert goodbye(drain_all(net, conn)).reason == "logged_out"
    assert not net.number_state(NUMBER).paired
    assert goodbye(drain_all(net, net.connect(Hello(number=NUMBER, credentials=credentials)))).reason == "logged_out"


# -- bulk, config, reset ------------------------------------------------------------------------------------------


def test_bulk_generates_every_message_once_in_per_phone_order(clocks: Clocks) -> None:
    net = make_network(clocks, bulk_chunk=7, window=1000, batch_max=1000)
    conn, _ = pair_and_connect(net)
    job = net.bulk(BulkRequest(to=NUMBER, phones=4, messages=5, first_phone="+5521700000000"))
    assert job.total == 20 and not job.done
    for _ in range(10):
        net.tick()
    assert net.bulk_job(job.id).done
    got = [e for e in events_of(drain_all(net, conn)) if isinstance(e, InMsg)]
    assert len({e.id for e in got}) == 20 == len(got)
    by_phone: dict[str, list[str]] = {}
    for event in got:
        by_phone.setdefault(event.sender, []).append(event.text or "")
    assert sorted(by_phone) == [f"552170000000{i}@c.us" for i in range(4)]
    assert all(texts == [f"bulk {n}/5" for n in range(1, 6)] for texts in by_phone.values())


def test_an_unpaced_bulk_job_only_tops_the_backlog_up(clocks: Clocks) -> None:
    net = make_network(clocks, window=2, bulk_chunk=1)  # backlog cap: max(4 * 2, 1) = 8
    first, credentials = pair_and_connect(net)
    net.drop(first)
    job = net.bulk(BulkRequest(to=NUMBER, phones=2, messages=10))
    for _ in range(20):
        net.tick()
    assert net.bulk_job(job.id).produced == 8 and net.number_state(NUMBER).pending == 8
    conn = net.connect(Hello(number=NUMBER, credentials=credentials))
    delivered = [e.id for e in events_of(drain_all(net, conn))]
    for _ in range(50):  # bounded: 20 events, 2 per window, 1 generated per tick
        net.receive(conn, Ack(ids=delivered))
        net.tick()
        delivered = [e.id for e in events_of(drain_all(net, conn))]
        if not delivered:
            break
    assert net.bulk_job(job.id).done and net.number_state(NUMBER).acked == 20


def test_bulk_with_a_rate_is_paced_by_the_clock(clocks: Clocks, net: Network) -> None:
    job = net.bulk(BulkRequest(to=NUMBER, phones=2, messages=50, rate=10))
    net.tick()
    assert net.bulk_job(job.id).produced == 1
    advance(net, clocks, 1.0)
    assert net.bulk_job(job.id).produced == 11
    due = net.next_due()
    assert due is not None and due == pytest.approx(clocks.mono + 0.1)
    advance(net, clocks, 100)
    assert net.bulk_job(job.id).done and net.number_state(NUMBER).pending == 100


@pytest.mark.parametrize(
    "request_",
    [BulkRequest(to=NUMBER, phones=0, messages=1), BulkRequest(to=NUMBER, phones=1, messages=1, rate=0),
     BulkRequest(to=NUMBER, phones=10, messages=1, first_phone="+999999999999999")],
)  # fmt: skip
def test_bad_bulk_requests_are_refused(net: Network, request_: BulkRequest) -> None:
    with pytest.raises(SimError) as exc:
        net.bulk(request_)
    assert exc.value.code == "invalid_input"


def test_config_changes_are_validated_as_a_whole(net: Network) -> None:
    assert net.configure({"ack_read_s": 0.5}).ack_read_s == 0.5
    for bad in ({"ack_reorder": 2}, {"window": 0}, {"nope": 1}, {"qr_limit": "x"}):
        with pytest.raises(SimError) as exc:
            net.configure(bad)
        assert exc.value.code == "invalid_input"
    assert net.config.ack_read_s == 0.5 and net.config.window == 2000


def test_reset_forgets_everything_and_says_goodbye(clocks: Clocks) -> None:
    net = make_network(clocks, ack_read_s=9)
    conn, _ = pair_and_connect(net)
    net.phone_send(PHONE, PhoneMessage(to=NUMBER, text="x"))
    net.configure({"ack_read_s": 1})
    net.reset()
    assert goodbye(drain_all(net, conn)).reason == "server_error"
    assert net.numbers() == [] and net.config.ack_read_s == 9
    assert net.inbox(PHONE).messages == []


def test_frames_round_trip_through_json() -> None:
    frame = Events(events=[InMsg(id="1", chat=PHONE_JID, sender=PHONE_JID, text="oi", ts=5),
                           InMsg(id="3", chat="42@lid", sender="42@lid", sender_pn=PHONE_JID, text="oi", ts=5),
                           InReceipt(id="2/READ", msg_id="2", chat=PHONE_JID, status="READ", ts=6)])  # fmt: skip
    encoded = msgspec.json.encode(frame)
    assert b'"op":"events"' in encoded and b'"t":"msg"' in encoded and b'"from_me"' not in encoded
    assert msgspec.json.decode(encoded, type=Events) == frame


def test_inbox_media_still_decodes_as_the_old_media_schema() -> None:
    media = InboxMedia(mime="image/png", ref="m1", size=3, id="m1", sha256="ab", url="/media/m1")
    assert msgspec.json.decode(msgspec.json.encode(media), type=OutMedia) == OutMedia(mime="image/png", ref="m1",
                                                                                       size=3)  # fmt: skip


@pytest.mark.parametrize(
    ("value", "digits"),
    [("+55 11 98888-7777", "5511988887777"), ("5511988887777@c.us", "5511988887777"),
     ("5511988887777:3@s.whatsapp.net", "5511988887777"), ("(11) 98888-7777", "11988887777")],
)  # fmt: skip
def test_digits_of_accepts_the_usual_forms(value: str, digits: str) -> None:
    assert digits_of(value) == digits


@pytest.mark.parametrize("value", ["12345", "abc", "+55 11 9888x7777", "1234567890123456"])
def test_digits_of_refuses_what_is_not_a_number(value: str) -> None:
    with pytest.raises(SimError):
        digits_of(value)
