"""The webhook protocol of each HTTP provider (pure): authenticity checks and payloads -> normalized events."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from supervisor.drivers.webhooks import PROVIDERS, WebhookSecrets, cloud_challenge
from supervisor.wire import InboundMessage, MessageStatus

SECRET = "s3cret-app-secret"
SECRETS = WebhookSecrets(SECRET, "verify-me")


def _body(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def _cloud_headers(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"x-hub-signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def _waha_headers(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"x-webhook-hmac": hmac.new(secret.encode(), body, hashlib.sha512).hexdigest(),
            "x-webhook-hmac-algorithm": "sha512"}  # fmt: skip


CLOUD = {
    "object": "whatsapp_business_account",
    "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "5511900000000", "phone_number_id": "1"},
        "contacts": [{"profile": {"name": "Maria"}, "wa_id": "5511988887777"}],
        "messages": [
            {"from": "5511988887777", "id": "wamid.A", "timestamp": "1700000000", "type": "text", "text": {"body": "Oi"}},
            {"from": "5511988887777", "id": "wamid.B", "timestamp": "1700000001", "type": "image",
             "image": {"id": "MEDIA1", "mime_type": "image/jpeg", "sha256": "abc", "caption": "foto"},
             "context": {"id": "wamid.A"}},
            {"from": "5511988887777", "id": "wamid.C", "timestamp": "1700000002", "type": "audio",
             "audio": {"id": "MEDIA2", "mime_type": "audio/ogg; codecs=opus", "voice": True}},
            {"from": "5511988887777", "id": "wamid.D", "timestamp": "1700000003", "type": "interactive",
             "interactive": {"type": "button_reply", "button_reply": {"id": "b1", "title": "Sim"}}},
            {"from": "5511988887777", "id": "wamid.E", "timestamp": "1700000004", "type": "reaction",
             "reaction": {"message_id": "wamid.A", "emoji": "👍"}},
        ],
        "statuses": [
            {"id": "wamid.OUT", "status": "delivered", "timestamp": "1700000005", "recipient_id": "5511988887777"},
            {"id": "wamid.OUT2", "status": "failed", "timestamp": "1700000006", "recipient_id": "5511988887777",
             "errors": [{"code": 131047, "title": "Re-engagement message"}]},
            {"id": "wamid.OUT3", "status": "something-new", "recipient_id": "5511988887777"},
        ]}}, {"field": "account_update", "value": {}}]}],
}  # fmt: skip


def test_cloud_signature_is_checked_on_the_raw_body() -> None:
    body = _body(CLOUD)
    cloud = PROVIDERS["cloud"]
    assert cloud.verify(_cloud_headers(body), body, SECRETS)
    assert not cloud.verify(_cloud_headers(body, "wrong"), body, SECRETS)
    assert not cloud.verify(_cloud_headers(body), body + b" ", SECRETS)  # one byte changed
    assert not cloud.verify({}, body, SECRETS)
    assert not cloud.verify({"x-hub-signature-256": "md5=abc"}, body, SECRETS)
    assert not cloud.verify(_cloud_headers(body), body, WebhookSecrets(None))  # no secret: fail closed


def test_cloud_payload_becomes_messages_and_statuses() -> None:
    parsed = PROVIDERS["cloud"].parse(_body(CLOUD))
    assert parsed.skipped == 0  # an unknown status is ignored, not malformed
    events = dict(parsed.events)
    assert set(events) == {"msg:wamid.A", "msg:wamid.B", "msg:wamid.C", "msg:wamid.D", "msg:wamid.E",
                           "status:wamid.OUT:DELIVERED", "status:wamid.OUT2:FAILED"}  # fmt: skip
    text = events["msg:wamid.A"]
    assert isinstance(text, InboundMessage)
    assert (text.chat_id, text.sender_name, text.text, text.kind) == (
        "5511988887777@s.whatsapp.net",
        "Maria",
        "Oi",
        "text",
    )
    assert text.occurred_at.timestamp() == 1700000000
    image = events["msg:wamid.B"]
    assert isinstance(image, InboundMessage) and image.media is not None
    assert (image.kind, image.text, image.media.ref, image.media.mime, image.reply_to_id) == (
        "image", "foto", "cloud:MEDIA1", "image/jpeg", "wamid.A")  # fmt: skip
    voice = events["msg:wamid.C"]
    assert isinstance(voice, InboundMessage) and voice.kind == "voice"
    button = events["msg:wamid.D"]
    assert isinstance(button, InboundMessage) and (button.kind, button.text) == ("interactive_reply", "Sim")
    reaction = events["msg:wamid.E"]
    assert isinstance(reaction, InboundMessage) and (reaction.kind, reaction.text, reaction.reply_to_id) == (
        "reaction", "👍", "wamid.A")  # fmt: skip
    failed = events["status:wamid.OUT2:FAILED"]
    assert isinstance(failed, MessageStatus)
    assert (failed.error_code, failed.error_title) == ("131047", "Re-engagement message")


def test_cloud_handshake() -> None:
    ok = {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158201444"}
    assert cloud_challenge(ok, SECRETS) == "1158201444"
    assert cloud_challenge({**ok, "hub.verify_token": "nope"}, SECRETS) is None
    assert cloud_challenge({**ok, "hub.mode": "unsubscribe"}, SECRETS) is None
    assert cloud_challenge(ok, WebhookSecrets(SECRET)) is None  # no verify token configured


@pytest.mark.parametrize("payload", [{"object": "page"}, [], "x"])
def test_cloud_rejects_what_is_not_a_whatsapp_notification(payload: Any) -> None:
    with pytest.raises(ValueError, match="not a WhatsApp Business Account"):
        PROVIDERS["cloud"].parse(_body(payload))


def test_not_json_is_an_error() -> None:
    for provider in PROVIDERS.values():
        with pytest.raises(ValueError, match="not JSON"):
            provider.parse(b"<xml/>")


WAHA_MESSAGE = {"id": "evt_1", "timestamp": 1700000000123, "event": "message", "session": "default", "payload": {
    "id": "false_5511988887777@c.us_3EB0AAA", "timestamp": 1700000000, "from": "5511988887777@c.us",
    "fromMe": False, "to": "5511900000000@c.us", "body": "Olá", "hasMedia": False,
    "_data": {"notifyName": "Maria"}}}  # fmt: skip


def test_waha_hmac_and_payloads() -> None:
    waha = PROVIDERS["waha"]
    body = _body(WAHA_MESSAGE)
    assert waha.verify(_waha_headers(body), body, SECRETS)
    assert not waha.verify(_waha_headers(body, "wrong"), body, SECRETS)
    assert not waha.verify({**_waha_headers(body), "x-webhook-hmac-algorithm": "sha1"}, body, SECRETS)
    ((ident, message),) = waha.parse(body).events
    assert ident == "msg:false_5511988887777@c.us_3EB0AAA"
    assert isinstance(message, InboundMessage)
    assert (message.chat_id, message.text, message.sender_name, message.from_me) == (
        "5511988887777@s.whatsapp.net", "Olá", "Maria", False)  # fmt: skip
    media = {**WAHA_MESSAGE, "payload": {**WAHA_MESSAGE["payload"], "hasMedia": True, "body": "",  # type: ignore[dict-item]
                                         "media": {"url": "http://waha/files/x.pdf", "mimetype": "application/pdf",
                                                   "filename": "x.pdf"}}}  # fmt: skip
    ((_, doc),) = waha.parse(_body(media)).events
    assert isinstance(doc, InboundMessage) and doc.media is not None
    assert (doc.kind, doc.media.ref, doc.media.filename, doc.text) == (
        "document",
        "http://waha/files/x.pdf",
        "x.pdf",
        None,
    )
    for ack, status in ((-1, "FAILED"), (1, "SENT"), (2, "DELIVERED"), (3, "READ"), (4, "PLAYED")):
        body = _body({"event": "message.ack", "payload": {"id": "true_x@c.us_OUT", "to": "5511988887777@c.us",
                                                          "ack": ack}})  # fmt: skip
        ((ident, event),) = waha.parse(body).events
        assert isinstance(event, MessageStatus) and (ident, event.status) == (
            f"status:true_x@c.us_OUT:{status}:",
            status,
        )
    assert waha.parse(_body({"event": "session.status", "payload": {"status": "WORKING"}})).events == []


EVOLUTION_UPSERT = {"event": "messages.upsert", "instance": "loja", "apikey": SECRET, "data": {
    "key": {"remoteJid": "5511988887777@s.whatsapp.net", "fromMe": False, "id": "3EB0EVO"},
    "pushName": "Maria", "message": {"extendedTextMessage": {"text": "Bom dia"}}, "messageType": "extendedTextMessage",
    "messageTimestamp": 1700000000}}  # fmt: skip


def test_evolution_api_key_and_payloads() -> None:
    evolution = PROVIDERS["evolution"]
    body = _body(EVOLUTION_UPSERT)
    assert evolution.verify({}, body, SECRETS)  # the instance's apikey in the envelope
    assert evolution.verify({"apikey": SECRET}, _body({**EVOLUTION_UPSERT, "apikey": None}), SECRETS)  # or a header
    assert not evolution.verify({}, _body({**EVOLUTION_UPSERT, "apikey": "other"}), SECRETS)
    assert not evolution.verify({"apikey": SECRET}, body, WebhookSecrets(None))
    ((ident, message),) = evolution.parse(body).events
    assert isinstance(message, InboundMessage)
    assert (ident, message.text, message.sender_name) == ("msg:3EB0EVO", "Bom dia", "Maria")
    lid = {**EVOLUTION_UPSERT, "data": {**EVOLUTION_UPSERT["data"], "key": {  # type: ignore[dict-item]
        "remoteJid": "123456@lid", "remoteJidAlt": "5511988887777@s.whatsapp.net", "fromMe": False, "id": "L1"},
        "message": {"imageMessage": {"url": "https://mmg.whatsapp.net/x", "mimetype": "image/jpeg", "caption": "olha"}}}}  # fmt: skip
    ((_, photo),) = evolution.parse(_body(lid)).events
    assert isinstance(photo, InboundMessage) and photo.media is not None
    assert (photo.chat_id, photo.sender_alt_id, photo.kind, photo.text) == (
        "123456@lid", "5511988887777@s.whatsapp.net", "image", "olha")  # fmt: skip
    update = {"event": "MESSAGES_UPDATE", "data": {"keyId": "3EB0OUT", "remoteJid": "5511988887777@s.whatsapp.net",
                                                   "fromMe": True, "status": "DELIVERY_ACK"}}  # fmt: skip
    ((ident, status),) = evolution.parse(_body(update)).events
    assert isinstance(status, MessageStatus) and (ident, status.status) == ("status:3EB0OUT:DELIVERED", "DELIVERED")
    legacy = {"event": "messages.update", "data": [{"key": {"id": "OLD", "remoteJid": "5511988887777@s.whatsapp.net"},
                                                    "update": {"status": 4}}]}  # fmt: skip
    ((_, read),) = evolution.parse(_body(legacy)).events
    assert isinstance(read, MessageStatus) and read.status == "READ"
    assert evolution.parse(_body({"event": "connection.update", "data": {"state": "open"}})).events == []


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "atende.webhooks" and r.levelno == logging.WARNING]


def test_evolution_skips_the_malformed_items_of_a_batch(caplog: pytest.LogCaptureFixture) -> None:
    evolution = PROVIDERS["evolution"]
    good = EVOLUTION_UPSERT["data"]
    other = {**good, "key": {"remoteJid": "5511977776666@s.whatsapp.net", "fromMe": False, "id": "3EB0EVO2"}}  # type: ignore[dict-item]
    batch = {"event": "messages.upsert", "data": [
        good, {"message": {}}, "not an object", {**good, "key": {"remoteJid": "x@nowhere.example", "id": "BAD"}},  # type: ignore[dict-item]
        other]}  # fmt: skip
    parsed = evolution.parse(_body(batch))
    assert [ident for ident, _ in parsed.events] == ["msg:3EB0EVO", "msg:3EB0EVO2"]
    assert parsed.skipped == 3
    assert len(_warnings(caplog)) == 3 and all("malformed evolution" in w for w in _warnings(caplog))
    alone = evolution.parse(_body({"event": "messages.upsert", "data": {"message": {}}}))  # one bad item, no batch
    assert (alone.events, alone.skipped) == ([], 1)
    updates = {"event": "messages.update", "data": [
        {"status": "READ"},  # no message id: malformed
        {"keyId": "E1", "remoteJid": "5511988887777@s.whatsapp.net", "status": "SOMETHING_NEW"},  # unknown: ignored
        {"keyId": "E2", "remoteJid": "5511988887777@s.whatsapp.net", "status": "READ"}]}  # fmt: skip
    parsed = evolution.parse(_body(updates))
    assert ([ident for ident, _ in parsed.events], parsed.skipped) == (["status:E2:READ"], 1)


def test_cloud_skips_the_malformed_items_of_a_batch(caplog: pytest.LogCaptureFixture) -> None:
    value = CLOUD["entry"][0]["changes"][0]["value"]  # type: ignore[index]
    good = value["messages"][0]
    payload = {"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
        "messages": [{"id": "wamid.NOFROM", "type": "text"}, "junk", {**good, "id": "wamid.BADNUM", "from": "abc"}, good,
                     {**good, "id": "wamid.FAR", "timestamp": "1e300"}],
        "statuses": [{"status": "read"}, {"id": "wamid.S", "status": "read", "recipient_id": "abc"},
                     {"id": "wamid.OK", "status": "read", "recipient_id": "5511988887777"}]}}]}]}  # fmt: skip
    before = datetime.now(UTC)
    parsed = PROVIDERS["cloud"].parse(_body(payload))
    events = dict(parsed.events)
    assert set(events) == {"msg:wamid.A", "msg:wamid.FAR", "status:wamid.OK:READ"}
    assert parsed.skipped == 5 and len(_warnings(caplog)) == 5
    far = events["msg:wamid.FAR"]
    assert before - timedelta(seconds=1) <= far.occurred_at <= datetime.now(UTC)  # out of range: received now


def test_waha_skips_a_malformed_event(caplog: pytest.LogCaptureFixture) -> None:
    waha = PROVIDERS["waha"]
    no_chat = {**WAHA_MESSAGE, "payload": {"id": "false_x", "fromMe": True, "body": "?"}}
    for payload in (no_chat, {"event": "message", "payload": "junk"}, {"event": "message.ack", "payload": {"ack": 3}}):
        parsed = waha.parse(_body(payload))
        assert (parsed.events, parsed.skipped) == ([], 1)
    assert len(_warnings(caplog)) == 3
