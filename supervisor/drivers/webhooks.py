"""The webhook half of the HTTP-based WhatsApp providers: check a delivery is authentic, then turn its payload into
our normalized events. Pure but for a warning log per skipped item: no I/O, the API's receiver (``saas/hooks``) does
that.

Each provider documents its own proof of origin, checked *before* the payload is trusted:

* **Cloud API** (Meta): ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body with the app secret>``; the
  subscription handshake is a GET echoing ``hub.challenge`` when ``hub.verify_token`` is ours.
* **WAHA**: ``X-Webhook-Hmac: <hex HMAC-SHA512 of the raw body>`` (``X-Webhook-Hmac-Algorithm: sha512``).
* **Evolution API**: the instance's ``apikey``, in a header (webhook headers are configurable) or in the envelope.

Every comparison is constant-time, and a connection without a configured secret accepts nothing (fail closed).
Payload shapes follow the providers' documentation (``../shared/WHATSAPP.md``); unknown event types are ignored,
not errors, because providers add events over time. Event ids are stable across redeliveries, so the router
stores a retried delivery once.

A delivery that is unreadable as a whole (not JSON, or not a notification of the provider) raises ValueError and is
refused. A malformed *item* of a delivery (a message or status without its id or sender, a chat id that is no
WhatsApp address, something that is not an object) is logged and skipped, counted in :attr:`Parsed.skipped`: its
neighbours are still delivered, and refusing the whole delivery would only make the provider retry it forever.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ParamSpec

import msgspec

from supervisor.wire import (
    DriverEvent,
    InboundMessage,
    MediaRef,
    MessageKind,
    MessageStatus,
    StatusName,
    normalize_chat_id,
)

__all__ = ["PROVIDERS", "Parsed", "WebhookProvider", "WebhookSecrets", "cloud_challenge"]

logger = logging.getLogger("atende.webhooks")
_decoder = msgspec.json.Decoder()
# What reading one item of a delivery may raise when the item is not shaped as documented.
_MALFORMED = (KeyError, IndexError, TypeError, ValueError, OverflowError)
_P = ParamSpec("_P")


@dataclass(frozen=True, slots=True)
class WebhookSecrets:
    """What a connection proves deliveries with: ``secret`` (HMAC key / API key) and, for the Cloud API's
    subscription handshake, ``verify_token``."""

    secret: str | None
    verify_token: str | None = None


@dataclass(frozen=True, slots=True)
class Parsed:
    """One delivery's events, each with the id that makes a redelivery a duplicate, and how many of its items were
    too malformed to read (skipped, each logged)."""

    events: list[tuple[str, DriverEvent]]
    skipped: int = 0


class _Batch:
    """A delivery's events as its items are read: a malformed item is logged and skipped, never fails the others."""

    __slots__ = ("events", "provider", "skipped")

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.events: list[tuple[str, DriverEvent]] = []
        self.skipped = 0

    def add(self, what: str, read: Callable[_P, tuple[str, DriverEvent] | None], *args: _P.args,
            **kwargs: _P.kwargs) -> None:  # fmt: skip
        """Read one item with ``read(*args, **kwargs)``: its event, or None for an item we ignore (unknown kind)."""
        try:
            event = read(*args, **kwargs)
        except _MALFORMED as exc:
            self.skipped += 1
            logger.warning("skipped a malformed %s webhook %s: %s", self.provider, what, exc,
                           extra={"fields": {"provider": self.provider, "item": what}})  # fmt: skip
            return
        if event is not None:
            self.events.append(event)

    def parsed(self) -> Parsed:
        return Parsed(self.events, self.skipped)


@dataclass(frozen=True, slots=True)
class WebhookProvider:
    name: str
    verify: Callable[[Mapping[str, str], bytes, WebhookSecrets], bool]
    parse: Callable[[bytes], Parsed]


def _same(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.strip().encode())


def _json(body: bytes) -> Any:
    try:
        return _decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise ValueError(f"the webhook body is not JSON: {exc}") from None


def _at(seconds: Any) -> datetime:
    """Provider timestamps: seconds (int or str) or milliseconds; now when missing, unreadable or out of range."""
    try:
        value = float(seconds)
        if value > 10**11:  # milliseconds
            value /= 1000
        return datetime.fromtimestamp(value, UTC)
    except (TypeError, ValueError, OverflowError, OSError):  # None, "abc", nan, inf, year 300000 ...
        return datetime.now(UTC)


def _object(value: Any, what: str) -> dict[str, Any]:
    """An item that must be a JSON object (else the item is malformed)."""
    if not isinstance(value, dict):
        raise ValueError(f"{what} is not an object")
    return value


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# -- Cloud API ------------------------------------------------------------------------------------------------


def _cloud_verify(headers: Mapping[str, str], body: bytes, secrets: WebhookSecrets) -> bool:
    if not secrets.secret:
        return False
    given = headers.get("x-hub-signature-256", "")
    if not given.startswith("sha256="):
        return False
    expected = hmac.new(secrets.secret.encode(), body, hashlib.sha256).hexdigest()
    return _same(expected, given.removeprefix("sha256="))


def cloud_challenge(params: Mapping[str, str], secrets: WebhookSecrets) -> str | None:
    """The subscription handshake: the challenge to echo, or None when the request is not ours to accept."""
    if params.get("hub.mode") != "subscribe" or not secrets.verify_token:
        return None
    if not _same(secrets.verify_token, params.get("hub.verify_token")):
        return None
    challenge = params.get("hub.challenge", "")
    return challenge if challenge and len(challenge) <= 200 else None


_CLOUD_KINDS: dict[str, MessageKind] = {"text": "text", "image": "image", "video": "video", "audio": "audio",
                                        "document": "document", "sticker": "sticker", "location": "location",
                                        "contacts": "contact", "reaction": "reaction", "interactive": "interactive_reply",
                                        "button": "interactive_reply"}  # fmt: skip
_CLOUD_STATUS: dict[str, StatusName] = {"sent": "SENT", "delivered": "DELIVERED", "read": "READ", "failed": "FAILED",
                                        "deleted": "DELETED"}  # fmt: skip


def _cloud_message(item: Any, names: dict[str, str]) -> tuple[str, DriverEvent]:
    message = _object(item, "a Cloud API message")
    if not message.get("id") or not message.get("from"):
        raise ValueError("a Cloud API message without id/from")
    sender = str(message["from"])
    kind_raw = str(message.get("type", "unknown"))
    kind = _CLOUD_KINDS.get(kind_raw, "unknown")
    if kind_raw == "audio" and _dict(message.get("audio")).get("voice"):
        kind = "voice"
    content = _dict(message.get(kind_raw))
    text: str | None = None
    media = None
    if kind_raw == "text":
        text = _str(content.get("body"))
    elif kind_raw in ("image", "video", "audio", "document", "sticker"):
        text = _str(content.get("caption"))
        if content.get("id"):
            media = MediaRef(mime=str(content.get("mime_type") or "application/octet-stream"),
                             filename=_str(content.get("filename")), ref=f"cloud:{content['id']}",
                             sha256=_str(content.get("sha256")))  # fmt: skip
    elif kind_raw == "interactive":
        reply = _dict(content.get("button_reply")) or _dict(content.get("list_reply"))
        text = _str(reply.get("title"))
    elif kind_raw == "button":
        text = _str(content.get("text"))
    elif kind_raw == "reaction":
        text = _str(content.get("emoji"))
    elif kind_raw == "location":
        text = _str(content.get("name")) or f"{content.get('latitude')},{content.get('longitude')}"
    reply_to = _str(_dict(message.get("context")).get("id")) or (
        _str(content.get("message_id")) if kind_raw == "reaction" else None)  # fmt: skip
    chat = normalize_chat_id(sender)
    return f"msg:{message['id']}", InboundMessage(
        provider_message_id=str(message["id"]), chat_id=chat, chat_id_raw=sender, sender_id=chat,
        sender_name=names.get(sender), kind=kind, text=text, media=media, reply_to_id=reply_to,
        occurred_at=_at(message.get("timestamp")))  # fmt: skip


def _cloud_status(item: Any) -> tuple[str, DriverEvent] | None:
    status = _object(item, "a Cloud API status")
    if not status.get("id"):
        raise ValueError("a Cloud API status without id")
    name = _CLOUD_STATUS.get(str(status.get("status")))
    if name is None:
        return None  # a status Meta added after this code was written
    errors = _list(status.get("errors"))
    error = _dict(errors[0]) if errors else {}
    recipient = str(status.get("recipient_id") or "")
    return f"status:{status['id']}:{name}", MessageStatus(
        provider_message_id=str(status["id"]), status=name,
        chat_id=normalize_chat_id(recipient) if recipient else "unknown@s.whatsapp.net",
        error_code=str(error["code"]) if "code" in error else None, error_title=_str(error.get("title")),
        occurred_at=_at(status.get("timestamp")))  # fmt: skip


def _cloud_parse(body: bytes) -> Parsed:
    payload = _dict(_json(body))
    if payload.get("object") != "whatsapp_business_account":
        raise ValueError("not a WhatsApp Business Account notification")
    batch = _Batch("cloud")
    for entry in _list(payload.get("entry")):
        for change in _list(_dict(entry).get("changes")):
            change = _dict(change)
            if change.get("field") != "messages":
                continue
            value = _dict(change.get("value"))
            names = {str(c.get("wa_id")): str(_dict(c.get("profile")).get("name"))
                     for c in map(_dict, _list(value.get("contacts"))) if _dict(c.get("profile")).get("name")}  # fmt: skip
            for message in _list(value.get("messages")):
                batch.add("message", _cloud_message, message, names)
            for status in _list(value.get("statuses")):
                batch.add("status", _cloud_status, status)
    return batch.parsed()


# -- WAHA -----------------------------------------------------------------------------------------------------


def _waha_verify(headers: Mapping[str, str], body: bytes, secrets: WebhookSecrets) -> bool:
    if not secrets.secret:
        return False
    algorithm = headers.get("x-webhook-hmac-algorithm", "sha512").lower()
    if algorithm != "sha512":
        return False
    expected = hmac.new(secrets.secret.encode(), body, hashlib.sha512).hexdigest()
    return _same(expected, headers.get("x-webhook-hmac"))


_WAHA_ACK: dict[int, StatusName] = {-1: "FAILED", 0: "PENDING", 1: "SENT", 2: "DELIVERED", 3: "READ", 4: "PLAYED"}


def _waha_chat(jid: str) -> str:
    return normalize_chat_id(jid.replace("@c.us", "@s.whatsapp.net"))


def _waha_message(item: Any) -> tuple[str, DriverEvent]:
    payload = _object(item, "a WAHA message")
    if not payload.get("id"):
        raise ValueError("a WAHA message without id")
    from_me = bool(payload.get("fromMe"))
    chat_raw = str((payload.get("to") if from_me else payload.get("from")) or "")
    if not chat_raw:
        raise ValueError("a WAHA message without from/to")
    chat = _waha_chat(chat_raw)
    media_raw = _dict(payload.get("media"))
    media = None
    kind: MessageKind = "text"
    if payload.get("hasMedia") and media_raw.get("url"):
        mime = str(media_raw.get("mimetype") or "application/octet-stream")
        kind = ("image" if mime.startswith("image/") else "video" if mime.startswith("video/")
                else "audio" if mime.startswith("audio/") else "document")  # fmt: skip
        media = MediaRef(mime=mime, filename=_str(media_raw.get("filename")), ref=str(media_raw["url"]))
    participant = _str(payload.get("participant"))
    sender = _waha_chat(participant) if participant else chat
    data = _dict(payload.get("_data"))
    return f"msg:{payload['id']}", InboundMessage(
        provider_message_id=str(payload["id"]), chat_id=chat, chat_id_raw=chat_raw,
        chat_type="group" if chat.endswith("@g.us") else "direct", sender_id=sender,
        sender_name=_str(data.get("notifyName")) or _str(data.get("pushName")), from_me=from_me, kind=kind,
        text=_str(payload.get("body")) if media is None or payload.get("body") else None, media=media,
        reply_to_id=_str(_dict(payload.get("replyTo")).get("id")), occurred_at=_at(payload.get("timestamp")))  # fmt: skip


def _waha_ack(item: Any) -> tuple[str, DriverEvent] | None:
    payload = _object(item, "a WAHA ack")
    if not payload.get("id"):
        raise ValueError("a WAHA ack without id")
    ack = payload.get("ack")
    status = _WAHA_ACK.get(ack) if isinstance(ack, int) else None
    if status is None:
        return None
    chat_raw = str(payload.get("to") or payload.get("from") or "")
    return f"status:{payload['id']}:{status}:{payload.get('participant') or ''}", MessageStatus(
        provider_message_id=str(payload["id"]), status=status,
        chat_id=_waha_chat(chat_raw) if chat_raw else "unknown@s.whatsapp.net",
        participant=_str(payload.get("participant")), occurred_at=_at(payload.get("timestamp")))  # fmt: skip


def _waha_parse(body: bytes) -> Parsed:
    envelope = _dict(_json(body))
    event = envelope.get("event")
    batch = _Batch("waha")  # WAHA delivers one event a request: its payload is the delivery's only item
    if event in ("message", "message.any"):
        batch.add("message", _waha_message, envelope.get("payload"))
    elif event == "message.ack":
        batch.add("ack", _waha_ack, envelope.get("payload"))
    return batch.parsed()


# -- Evolution API --------------------------------------------------------------------------------------------


def _evolution_verify(headers: Mapping[str, str], body: bytes, secrets: WebhookSecrets) -> bool:
    if not secrets.secret:
        return False
    if _same(secrets.secret, headers.get("apikey")):
        return True
    try:
        envelope = _dict(_json(body))
    except ValueError:
        return False
    return _same(secrets.secret, _str(envelope.get("apikey")))


_EVOLUTION_STATUS: dict[str, StatusName] = {"ERROR": "FAILED", "PENDING": "PENDING", "SERVER_ACK": "SENT",
                                            "DELIVERY_ACK": "DELIVERED", "READ": "READ", "PLAYED": "PLAYED"}  # fmt: skip
_EVOLUTION_ACK: dict[int, StatusName] = {0: "FAILED", 1: "PENDING", 2: "SENT", 3: "DELIVERED", 4: "READ", 5: "PLAYED"}
_EVOLUTION_MEDIA: dict[str, MessageKind] = {"imageMessage": "image", "videoMessage": "video", "audioMessage": "audio",
                                            "documentMessage": "document", "stickerMessage": "sticker"}  # fmt: skip


def _evolution_message(item: Any) -> tuple[str, DriverEvent]:
    data = _object(item, "an Evolution message")
    key = _dict(data.get("key"))
    chat_raw = str(key.get("remoteJid") or "")
    if not chat_raw or not key.get("id"):
        raise ValueError("an Evolution message without key.remoteJid/key.id")
    chat = normalize_chat_id(chat_raw)
    content = _dict(data.get("message"))
    text = _str(content.get("conversation")) or _str(_dict(content.get("extendedTextMessage")).get("text"))
    kind: MessageKind = "text"
    media = None
    for field, media_kind in _EVOLUTION_MEDIA.items():
        item = _dict(content.get(field))
        if item:
            kind = "voice" if media_kind == "audio" and item.get("ptt") else media_kind
            text = _str(item.get("caption")) or text
            media = MediaRef(mime=str(item.get("mimetype") or "application/octet-stream"),
                             filename=_str(item.get("fileName")), ref=str(item.get("url") or f"evolution:{key['id']}"))  # fmt: skip
            break
    if _dict(content.get("reactionMessage")):
        kind, text = "reaction", _str(_dict(content["reactionMessage"]).get("text"))
    participant = _str(key.get("participant"))
    alt = _str(key.get("remoteJidAlt")) or _str(key.get("senderPn")) or _str(key.get("senderLid"))
    from_me = bool(key.get("fromMe"))
    return f"msg:{key['id']}", InboundMessage(
        provider_message_id=str(key["id"]), chat_id=chat, chat_id_raw=chat_raw,
        chat_type="group" if chat.endswith("@g.us") else "direct",
        sender_id=normalize_chat_id(participant) if participant else chat,
        sender_alt_id=normalize_chat_id(alt) if alt and not from_me else None,
        sender_name=_str(data.get("pushName")), from_me=from_me, kind=kind, text=text, media=media,
        occurred_at=_at(data.get("messageTimestamp")),
    )  # fmt: skip


def _evolution_status(item: Any) -> tuple[str, DriverEvent] | None:
    data = _object(item, "an Evolution status")
    key = _dict(data.get("key"))
    message_id = _str(data.get("keyId")) or _str(key.get("id"))
    chat_raw = _str(data.get("remoteJid")) or _str(key.get("remoteJid"))
    raw = data.get("status", _dict(data.get("update")).get("status"))
    status = (
        _EVOLUTION_STATUS.get(raw)
        if isinstance(raw, str)
        else _EVOLUTION_ACK.get(raw)
        if isinstance(raw, int)
        else None
    )
    if message_id is None:
        raise ValueError("an Evolution status without keyId/key.id")
    if status is None:
        return None  # an update that is not an ack (an edit, a deletion) or a status we do not know
    return f"status:{message_id}:{status}", MessageStatus(
        provider_message_id=message_id, status=status,
        chat_id=normalize_chat_id(chat_raw) if chat_raw else "unknown@s.whatsapp.net",
        participant=_str(data.get("participant")), occurred_at=datetime.now(UTC))  # fmt: skip


def _evolution_parse(body: bytes) -> Parsed:
    envelope = _dict(_json(body))
    event = str(envelope.get("event") or "").lower().replace("_", ".")
    data = envelope.get("data")
    items: list[Any] = data if isinstance(data, list) else [data]
    batch = _Batch("evolution")
    if event == "messages.upsert":
        for item in items:
            batch.add("message", _evolution_message, item)
    elif event == "messages.update":
        for item in items:
            batch.add("status", _evolution_status, item)
    return batch.parsed()


PROVIDERS: dict[str, WebhookProvider] = {
    "cloud": WebhookProvider("cloud", _cloud_verify, _cloud_parse),
    "waha": WebhookProvider("waha", _waha_verify, _waha_parse),
    "evolution": WebhookProvider("evolution", _evolution_verify, _evolution_parse),
}
"""The providers that deliver by webhook, by the name used in ``/hooks/{provider}/{connection_key}``."""
