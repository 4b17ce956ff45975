"""The wire messages: one msgspec schema for every provider's events and for outbound commands.

Drivers emit :data:`DriverEvent` values (no tenant yet); the session host stamps them into an
:class:`Envelope`-carrying :data:`WireEvent` and appends it to an inbound Redis Stream, encoded with
msgpack. Outbound commands travel the other way on a connection's outbound stream.

Chat ids use one normal form (``<digits>@s.whatsapp.net``, ``<id>@g.us`` for groups, ``<id>@lid`` for LIDs);
``chat_id_raw`` keeps the provider's own form.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec

__all__ = [
    "ChatType",
    "DriverEvent",
    "FetchMedia",
    "InboundMessage",
    "MediaRef",
    "MediaResult",
    "MessageKind",
    "MessageStatus",
    "OutboundMessage",
    "SessionState",
    "SessionStatus",
    "StatusName",
    "WireEvent",
    "bounded_raw",
    "decode_event",
    "decode_fetch",
    "decode_outbound",
    "encode",
    "normalize_chat_id",
    "status_rank",
    "utcnow",
]

RAW_LIMIT_BYTES = 4096


def utcnow() -> datetime:
    return datetime.now(UTC)


class SessionState(enum.StrEnum):
    """States of a supervised session (persisted in the registry and shown in the portal)."""

    STARTING = "STARTING"
    AWAITING_QR = "AWAITING_QR"
    AWAITING_PAIR_CODE = "AWAITING_PAIR_CODE"
    CONNECTED = "CONNECTED"
    RECONNECTING = "RECONNECTING"
    BACKOFF = "BACKOFF"
    LOGGED_OUT = "LOGGED_OUT"
    QUARANTINED = "QUARANTINED"
    GAVE_UP = "GAVE_UP"
    STOPPED = "STOPPED"


ChatType = Literal["direct", "group", "broadcast"]
MessageKind = Literal[
    "text", "image", "video", "audio", "voice", "document", "sticker", "location", "contact", "reaction",
    "interactive_reply", "edit", "revoke", "unknown",
]  # fmt: skip
MEDIA_KINDS = ("image", "video", "audio", "voice", "document", "sticker")
"""The kinds that carry a file."""
StatusName = Literal["PENDING", "SENT", "DELIVERED", "READ", "PLAYED", "FAILED", "DELETED"]

# Statuses only move forward along this ranking; FAILED and DELETED are terminal and outrank everything.
_RANK: dict[str, int] = {"QUEUED": 0, "RECEIVED": 0, "PENDING": 1, "SENT": 2, "DELIVERED": 3, "READ": 4, "PLAYED": 5,
                         "FAILED": 9, "DELETED": 10}  # fmt: skip


def status_rank(status: str) -> int:
    """Rank of a message status; a status update applies only if its rank is higher than the stored one."""
    return _RANK[status]


def normalize_chat_id(raw: str) -> str:
    """One normal form for chat ids: ``5511988887777@c.us`` / ``+55 11 98888-7777`` -> ``5511988887777@s.whatsapp.net``."""
    raw = raw.strip()
    if "@" in raw:
        user, _, server = raw.partition("@")
        user = user.split(":", 1)[0]  # device suffix "123:4@s.whatsapp.net"
        if server in ("c.us", "s.whatsapp.net"):
            return f"{''.join(ch for ch in user if ch.isdigit())}@s.whatsapp.net"
        if server in ("g.us", "lid", "broadcast", "newsletter"):
            return f"{user}@{server}"
        raise ValueError(f"unknown WhatsApp server in chat id {raw!r}")
    digits = "".join(ch for ch in raw if ch.isdigit())
    if not 6 <= len(digits) <= 15:
        raise ValueError(f"not a phone number or chat id: {raw!r}")
    return f"{digits}@s.whatsapp.net"


class MediaRef(msgspec.Struct, frozen=True, kw_only=True):
    """Where to download a media item later; nothing is downloaded on the inbound hot path."""

    mime: str
    size: int | None = None
    filename: str | None = None
    ref: str  # provider-specific handle (simulator media id, Cloud API media id, Evolution URL ...)
    sha256: str | None = None


# -- what drivers emit ----------------------------------------------------------------------------------


class InboundMessage(msgspec.Struct, frozen=True, kw_only=True, tag="message"):
    provider_message_id: str
    chat_id: str
    chat_id_raw: str
    chat_type: ChatType = "direct"
    sender_id: str
    sender_alt_id: str | None = None
    sender_name: str | None = None
    from_me: bool = False
    kind: MessageKind = "text"
    text: str | None = None
    media: MediaRef | None = None
    reply_to_id: str | None = None
    occurred_at: datetime
    raw: dict[str, Any] | None = None


class MessageStatus(msgspec.Struct, frozen=True, kw_only=True, tag="status"):
    """An ack for a message we sent (or a send result reported by the session host).

    ``client_message_id`` is our own message id when the host reports the result of a send; provider acks
    carry only ``provider_message_id``.
    """

    provider_message_id: str | None
    status: StatusName
    chat_id: str
    participant: str | None = None  # groups: one ack per participant
    client_message_id: int | None = None
    error_code: str | None = None
    error_title: str | None = None
    occurred_at: datetime
    raw: dict[str, Any] | None = None


class SessionStatus(msgspec.Struct, frozen=True, kw_only=True, tag="session"):
    """A driver's view of its connection. ``reason`` is one of ``supervisor.policy.DisconnectReason``'s values."""

    state: SessionState
    reason: str | None = None
    code: str | None = None  # the provider's raw reason code
    retryable: bool | None = None
    qr: str | None = None
    qr_expires_at: datetime | None = None
    pair_code: str | None = None
    until: datetime | None = None  # temporary bans
    credentials: bytes | None = None  # new credentials to store (after pairing)
    occurred_at: datetime


class MediaResult(msgspec.Struct, frozen=True, kw_only=True, tag="media"):
    """A session host fetched an inbound message's media into the media store (``stored``, under ``key``), or did
    not: ``failed`` (the provider would not give it) or ``rejected`` (over the size or type limits)."""

    message_id: int  # our message id (from the FetchMedia command)
    chat_id: str
    state: Literal["stored", "failed", "rejected"]
    key: str | None = None
    mime: str | None = None
    size: int | None = None
    sha256: str | None = None
    error: str | None = None
    occurred_at: datetime


DriverEvent = InboundMessage | MessageStatus | SessionStatus | MediaResult


# -- what travels on the streams ------------------------------------------------------------------------


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    """Who an event belongs to. ``event_id`` is the dedup key (provider-derived, stable across redeliveries)."""

    event_id: str
    tenant_id: int
    connection_id: int
    provider: str
    received_at: datetime
    event: DriverEvent


WireEvent = Envelope


class OutboundMessage(msgspec.Struct, frozen=True, kw_only=True):
    """Send ``text``/``media`` to ``chat_id``; ``message_id`` is our row id and the idempotency key."""

    tenant_id: int
    connection_id: int
    message_id: int
    chat_id: str
    kind: MessageKind = "text"
    text: str | None = None
    media: MediaRef | None = None
    reply_to_id: str | None = None
    created_at: datetime


class FetchMedia(msgspec.Struct, frozen=True, kw_only=True):
    """Download an inbound message's media through the session's driver into the media store (outbound stream,
    field ``f``); the host answers with a :class:`MediaResult` on the inbound path."""

    tenant_id: int
    connection_id: int
    message_id: int
    chat_id: str
    kind: MessageKind
    media: MediaRef
    created_at: datetime


_encoder = msgspec.msgpack.Encoder()
_event_decoder = msgspec.msgpack.Decoder(Envelope)
_outbound_decoder = msgspec.msgpack.Decoder(OutboundMessage)
_fetch_decoder = msgspec.msgpack.Decoder(FetchMedia)


def encode(value: Envelope | OutboundMessage | FetchMedia) -> bytes:
    return _encoder.encode(value)


def decode_event(data: bytes) -> Envelope:
    return _event_decoder.decode(data)


def decode_outbound(data: bytes) -> OutboundMessage:
    return _outbound_decoder.decode(data)


def decode_fetch(data: bytes) -> FetchMedia:
    return _fetch_decoder.decode(data)


def bounded_raw(raw: dict[str, Any] | None) -> dict[str, Any] | None:
    """Keep a provider payload for debugging only if it is small."""
    if raw is None:
        return None
    return raw if len(msgspec.json.encode(raw)) <= RAW_LIMIT_BYTES else {"truncated": True}
