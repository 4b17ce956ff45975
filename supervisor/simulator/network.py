"""The simulated WhatsApp network: business numbers, phones, groups, pairing, delivery queues, acks and faults.

Pure and synchronous: no sockets, no tasks, no sleeping. Time comes from an injected monotonic ``clock`` (timers)
and ``wall`` clock (timestamps on the wire), randomness from an injected :class:`random.Random`, so every
behaviour can be replayed in a unit test. The server (``supervisor.simulator.server``) owns the I/O: it turns
socket frames into calls on :class:`Network`, calls :meth:`Network.tick` when :meth:`Network.next_due` says a
timer is due, and writes out what :meth:`Network.drain` returns for each connection (``notify`` tells it when).

What the model promises, like the real network:

- At-least-once delivery to business numbers. Every event (inbound message or receipt) stays in the number's
  backlog until the client acks its id. Unacked events are redelivered, in their original order, when the number
  connects again (an offline backlog arrives as one burst); ``inbound_duplicate`` / ``ack_duplicate`` make some
  events arrive twice. Only order within a chat is promised (today the whole backlog is FIFO, clients must not
  rely on that). At most ``window`` events are in flight (sent, unacked) per connection, which bounds the
  client's memory.
- One live connection per number: a newer live connection kicks the older one with reason ``replaced``.
- Pairing: rotating QR codes (``qr_first_s``, then ``qr_next_s`` each, ``qr_limit`` codes, then ``logged_out``) or
  one 8-character pair code; a successful pairing sends credentials and forces one ``restart_required``
  disconnect. Credentials are HMAC-signed, so a restarted simulator still accepts credentials it issued before
  (unless the number was logged out since, in this process).
- Sends get a provider id at once, land in the recipients' inboxes, and produce receipts SENT, then DELIVERED and
  READ per recipient (per participant in groups), with configurable latency, skips, reordering and duplicates.
- Phones are addressed by phone jid (``<digits>@c.us``) or, like WhatsApp increasingly does, by LID (``<id>@lid``,
  a privacy id derived per phone) with the phone jid as an alternate id. A business may reply to either form.
- Media: phones send items (real bytes or made-up ones); businesses upload items and send them by id.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import itertools
import random
import re
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from typing import Any, Literal, NamedTuple, get_args

import msgspec

from supervisor.wire import MEDIA_KINDS, MessageKind, status_rank

__all__ = [
    "DEFAULT_CREDENTIALS_KEY",
    "FAULT_KINDS",
    "MEDIA_MAX_BYTES",
    "Ack",
    "Addressing",
    "BulkJob",
    "BulkRequest",
    "ClientFrame",
    "Connected",
    "Connection",
    "Disconnect",
    "Drained",
    "Error",
    "Events",
    "FaultRequest",
    "GroupRequest",
    "GroupView",
    "Hello",
    "InMsg",
    "InReceipt",
    "InboxMedia",
    "InboxMessage",
    "InboxPage",
    "Logout",
    "MediaFailRequest",
    "MediaItem",
    "MediaSpec",
    "Network",
    "NumberState",
    "OutMedia",
    "PairCode",
    "PairRequest",
    "Paired",
    "PhoneMessage",
    "Qr",
    "Read",
    "RequestPairCode",
    "Send",
    "SendOk",
    "SentIds",
    "ServerFrame",
    "SimConfig",
    "SimError",
    "WireEvent",
    "digits_of",
]

#: Signs credentials. A fixed default on purpose: a restarted dev simulator keeps accepting stored credentials.
DEFAULT_CREDENTIALS_KEY = b"atende-simulator-credentials-v1"

FaultKind = Literal[
    "network", "server_error", "logged_out", "temp_banned", "banned", "outdated", "replaced", "refuse",
    "protocol_error", "clear",
]  # fmt: skip
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)

#: How a phone is named in a direct chat: its phone jid (``<digits>@c.us``) or its LID (``<id>@lid``).
Addressing = Literal["pn", "lid"]

#: The largest media item the network keeps (phone-sent or uploaded), like WhatsApp's limit for documents.
MEDIA_MAX_BYTES = 64 * 1024 * 1024

_MEDIA_KINDS = frozenset(MEDIA_KINDS)
_TARGET_KINDS = frozenset({"reaction", "edit", "revoke"})  # these point at an earlier message (``reply_to``)
_PAIR_CODE_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTVWXYZ"  # no 0/O, I/U: read aloud without mistakes


class SimError(Exception):
    """A request the network refuses; ``code`` is stable and shows up in HTTP and WebSocket errors alike."""

    def __init__(self, code: str, message: str, *, status: int = 400, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.retry_after = retry_after


# -- configuration ----------------------------------------------------------------------------------------


class SimConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Every latency, rate and limit of the network; changed at run time through ``PATCH /control/config``."""

    auto_pair: bool = False  # pair every number as soon as it shows its first QR (atende dev)
    qr_first_s: float = 60.0
    qr_next_s: float = 20.0
    qr_limit: int = 5  # QR codes shown before the attempt ends with logged_out
    pair_code_s: float = 180.0
    ack_sent_s: float = 0.05
    ack_delivered_s: float = 0.3
    ack_read_s: float = 2.0
    ack_jitter_s: float = 0.0  # uniform extra latency in [0, jitter) per receipt
    ack_skip_delivered: float = 0.0  # probability that a DELIVERED receipt never comes (Meta does this)
    ack_skip_read: float = 0.0
    ack_reorder: float = 0.0  # probability that READ comes before DELIVERED for a recipient
    ack_duplicate: float = 0.0  # probability that a receipt is delivered twice
    inbound_duplicate: float = 0.0  # probability that an inbound message is delivered twice
    send_rate: float = 80.0  # sends per second per number (token bucket); 0 = unlimited
    send_burst: int = 80
    recipient_rate: float = 0.0  # sends per second per (number, recipient); 0 = unlimited
    recipient_burst: int = 5
    window: int = 2000  # events in flight (sent, unacked) per connection
    batch_max: int = 500  # events per WebSocket frame
    inbox_limit: int = 10_000  # messages kept per phone inbox
    bulk_chunk: int = 5000  # messages a bulk job generates per tick at most

    def __post_init__(self) -> None:
        probabilities = (self.ack_skip_delivered, self.ack_skip_read, self.ack_reorder, self.ack_duplicate,
                         self.inbound_duplicate)  # fmt: skip
        if any(not 0.0 <= p <= 1.0 for p in probabilities):
            raise ValueError("probabilities (ack_skip_*, ack_reorder, *_duplicate) must be within [0, 1]")
        durations = (self.qr_first_s, self.qr_next_s, self.pair_code_s)
        if any(d <= 0 for d in durations):
            raise ValueError("qr_first_s, qr_next_s and pair_code_s must be > 0")
        latencies = (self.ack_sent_s, self.ack_delivered_s, self.ack_read_s, self.ack_jitter_s)
        if any(d < 0 for d in latencies) or self.send_rate < 0 or self.recipient_rate < 0:
            raise ValueError("latencies and rates must be >= 0")
        counts = (self.qr_limit, self.send_burst, self.recipient_burst, self.window, self.batch_max,
                  self.inbox_limit, self.bulk_chunk)  # fmt: skip
        if any(c < 1 for c in counts):
            raise ValueError("qr_limit, bursts, window, batch_max, inbox_limit and bulk_chunk must be >= 1")


# -- the WebSocket protocol ---------------------------------------------------------------------------------
# JSON documents; every frame has an "op" tag, every event inside an "events" frame a "t" tag.


class _Frame(msgspec.Struct, kw_only=True, omit_defaults=True, tag_field="op"):
    pass


class OutMedia(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A media item a business number sends: the id of an uploaded item (``POST /media``), or any other reference
    (URL or handle), which is passed through as it is. Never the bytes."""

    mime: str
    ref: str
    filename: str | None = None
    size: int | None = None


class InboxMedia(OutMedia):
    """A media item as the phone received it. When ``ref`` was an uploaded item, the item itself: its ``id``, the
    stored ``mime``, ``size`` and ``sha256``, and ``url`` (a path on the simulator) to download it."""

    id: str | None = None
    sha256: str | None = None
    url: str | None = None


class Hello(_Frame, tag="hello"):
    """First client frame. Without credentials the number is paired (QR, or a pair code if ``pair_code``)."""

    number: str
    credentials: bytes | None = None
    pair_code: bool = False


class Ack(_Frame, tag="ack"):
    """The client stored these events (ids of ``msg`` and ``receipt`` events); they will not be redelivered."""

    ids: list[str]


class Send(_Frame, tag="send"):
    """Send a message; answered by ``send_ok`` or ``error`` carrying the same ``ref``."""

    ref: int
    to: str
    kind: MessageKind = "text"
    text: str | None = None
    media: OutMedia | None = None
    reply_to: str | None = None
    idempotency_key: str | None = None


class Read(_Frame, tag="read"):
    chat: str
    ids: list[str]


class Logout(_Frame, tag="logout"):
    pass


class RequestPairCode(_Frame, tag="request_pair_code"):
    pass


ClientFrame = Hello | Ack | Send | Read | Logout | RequestPairCode


class MediaItem(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """A media item on the simulator, downloadable at ``url`` (a path on the simulator)."""

    id: str
    mime: str
    size: int
    url: str
    filename: str | None = None
    sha256: str | None = None


class InMsg(msgspec.Struct, kw_only=True, omit_defaults=True, frozen=True, gc=False, tag_field="t", tag="msg"):
    """An inbound message. ``chat``/``sender`` use the ``<digits>@c.us``, ``<id>@g.us`` and ``<id>@lid`` forms.

    The sender's other id rides along: ``sender_lid`` (its LID) when it is named by phone jid, ``sender_pn`` (its
    phone jid) when it is named by LID.
    """

    id: str
    chat: str
    sender: str
    sender_lid: str | None = None
    sender_pn: str | None = None
    name: str | None = None
    from_me: bool = False
    kind: MessageKind = "text"
    text: str | None = None
    media: MediaItem | None = None
    reply_to: str | None = None  # quoted message, or the target of a reaction / edit / revoke
    ts: int  # milliseconds since the epoch


class InReceipt(msgspec.Struct, kw_only=True, omit_defaults=True, frozen=True, gc=False, tag_field="t",
                tag="receipt"):  # fmt: skip
    """A receipt for a message the business sent. ``id`` is ``<msg_id>/<status>[/<participant digits>]``."""

    id: str
    msg_id: str
    chat: str
    status: Literal["SENT", "DELIVERED", "READ"]
    participant: str | None = None
    ts: int


WireEvent = InMsg | InReceipt


class Qr(_Frame, tag="qr"):
    code: str
    expires_at: int  # ms since the epoch
    index: int  # 0-based
    limit: int


class PairCode(_Frame, tag="pair_code"):
    code: str
    expires_at: int


class Paired(_Frame, tag="paired"):
    """Pairing succeeded: store these credentials; a ``restart_required`` disconnect follows."""

    credentials: bytes


class Connected(_Frame, tag="connected"):
    number: str
    backlog: int  # events waiting for this number (they follow at once)


class Events(_Frame, tag="events"):
    events: list[WireEvent]


class SendOk(_Frame, tag="send_ok"):
    ref: int
    id: str
    duplicate: bool = False  # the idempotency key was seen before: nothing was sent again


class Error(_Frame, tag="error"):
    code: str
    message: str
    ref: int | None = None
    retry_after: float | None = None


class Disconnect(_Frame, tag="disconnect"):
    """The last frame before the server closes; ``reason`` is a ``supervisor.policy.DisconnectReason`` value."""

    reason: str
    code: str
    until: int | None = None  # temp_banned: ms since the epoch
    message: str = ""


class _Garbage(_Frame, tag="garbage"):
    """Sent by the ``protocol_error`` fault: a frame no client understands."""

    junk: str = "\x00"


ServerFrame = Qr | PairCode | Paired | Connected | Events | SendOk | Error | Disconnect
_Outgoing = ServerFrame | _Garbage


# -- control API schemas --------------------------------------------------------------------------------------


class MediaSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Media a phone sends; without ``data`` the simulator makes ``size`` bytes up."""

    mime: str
    size: int | None = None
    filename: str | None = None
    data: bytes | None = None  # base64 in JSON
    fail: int = 0  # downloads that fail first (-1: all of them)


class PhoneMessage(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``POST /control/phones/{phone}/messages``: the phone sends ``count`` messages to business number ``to``."""

    to: str
    text: str | None = None
    kind: MessageKind = "text"
    name: str | None = None  # push name
    media: MediaSpec | None = None
    group: str | None = None  # "<id>@g.us": sent in this group (the phone becomes a participant)
    reply_to: str | None = None
    from_me: bool = False  # sent by the business's own phone into the chat with this phone
    count: int = 1
    addressing: Addressing = "pn"  # "lid": the phone is named by its LID (chat and sender), sender_pn its jid


class SentIds(msgspec.Struct, kw_only=True):
    ids: list[str]
    media: list[str] = []


class InboxMessage(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A message a phone received, with the best ack state reached so far."""

    seq: int
    id: str
    sender: str = msgspec.field(name="from")  # the business number
    chat: str  # as the phone sees it: the business's jid, or the group id
    kind: str
    text: str | None = None
    media: InboxMedia | None = None
    reply_to: str | None = None
    status: str = "PENDING"
    timestamp: int  # ms since the epoch


class InboxPage(msgspec.Struct, kw_only=True):
    phone: str
    messages: list[InboxMessage]
    last_seq: int  # pass as ``after`` to get only newer messages


class PairRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    code: str | None = None  # when given it must match the pair code shown to the connection


class FaultRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    kind: FaultKind
    seconds: float | None = None  # temp_banned (default 3600) and refuse (default 10)


class GroupRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    participants: list[str]
    subject: str | None = None
    id: str | None = None


class GroupView(msgspec.Struct, kw_only=True):
    id: str
    subject: str | None
    participants: list[str]


class BulkRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``phones`` phones send ``messages`` messages each to ``to``, round-robin, at ``rate`` msg/s overall.

    Without ``rate`` messages come as fast as the number takes them: the backlog is kept topped up to
    ``max(4 * window, bulk_chunk)`` events, so a huge job does not sit in memory all at once.
    """

    to: str
    phones: int
    messages: int
    rate: float | None = None
    first_phone: str = "+5521700000000"
    addressing: Addressing = "pn"  # as in PhoneMessage


class BulkJob(msgspec.Struct, kw_only=True):
    id: str
    to: str
    phones: int
    messages: int
    total: int
    produced: int
    rate: float | None
    done: bool


class MediaFailRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    times: int = -1  # downloads that fail from now on; -1 always, 0 never


class NumberState(msgspec.Struct, kw_only=True):
    number: str
    connected: bool
    paired: bool
    pairing: bool
    pending: int  # events not yet acked (the backlog)
    inflight: int
    banned: bool
    outdated: bool
    temp_banned_until: int | None
    refusing: bool
    connects: int
    delivered: int
    acked: int
    sent: int
    reads: int


# -- internal state ---------------------------------------------------------------------------------------------


class Connection:
    """One WebSocket connection as the model sees it; the server reads ``drain`` and closes when told."""

    __slots__ = ("abort", "frames", "id", "inflight", "mode", "notify", "number", "pair_code", "qr_index", "state")

    def __init__(self, conn_id: int, number: _Number) -> None:
        self.id = conn_id
        self.number = number
        self.state: Literal["pairing", "live", "closing", "closed"] = "pairing"
        self.frames: list[_Outgoing] = []
        self.inflight: set[str] = set()
        self.notify: Callable[[], None] = _nothing
        self.abort = False  # close without a goodbye frame (network loss)
        self.mode: Literal["qr", "code"] = "qr"
        self.qr_index = 0
        self.pair_code: str | None = None

    @property
    def closing(self) -> bool:
        return self.state in ("closing", "closed")


def _nothing() -> None:
    return None


class _Bucket:
    __slots__ = ("at", "tokens")

    def __init__(self, tokens: float, at: float) -> None:
        self.tokens = tokens
        self.at = at

    def take(self, now: float, rate: float, burst: int) -> float:
        """Take one token; returns 0 on success, else the seconds until one is available."""
        self.tokens = min(float(burst), self.tokens + (now - self.at) * rate)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / rate


class _Number:
    __slots__ = ("acked", "banned", "bucket", "connects", "delivered", "digits", "idempotency", "jid", "live",
                 "number", "outdated", "pair_buckets", "paired", "pairing", "reads", "refuse_until", "revoked",
                 "sent", "temp_ban_until", "to_send", "unacked")  # fmt: skip

    def __init__(self, digits: str) -> None:
        self.digits = digits
        self.number = "+" + digits
        self.jid = digits + "@c.us"
        self.live: Connection | None = None
        self.pairing: list[Connection] = []
        self.unacked: dict[str, WireEvent] = {}  # insertion order = original order
        self.to_send: deque[WireEvent] = deque()  # what the live connection has not been sent yet
        self.paired = False
        self.revoked: tuple[int, int] = (0, 0)  # credentials stamped at or before this are logged out
        self.banned = False
        self.outdated = False
        self.temp_ban_until: int | None = None  # ms since the epoch
        self.refuse_until = 0.0  # monotonic
        self.bucket: _Bucket | None = None
        self.pair_buckets: dict[str, _Bucket] = {}
        self.idempotency: OrderedDict[str, str] = OrderedDict()
        self.connects = self.delivered = self.acked = self.sent = self.reads = 0


class _Phone:
    __slots__ = ("digits", "inbox", "seq")

    def __init__(self, digits: str, limit: int) -> None:
        self.digits = digits
        self.inbox: deque[InboxMessage] = deque(maxlen=limit)
        self.seq = 0


class _Group:
    __slots__ = ("id", "participants", "subject")

    def __init__(self, group_id: str, subject: str | None) -> None:
        self.id = group_id
        self.subject = subject
        self.participants: dict[str, None] = {}  # digits, in join order


class _Media:
    __slots__ = ("data", "fail", "item", "uploaded")

    def __init__(self, item: MediaItem, data: bytes | None, fail: int, *, uploaded: bool) -> None:
        self.item = item
        self.data = data  # None: made-up bytes, generated again on every download
        self.fail = fail
        self.uploaded = uploaded  # by a business (POST /media): its id may be sent as a media ref


class _Job:
    __slots__ = ("addressing", "first", "messages", "name_prefix", "number", "phones", "produced", "rate", "started",
                 "total", "view_id")  # fmt: skip

    def __init__(self, view_id: str, number: _Number, request: BulkRequest, first: int, started: float) -> None:
        self.view_id = view_id
        self.number = number
        self.phones = request.phones
        self.messages = request.messages
        self.total = request.phones * request.messages
        self.rate = request.rate
        self.first = first
        self.started = started
        self.produced = 0
        self.name_prefix = "Cliente"
        self.addressing = request.addressing


class _Credentials(msgspec.Struct, frozen=True):
    n: str  # digits of the number
    t: int  # wall ms at issue
    s: int  # issue sequence in the issuing process
    r: str  # randomness: two pairings never give the same bytes


class Drained(NamedTuple):
    """What the server must write to a connection now, and whether to close it afterwards."""

    frames: list[_Outgoing]
    close: bool
    abort: bool  # no goodbye frame: to the client the network "dropped"


_IDEMPOTENCY_LIMIT = 50_000
_BULK_TICK_S = 0.005
_MAX_COUNT = 10_000
_PHONE_PUNCTUATION = str.maketrans("", "", " -().")
_MIME = re.compile(r"[\w.+-]+/[\w.+-]+(\s*;.*)?")  # type/subtype, parameters allowed ("audio/ogg; codecs=opus")


def digits_of(value: str, *, what: str = "phone number") -> str:
    """``+55 11 98888-7777`` / ``5511988887777@c.us`` / ``...@s.whatsapp.net`` -> ``5511988887777``."""
    user = value.strip().partition("@")[0].split(":", 1)[0]
    digits = "".join(ch for ch in user if ch.isdigit())
    if not 6 <= len(digits) <= 15 or user.lstrip("+").translate(_PHONE_PUNCTUATION) != digits:
        raise SimError("invalid_input", f"not a {what}: {value!r}")
    return digits


def _group_id(value: str) -> str:
    user, _, server = value.strip().partition("@")
    if server != "g.us" or not user or not all(ch.isdigit() or ch == "-" for ch in user):
        raise SimError("invalid_input", f"not a group id (<digits>@g.us): {value!r}")
    return f"{user}@g.us"


# -- the network --------------------------------------------------------------------------------------------------


class Network:
    """All numbers, phones and groups of one simulator. Single-threaded: call it from one event loop only."""

    def __init__(
        self,
        config: SimConfig | None = None,
        *,
        auto_pair: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        credentials_key: bytes = DEFAULT_CREDENTIALS_KEY,
    ) -> None:
        base = config or SimConfig()
        if auto_pair is not None:
            base = msgspec.structs.replace(base, auto_pair=auto_pair)
        self._initial_config = base
        self.config = base
        self._clock = clock
        self._wall = wall
        self._rng = rng or random.Random()  # noqa: S311 - simulated behaviour, not security
        self._key = credentials_key
        self.on_schedule: Callable[[], None] = _nothing  # the server wakes its ticker
        self._conn_ids = itertools.count(1)
        self._init_state()

    def _init_state(self) -> None:
        # A random prefix per process keeps message ids unique across simulator restarts (the product stores them).
        self._prefix = f"{self._rng.getrandbits(24):06X}"
        self._msg_seq = itertools.count(1)
        self._stamp = itertools.count(1)
        self._numbers: dict[str, _Number] = {}
        self._phones: dict[str, _Phone] = {}
        self._groups: dict[str, _Group] = {}
        self._media: dict[str, _Media] = {}
        self._lids: dict[str, str] = {}  # lid user -> phone digits
        self._jobs: dict[str, _Job] = {}
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._timer_seq = itertools.count()

    # -- time and ids ---------------------------------------------------------------------------------------------

    def now(self) -> float:
        """The network's monotonic clock (what :meth:`next_due` is measured in)."""
        return self._clock()

    def _ms(self) -> int:
        return int(self._wall() * 1000)

    def _schedule(self, delay: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (self._clock() + delay, next(self._timer_seq), action))
        self.on_schedule()

    def next_due(self) -> float | None:
        """Monotonic time of the next timer or bulk step, ``None`` when nothing is scheduled."""
        due = self._timers[0][0] if self._timers else None
        now = self._clock()
        for job in self._jobs.values():
            if job.produced < job.total:
                if job.rate is None:
                    at = now if self._bulk_room(job) > 0 else now + _BULK_TICK_S  # throttled: poll
                else:
                    at = job.started + job.produced / job.rate
                if at > now:  # ahead of schedule: wake at most every _BULK_TICK_S
                    at = max(at, now + _BULK_TICK_S)
                due = at if due is None else min(due, at)
        return due

    def tick(self) -> None:
        """Fire every timer that is due and let bulk jobs produce what is due; bounded by what is queued."""
        now = self._clock()
        fired = 0
        while self._timers and self._timers[0][0] <= now and fired < 100_000:
            _, _, action = heapq.heappop(self._timers)
            action()
            fired += 1
        for job in self._jobs.values():
            self._advance_job(job, now)

    def _message_id(self, prefix: str) -> str:
        return f"{prefix}{self._prefix}{next(self._msg_seq):010X}"

    def _lid(self, digits: str) -> str:
        user = str(int.from_bytes(hashlib.blake2b(digits.encode(), digest_size=6).digest(), "big"))
        self._lids.setdefault(user, digits)
        return user + "@lid"

    # -- registries -------------------------------------------------------------------------------------------------

    def _number(self, value: str) -> _Number:
        digits = digits_of(value, what="business number")
        num = self._numbers.get(digits)
        if num is None:
            num = self._numbers[digits] = _Number(digits)
        return num

    def _phone(self, digits: str) -> _Phone:
        phone = self._phones.get(digits)
        if phone is None:
            phone = self._phones[digits] = _Phone(digits, self.config.inbox_limit)
        return phone

    # -- connections ------------------------------------------------------------------------------------------------

    def connect(self, hello: Hello) -> Connection:
        """A client said hello. The returned connection already holds its first frames (QR, connected or goodbye)."""
        num = self._number(hello.number)
        conn = Connection(next(self._conn_ids), num)
        now_ms = self._ms()
        if num.refuse_until > self._clock():
            self._close(conn, Disconnect(reason="server_error", code="503", message="connections refused"))
        elif num.banned:
            self._close(conn, Disconnect(reason="banned", code="403", message="account banned"))
        elif num.outdated:
            self._close(conn, Disconnect(reason="outdated", code="405", message="client outdated"))
        elif num.temp_ban_until is not None and num.temp_ban_until > now_ms:
            self._close(conn, Disconnect(reason="temp_banned", code="402", until=num.temp_ban_until,
                                         message="temporarily banned"))  # fmt: skip
        elif hello.credentials is not None:
            if self._credentials_valid(num, hello.credentials):
                self._go_live(conn)
            else:
                self._close(conn, Disconnect(reason="logged_out", code="401", message="credentials not valid"))
        else:
            num.pairing.append(conn)
            if hello.pair_code:
                self._show_pair_code(conn)
            else:
                self._show_qr(conn, 0)
                if self.config.auto_pair:
                    self._complete_pairing(conn)
        return conn

    def receive(self, conn: Connection, frame: ClientFrame) -> None:
        """A frame from a connected client (after its hello)."""
        if isinstance(frame, Ack):  # even while closing: what the client stored must not come back
            self.ack(conn, frame.ids)
            return
        if conn.closing:
            return
        if isinstance(frame, Send):
            self._push(conn, self._answer_send(conn, frame))
        elif isinstance(frame, Read):
            conn.number.reads += len(frame.ids)
        elif isinstance(frame, Logout):
            self._logout(conn.number, kick=True)
        elif isinstance(frame, RequestPairCode):
            if conn.state == "pairing":
                self._show_pair_code(conn)
            else:
                self._push(conn, Error(code="not_pairing", message="this connection is not pairing"))
        else:  # a second hello
            self._push(conn, Error(code="invalid_input", message="hello was already received"))

    def drop(self, conn: Connection) -> None:
        """The socket is gone (client closed, network, server shutdown). Unacked events stay in the backlog."""
        self._detach(conn)
        conn.state = "closed"
        conn.frames.clear()

    def drain(self, conn: Connection) -> Drained:
        """Frames to write now: control frames first, then at most ``batch_max`` events within the window."""
        frames = conn.frames
        conn.frames = []
        if conn.state == "live":
            batch = self._next_batch(conn)
            if batch:
                frames.append(Events(events=batch))
                num = conn.number
                if num.to_send and len(conn.inflight) < self.config.window:
                    conn.notify()  # more to send: come back after writing this
        closing = conn.state == "closing"
        if closing:
            conn.state = "closed"
        return Drained(frames, closing, conn.abort)

    def _next_batch(self, conn: Connection) -> list[WireEvent]:
        num = conn.number
        cfg = self.config
        room = cfg.window - len(conn.inflight)
        batch: list[WireEvent] = []
        rng = self._rng
        dup_msg, dup_ack = cfg.inbound_duplicate, cfg.ack_duplicate
        while num.to_send and room > 0 and len(batch) < cfg.batch_max:
            event = num.to_send.popleft()
            if event.id not in num.unacked or event.id in conn.inflight:
                continue
            conn.inflight.add(event.id)
            room -= 1
            batch.append(event)
            dup = dup_msg if type(event) is InMsg else dup_ack
            if dup and rng.random() < dup:
                batch.append(event)
        num.delivered += len(batch)
        return batch

    def ack(self, conn: Connection, ids: Iterable[str]) -> None:
        num = conn.number
        window_was_full = len(conn.inflight) >= self.config.window
        for event_id in ids:
            if num.unacked.pop(event_id, None) is not None:
                num.acked += 1
            conn.inflight.discard(event_id)
        if window_was_full and len(conn.inflight) < self.config.window and num.to_send:
            conn.notify()

    def _push(self, conn: Connection, frame: _Outgoing) -> None:
        if not conn.closing:
            conn.frames.append(frame)
            conn.notify()

    def _close(self, conn: Connection, goodbye: Disconnect | None) -> None:
        """End a connection: say why (unless the network 'drops' it), then the server closes the socket."""
        if conn.closing:
            return
        self._detach(conn)
        if goodbye is None:
            conn.abort = True
        else:
            conn.frames.append(goodbye)
        conn.state = "closing"
        conn.notify()

    def _detach(self, conn: Connection) -> None:
        num = conn.number
        if num.live is conn:
            num.live = None
            num.to_send.clear()
        if conn in num.pairing:
            num.pairing.remove(conn)
        conn.inflight.clear()

    def _go_live(self, conn: Connection) -> None:
        num = conn.number
        if num.live is not None:
            self._close(num.live, Disconnect(reason="replaced", code="440", message="another connection took over"))
        if conn in num.pairing:
            num.pairing.remove(conn)
        num.live = conn
        num.paired = True
        num.connects += 1
        conn.state = "live"
        num.to_send = deque(num.unacked.values())  # the backlog burst, in original order
        conn.frames.append(Connected(number=num.number, backlog=len(num.unacked)))
        conn.notify()

    def close_all(self, reason: str = "server_error", code: str = "503") -> None:
        """Say goodbye to every connection (server shutdown, reset)."""
        for num in self._numbers.values():
            for conn in [*num.pairing, *([num.live] if num.live else [])]:
                self._close(conn, Disconnect(reason=reason, code=code, message="simulator going away"))

    # -- pairing and credentials ----------------------------------------------------------------------------------

    def _show_qr(self, conn: Connection, index: int) -> None:
        cfg = self.config
        lifetime = cfg.qr_first_s if index == 0 else cfg.qr_next_s
        conn.mode = "qr"
        conn.qr_index = index
        token = base64.b64encode(self._rng.randbytes(24)).decode()
        code = f"2@{token},{conn.number.digits},{conn.id}:{index}"
        self._push(conn, Qr(code=code, expires_at=self._ms() + int(lifetime * 1000), index=index, limit=cfg.qr_limit))

        def expire() -> None:
            if conn.state != "pairing" or conn.mode != "qr" or conn.qr_index != index:
                return
            if index + 1 < self.config.qr_limit:
                self._show_qr(conn, index + 1)
            else:
                self._close(conn, Disconnect(reason="logged_out", code="qr_limit", message="QR codes ran out"))

        self._schedule(lifetime, expire)

    def _show_pair_code(self, conn: Connection) -> None:
        conn.mode = "code"
        conn.pair_code = "".join(self._rng.choice(_PAIR_CODE_ALPHABET) for _ in range(8))
        lifetime = self.config.pair_code_s
        code = conn.pair_code
        self._push(conn, PairCode(code=code, expires_at=self._ms() + int(lifetime * 1000)))

        def expire() -> None:
            if conn.state == "pairing" and conn.mode == "code" and conn.pair_code == code:
                self._close(conn, Disconnect(reason="logged_out", code="pair_code_expired",
                                             message="pair code expired"))  # fmt: skip

        self._schedule(lifetime, expire)

    def pair(self, number: str, request: PairRequest | None = None) -> NumberState:
        """The phone scans the QR (or types the pair code) of the newest connection pairing this number."""
        num = self._number(number)
        if not num.pairing:
            raise SimError("not_pairing", f"no connection is pairing {num.number}", status=409)
        conn = num.pairing[-1]
        if request is not None and request.code is not None:
            typed = request.code.replace("-", "").replace(" ", "").upper()
            if conn.mode != "code" or typed != conn.pair_code:
                raise SimError("bad_pair_code", "the pair code does not match", status=400)
        self._complete_pairing(conn)
        return self.number_state(num.number)

    def _complete_pairing(self, conn: Connection) -> None:
        num = conn.number
        num.pairing.remove(conn)
        num.paired = True
        self._push(conn, Paired(credentials=self._issue_credentials(num)))
        self._close(conn, Disconnect(reason="restart_required", code="515", message="paired: reconnect"))

    def _issue_credentials(self, num: _Number) -> bytes:
        body = msgspec.json.encode(_Credentials(n=num.digits, t=self._ms(), s=next(self._stamp),
                                                r=self._rng.randbytes(8).hex()))  # fmt: skip
        mac = hmac.new(self._key, body, hashlib.sha256).hexdigest()[:32]
        return b"simcred1." + base64.urlsafe_b64encode(body) + b"." + mac.encode()

    def _credentials_valid(self, num: _Number, credentials: bytes) -> bool:
        try:
            tag, body_b64, mac = credentials.split(b".")
            body = base64.urlsafe_b64decode(body_b64)
            creds = msgspec.json.decode(body, type=_Credentials)
        except (ValueError, msgspec.DecodeError):
            return False
        expected = hmac.new(self._key, body, hashlib.sha256).hexdigest()[:32].encode()
        return (tag == b"simcred1" and hmac.compare_digest(mac, expected) and creds.n == num.digits
                and (creds.t, creds.s) > num.revoked)  # fmt: skip

    def _logout(self, num: _Number, *, kick: bool) -> None:
        num.revoked = (self._ms(), next(self._stamp))
        num.paired = False
        if kick:
            for conn in [*num.pairing, *([num.live] if num.live else [])]:
                self._close(conn, Disconnect(reason="logged_out", code="401", message="logged out"))

    # -- inbound: phones send to business numbers -----------------------------------------------------------------

    def _enqueue(self, num: _Number, event: WireEvent, *, notify: bool = True) -> None:
        num.unacked[event.id] = event
        live = num.live
        if live is not None:
            num.to_send.append(event)
            if notify:
                live.notify()

    def phone_send(self, phone: str, message: PhoneMessage) -> SentIds:
        """A phone sends ``message.count`` messages to a business number; they queue even while it is offline."""
        digits = digits_of(phone)
        self._check_phone_message(message)
        num = self._number(message.to)
        group = None
        if message.group is not None:
            gid = _group_id(message.group)
            group = self._groups.get(gid)
            if group is None:
                group = self._groups[gid] = _Group(gid, None)
            group.participants.setdefault(digits, None)
        ids: list[str] = []
        media_ids: list[str] = []
        phone_jid, lid = digits + "@c.us", self._lid(digits)
        by_lid = message.addressing == "lid"
        peer = lid if by_lid else phone_jid  # how this phone is named, in the chat and as the sender
        for _ in range(message.count):
            media = self._store_media(message.media) if message.media is not None else None
            if media is not None:
                media_ids.append(media.id)
            event = InMsg(
                id=self._message_id("3A"),
                chat=group.id if group is not None else peer,
                sender=num.jid if message.from_me else peer,
                sender_lid=None if message.from_me or by_lid else lid,
                sender_pn=phone_jid if by_lid and not message.from_me else None,
                name=None if message.from_me else message.name,
                from_me=message.from_me,
                kind=message.kind,
                text=message.text,
                media=media,
                reply_to=message.reply_to,
                ts=self._ms(),
            )
            self._enqueue(num, event)
            ids.append(event.id)
        return SentIds(ids=ids, media=media_ids)

    @staticmethod
    def _check_phone_message(message: PhoneMessage) -> None:
        if not 1 <= message.count <= _MAX_COUNT:
            raise SimError("invalid_input", f"count must be within 1..{_MAX_COUNT}")
        _check_content(message.kind, message.text, message.media is not None, message.reply_to)

    def _store_media(self, spec: MediaSpec) -> MediaItem:
        size = len(spec.data) if spec.data is not None else (spec.size if spec.size is not None else 2048)
        if not 0 <= size <= MEDIA_MAX_BYTES or (spec.size is not None and not 0 <= spec.size <= MEDIA_MAX_BYTES):
            raise SimError("invalid_input", "media size must be within 0..64 MiB")
        return self._new_media(spec.mime, spec.filename, size, spec.data, fail=spec.fail, uploaded=False)

    def _new_media(self, mime: str, filename: str | None, size: int, data: bytes | None, *, fail: int,
                   uploaded: bool) -> MediaItem:  # fmt: skip
        media_id = "m" + self._message_id("")
        content = data if data is not None else _made_up_bytes(media_id, size)
        item = MediaItem(id=media_id, mime=mime, size=size, url=f"/media/{media_id}", filename=filename,
                         sha256=hashlib.sha256(content).hexdigest())  # fmt: skip
        self._media[media_id] = _Media(item, data, fail, uploaded=uploaded)
        return item

    def upload_media(self, data: bytes, mime: str, filename: str | None = None) -> MediaItem:
        """A business uploads a media item (``POST /media``); a ``send`` whose ``media.ref`` is its id delivers it."""
        if not data:
            raise SimError("invalid_input", "the media body is empty")
        if len(data) > MEDIA_MAX_BYTES:
            raise SimError("too_large", "media must be at most 64 MiB", status=413)
        if not _MIME.fullmatch(mime.strip()):
            raise SimError("invalid_input", f"not a MIME type (type/subtype): {mime!r}")
        if filename is not None and any(ord(ch) < 32 or ord(ch) == 127 for ch in filename):
            raise SimError("invalid_input", "the filename has control characters")
        return self._new_media(mime.strip(), filename or None, len(data), data, fail=0, uploaded=True)

    def media(self, media_id: str) -> tuple[MediaItem, bytes]:
        """Download a media item (``GET /media/{id}``); injected failures raise ``media_unavailable``."""
        stored = self._media.get(media_id)
        if stored is None:
            raise SimError("not_found", f"no media {media_id!r}", status=404)
        if stored.fail:
            if stored.fail > 0:
                stored.fail -= 1
            raise SimError("media_unavailable", "media download failed (injected)", status=503)
        data = stored.data if stored.data is not None else _made_up_bytes(media_id, stored.item.size)
        return stored.item, data

    def fail_media(self, media_id: str, request: MediaFailRequest) -> MediaItem:
        stored = self._media.get(media_id)
        if stored is None:
            raise SimError("not_found", f"no media {media_id!r}", status=404)
        stored.fail = request.times
        return stored.item

    def create_group(self, request: GroupRequest) -> GroupView:
        gid = _group_id(request.id) if request.id else f"120363{self._rng.getrandbits(40):012d}@g.us"
        group = self._groups.get(gid)
        if group is None:
            group = self._groups[gid] = _Group(gid, request.subject)
        for participant in request.participants:
            group.participants.setdefault(digits_of(participant), None)
        return GroupView(id=gid, subject=group.subject, participants=["+" + d for d in group.participants])

    # -- outbound: business numbers send to phones --------------------------------------------------------------

    def _answer_send(self, conn: Connection, frame: Send) -> SendOk | Error:
        try:
            msg_id, duplicate = self.send_message(conn, frame)
        except SimError as exc:
            return Error(code=exc.code, message=exc.message, ref=frame.ref, retry_after=exc.retry_after)
        return SendOk(ref=frame.ref, id=msg_id, duplicate=duplicate)

    def send_message(self, conn: Connection, frame: Send) -> tuple[str, bool]:
        """Accept a send: returns the provider message id and whether the idempotency key made it a repeat."""
        if conn.state != "live":
            raise SimError("not_connected", "the connection is not logged in", status=409)
        num = conn.number
        key = frame.idempotency_key
        if key is not None and key in num.idempotency:
            return num.idempotency[key], True
        _check_content(frame.kind, frame.text, frame.media is not None, frame.reply_to)
        chat, recipients = self._recipients(frame.to)
        group = chat.endswith("@g.us")
        media = self._outgoing_media(frame.media) if frame.media is not None else None
        cfg = self.config
        now = self._clock()
        if cfg.send_rate > 0:
            if num.bucket is None:
                num.bucket = _Bucket(float(cfg.send_burst), now)
            wait = num.bucket.take(now, cfg.send_rate, cfg.send_burst)
            if wait:
                raise SimError("rate_limited", f"more than {cfg.send_rate:g} msg/s", status=429, retry_after=wait)
        if cfg.recipient_rate > 0:
            pair = chat if group else recipients[0]  # one bucket per person, whichever id the business used
            bucket = num.pair_buckets.get(pair)
            if bucket is None:
                bucket = num.pair_buckets[pair] = _Bucket(float(cfg.recipient_burst), now)
            wait = bucket.take(now, cfg.recipient_rate, cfg.recipient_burst)
            if wait:
                raise SimError("pair_rate_limited", f"more than {cfg.recipient_rate:g} msg/s to {chat}", status=429,
                               retry_after=wait)  # fmt: skip
        msg_id = self._message_id("3EB0")
        if key is not None:
            num.idempotency[key] = msg_id
            if len(num.idempotency) > _IDEMPOTENCY_LIMIT:
                num.idempotency.popitem(last=False)
        num.sent += 1
        ts = self._ms()
        entries: list[tuple[str, InboxMessage]] = []
        for digits in recipients:
            phone = self._phone(digits)
            phone.seq += 1
            entry = InboxMessage(seq=phone.seq, id=msg_id, sender=num.number, chat=chat if group else num.jid,
                                 kind=frame.kind, text=frame.text, media=media, reply_to=frame.reply_to,
                                 timestamp=ts)  # fmt: skip
            phone.inbox.append(entry)
            entries.append((digits, entry))
        self._schedule_receipts(num, msg_id, chat, entries, group=group)
        return msg_id, False

    def _outgoing_media(self, media: OutMedia) -> InboxMedia:
        """An uploaded item (``ref`` is its id) is delivered as stored; any other reference passes through."""
        stored = self._media.get(media.ref)
        if stored is None or not stored.uploaded:
            return InboxMedia(mime=media.mime, ref=media.ref, filename=media.filename, size=media.size)
        item = stored.item  # the stored bytes decide mime, size and hash; the sender may rename the file
        return InboxMedia(mime=item.mime, ref=media.ref, filename=media.filename or item.filename, size=item.size,
                          id=item.id, sha256=item.sha256, url=item.url)  # fmt: skip

    def _recipients(self, to: str) -> tuple[str, list[str]]:
        """The chat as the business named it (``<digits>@c.us``, ``<id>@lid`` or a group id; receipts carry it) and
        the phones that receive a message sent to ``to``."""
        value = to.strip()
        if value.endswith("@g.us"):
            gid = _group_id(value)
            group = self._groups.get(gid)
            if group is None:
                raise SimError("unknown_chat", f"no group {gid}", status=404)
            return gid, list(group.participants)
        if value.endswith("@lid"):
            user = value.partition("@")[0]
            digits = self._lids.get(user)
            if digits is None:
                raise SimError("invalid_recipient", f"unknown LID {value}", status=404)
            return user + "@lid", [digits]
        try:
            digits = digits_of(value)
        except SimError as exc:
            raise SimError("invalid_recipient", exc.message) from None
        return digits + "@c.us", [digits]

    def _schedule_receipts(self, num: _Number, msg_id: str, chat: str, entries: list[tuple[str, InboxMessage]],
                           *, group: bool) -> None:  # fmt: skip
        cfg = self.config
        rng = self._rng

        def latency(base: float) -> float:
            return base + (rng.random() * cfg.ack_jitter_s if cfg.ack_jitter_s else 0.0)

        self._schedule(latency(cfg.ack_sent_s), self._receipt(num, msg_id, chat, "SENT", None, [e for _, e in entries]))
        for digits, entry in entries:
            participant = digits + "@c.us" if group else None
            delivered_at, read_at = latency(cfg.ack_delivered_s), latency(cfg.ack_read_s)
            if cfg.ack_reorder and rng.random() < cfg.ack_reorder:
                # READ strictly before DELIVERED (equal due times would fire in scheduling order)
                delivered_at, read_at = max(delivered_at, read_at) + 1e-6, min(delivered_at, read_at)
            if not (cfg.ack_skip_delivered and rng.random() < cfg.ack_skip_delivered):
                self._schedule(delivered_at, self._receipt(num, msg_id, chat, "DELIVERED", participant, [entry]))
            if not (cfg.ack_skip_read and rng.random() < cfg.ack_skip_read):
                self._schedule(read_at, self._receipt(num, msg_id, chat, "READ", participant, [entry]))

    def _receipt(self, num: _Number, msg_id: str, chat: str, status: Literal["SENT", "DELIVERED", "READ"],
                 participant: str | None, entries: list[InboxMessage]) -> Callable[[], None]:  # fmt: skip
        def fire() -> None:
            suffix = "/" + participant.partition("@")[0] if participant else ""
            for entry in entries:
                if status_rank(status) > status_rank(entry.status):
                    entry.status = status
            self._enqueue(num, InReceipt(id=f"{msg_id}/{status}{suffix}", msg_id=msg_id, chat=chat, status=status,
                                         participant=participant, ts=self._ms()))  # fmt: skip

        return fire

    # -- bulk load --------------------------------------------------------------------------------------------------

    def bulk(self, request: BulkRequest) -> BulkJob:
        """Start a load job; messages are generated by :meth:`tick`, in chunks, never by HTTP calls."""
        if not (1 <= request.phones <= 1_000_000 and 1 <= request.messages <= 10_000_000):
            raise SimError("invalid_input", "phones must be within 1..1e6 and messages within 1..1e7")
        if request.phones * request.messages > 50_000_000:
            raise SimError("invalid_input", "at most 50 million messages per job")
        if request.rate is not None and request.rate <= 0:
            raise SimError("invalid_input", "rate must be > 0 msg/s (or absent: as fast as possible)")
        first = int(digits_of(request.first_phone))
        if len(str(first + request.phones - 1)) > 15:
            raise SimError("invalid_input", "first_phone + phones overflows 15 digits")
        job = _Job(f"bulk-{len(self._jobs) + 1}", self._number(request.to), request, first, self._clock())
        self._jobs[job.view_id] = job
        self.on_schedule()
        return self._job_view(job)

    def bulk_job(self, job_id: str) -> BulkJob:
        job = self._jobs.get(job_id)
        if job is None:
            raise SimError("not_found", f"no bulk job {job_id!r}", status=404)
        return self._job_view(job)

    @staticmethod
    def _job_view(job: _Job) -> BulkJob:
        return BulkJob(id=job.view_id, to=job.number.number, phones=job.phones, messages=job.messages,
                       total=job.total, produced=job.produced, rate=job.rate, done=job.produced >= job.total)  # fmt: skip

    def _bulk_room(self, job: _Job) -> int:
        """An unpaced job only keeps the backlog topped up: memory stays bounded however big the job is."""
        cap = max(4 * self.config.window, self.config.bulk_chunk)
        return max(0, cap - len(job.number.unacked))

    def _advance_job(self, job: _Job, now: float) -> None:
        if job.produced >= job.total:
            return
        if job.rate is None:
            target = min(job.total, job.produced + self._bulk_room(job))
        else:
            target = min(job.total, int((now - job.started) * job.rate) + 1)
        end = min(target, job.produced + self.config.bulk_chunk)
        if end <= job.produced:
            return
        num, phones, ts, by_lid = job.number, job.phones, self._ms(), job.addressing == "lid"
        for k in range(job.produced, end):
            index, nth = k % phones, k // phones
            digits = str(job.first + index)
            jid, lid = digits + "@c.us", self._lid(digits)
            peer = lid if by_lid else jid
            event = InMsg(id=self._message_id("3A"), chat=peer, sender=peer, sender_lid=None if by_lid else lid,
                          sender_pn=jid if by_lid else None, name=f"{job.name_prefix} {index + 1}",
                          text=f"bulk {nth + 1}/{job.messages}", ts=ts)  # fmt: skip
            self._enqueue(num, event, notify=False)
        job.produced = end
        if num.live is not None:
            num.live.notify()

    # -- faults -------------------------------------------------------------------------------------------------

    def fault(self, number: str, request: FaultRequest) -> NumberState:
        """Inject a fault. Bans and 'outdated' stick until ``clear`` (temporary bans until they expire)."""
        num = self._number(number)
        conns = [*num.pairing, *([num.live] if num.live else [])]
        kind = request.kind
        if request.seconds is not None and request.seconds <= 0:
            raise SimError("invalid_input", "seconds must be > 0")

        def kick(reason: str, code: str, *, until: int | None = None) -> None:
            for conn in conns:
                self._close(conn, Disconnect(reason=reason, code=code, until=until, message=f"fault: {kind}"))

        if kind == "network":
            for conn in conns:
                self._close(conn, None)
        elif kind == "server_error":
            kick("server_error", "503")
        elif kind == "logged_out":
            self._logout(num, kick=True)
        elif kind == "temp_banned":
            num.temp_ban_until = self._ms() + int((request.seconds or 3600.0) * 1000)
            kick("temp_banned", "402", until=num.temp_ban_until)
        elif kind == "banned":
            num.banned = True
            kick("banned", "403")
        elif kind == "outdated":
            num.outdated = True
            kick("outdated", "405")
        elif kind == "replaced":
            kick("replaced", "440")
        elif kind == "refuse":
            num.refuse_until = self._clock() + (request.seconds or 10.0)
        elif kind == "protocol_error":
            for conn in conns:
                self._push(conn, _Garbage())
        else:  # clear
            num.banned = num.outdated = False
            num.temp_ban_until = None
            num.refuse_until = 0.0
        return self.number_state(num.number)

    # -- views and administration ---------------------------------------------------------------------------------

    def number_state(self, number: str) -> NumberState:
        num = self._number(number)
        now_ms = self._ms()
        return NumberState(
            number=num.number,
            connected=num.live is not None,
            paired=num.paired,
            pairing=bool(num.pairing),
            pending=len(num.unacked),
            inflight=len(num.live.inflight) if num.live else 0,
            banned=num.banned,
            outdated=num.outdated,
            temp_banned_until=num.temp_ban_until if num.temp_ban_until and num.temp_ban_until > now_ms else None,
            refusing=num.refuse_until > self._clock(),
            connects=num.connects,
            delivered=num.delivered,
            acked=num.acked,
            sent=num.sent,
            reads=num.reads,
        )

    def numbers(self) -> list[NumberState]:
        return [self.number_state(num.number) for num in self._numbers.values()]

    def inbox(self, phone: str, *, after: int = 0, limit: int = 1000) -> InboxPage:
        """Messages ``phone`` received with ``seq > after``, oldest first."""
        digits = digits_of(phone)
        box = self._phones.get(digits)
        if box is None:
            return InboxPage(phone="+" + digits, messages=[], last_seq=after)
        messages = [m for m in box.inbox if m.seq > after][: max(1, min(limit, 10_000))]
        return InboxPage(phone="+" + digits, messages=messages, last_seq=messages[-1].seq if messages else after)

    def configure(self, changes: dict[str, Any]) -> SimConfig:
        """Apply a partial config; the whole config is validated before anything changes."""
        try:
            config = msgspec.convert({**msgspec.structs.asdict(self.config), **changes}, SimConfig)
        except msgspec.ValidationError as exc:
            raise SimError("invalid_input", str(exc)) from None
        self.config = config
        self.on_schedule()
        return config

    def reset(self) -> None:
        """Forget everything (numbers, phones, groups, media, jobs, timers) and restore the initial config."""
        self.close_all()
        self.config = self._initial_config
        self._init_state()


def _check_content(kind: str, text: str | None, has_media: bool, reply_to: str | None) -> None:
    if kind in _MEDIA_KINDS and not has_media:
        raise SimError("invalid_input", f"a {kind} message needs media")
    if kind in _TARGET_KINDS and not reply_to:
        raise SimError("invalid_input", f"a {kind} needs reply_to (the message it refers to)")
    if kind in ("text", "reaction", "edit") and not text:
        raise SimError("invalid_input", f"a {kind} message needs text")


def _made_up_bytes(media_id: str, size: int) -> bytes:
    """Deterministic content for media sent without data (the same bytes on every download)."""
    seed = hashlib.sha256(media_id.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]
