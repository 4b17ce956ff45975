"""Provider webhooks on the real stack: a signed Cloud API / WAHA / Evolution delivery becomes a ticket through the
router; forged, unsigned or misaddressed deliveries leave nothing behind; secrets are sealed at rest and never
returned; each connection's delivery rate is limited atomically across two API workers, and only authentic deliveries
count against it; forgeries have a small budget of their own; a known connection is served from a short cache (no
database query per delivery) that still picks up a changed secret."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator

import httpx
import msgspec
import pytest
from redis.asyncio import Redis

from saas.app import create_app
from saas.connections.service import create_connection
from saas.hooks import controllers as hooks
from saas.router.worker import RouterWorker
from saas.settings import Settings
from supervisor.streams import StreamKeys
from tenants import db
from tenants.context import tenant_context
from tenants.provisioning import TenantInfo
from tenants.secrets import is_sealed
from tests.conftest import app_client, login
from tests.integration.conftest import MakeTenant, drain, tenant_rows, tenant_value

SECRET = "meta-app-secret-0123456789"


@pytest.fixture(autouse=True)
def _fresh_target_cache() -> Iterator[None]:
    """Each test starts with nothing cached (the cache is per process and outlives an app)."""
    hooks.clear_target_cache()
    yield
    hooks.clear_target_cache()


def _cloud(message_id: str, text: str, phone: str = "5511988887777") -> bytes:
    return json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [{"field": "messages",
        "value": {"contacts": [{"profile": {"name": "Maria"}, "wa_id": phone}],
                  "messages": [{"from": phone, "id": message_id, "timestamp": "1700000000", "type": "text",
                                "text": {"body": text}}]}}]}]}).encode()  # fmt: skip


def _signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"x-hub-signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
            "content-type": "application/json"}  # fmt: skip


async def _setup(settings: Settings, make_tenant: MakeTenant, provider: str) -> tuple[TenantInfo, int, str, Settings]:
    tenant = await make_tenant("hooks")
    async with tenant_context(tenant.slug) as session:
        connection = await create_connection(session, name="WABA", provider=provider, desired_state="stopped",
                                             business_number="+55119" + str(uuid.uuid4().int)[:8])  # fmt: skip
    keys = StreamKeys(f"{settings.redis_prefix}:{uuid.uuid4().hex[:6]}", shards=2)
    own = msgspec.structs.replace(settings, redis_prefix=keys.prefix, stream_shards=keys.shards)
    return tenant, connection.id, connection.connection_key, own


async def _route(settings: Settings, redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    try:
        await drain(RouterWorker(redis, StreamKeys(settings.redis_prefix, settings.stream_shards)))
    finally:
        await redis.aclose()


async def test_cloud_api_deliveries_signed_sealed_and_routed(
    settings: Settings, make_tenant: MakeTenant, redis_url: str
) -> None:
    tenant, connection_id, key, own = await _setup(settings, make_tenant, "cloud")
    path = f"/hooks/cloud/{key}"
    async with app_client(create_app(own)) as client:
        admin = await login(client, tenant.slug)
        body = _cloud("wamid.1", "Oi, vim pelo webhook")
        unconfigured = await client.post(path, content=body, headers=_signed(body))
        assert (unconfigured.status_code, unconfigured.json()["code"]) == (401, "invalid_signature")  # fail closed

        saved = await client.patch(f"/api/v1/connections/{connection_id}", headers=admin,
                                   json={"webhook_secret": SECRET, "webhook_verify_token": "my-verify-token"})  # fmt: skip
        assert saved.status_code == 200, saved.text
        assert (saved.json()["webhook_path"], saved.json()["has_webhook_secret"]) == (path, True)
        assert SECRET not in saved.text
        async with tenant_context(tenant.slug) as session:
            stored = await session.conn.fetchrow("SELECT webhook_secret, webhook_verify_token FROM connections")
        assert stored is not None and all(is_sealed(v) and SECRET.encode() not in v for v in stored)
        audit = (await client.get("/api/v1/audit", headers=admin)).json()["items"][0]
        assert audit["details"]["webhook_secret"] == "changed"  # the audit log names the change, never the value

        handshake = await client.get(path, params={"hub.mode": "subscribe", "hub.verify_token": "my-verify-token",
                                                   "hub.challenge": "73921"})  # fmt: skip
        assert (handshake.status_code, handshake.text) == (200, "73921")
        refused = await client.get(path, params={"hub.mode": "subscribe", "hub.verify_token": "guess",
                                                 "hub.challenge": "1"})  # fmt: skip
        assert refused.status_code == 401

        forged = await client.post(path, content=body, headers=_signed(body, "not-the-secret"))
        assert forged.status_code == 401
        tampered = await client.post(path, content=body.replace(b"Oi", b"Ei"), headers=_signed(body))
        assert tampered.status_code == 401
        unsigned = await client.post(path, content=body, headers={"content-type": "application/json"})
        assert unsigned.status_code == 401
        for wrong in (f"/hooks/waha/{key}", f"/hooks/cloud/{'x' * 32}", "/hooks/telegram/" + key):
            assert (await client.post(wrong, content=body, headers=_signed(body))).status_code == 404
        await _route(own, redis_url)
        assert await tenant_value(tenant.slug, "SELECT count(*) FROM messages") == 0  # nothing unproven was kept

        for _ in range(2):  # Meta retries deliveries: the second is the same message
            accepted = await client.post(path, content=body, headers=_signed(body))
            assert (accepted.status_code, accepted.json()) == (200, {"accepted": 1, "skipped": 0})
        junk = b'{"object": "whatsapp_business_account", "entry": "nope"}'
        assert (await client.post(path, content=junk, headers=_signed(junk))).json() == {"accepted": 0, "skipped": 0}
        not_json = b"<html>"
        assert (await client.post(path, content=not_json, headers=_signed(not_json))).status_code == 400
    await _route(own, redis_url)
    assert await tenant_value(tenant.slug, "SELECT count(*) FROM messages") == 1
    assert await tenant_value(tenant.slug, "SELECT push_name FROM contacts") == "Maria"
    assert await tenant_value(tenant.slug, "SELECT count(*) FROM tickets") == 1


async def test_waha_and_evolution_deliveries(settings: Settings, make_tenant: MakeTenant, redis_url: str) -> None:
    for provider in ("waha", "evolution"):
        tenant, connection_id, key, own = await _setup(settings, make_tenant, provider)
        async with app_client(create_app(own)) as client:
            admin = await login(client, tenant.slug)
            await client.patch(f"/api/v1/connections/{connection_id}", headers=admin, json={"webhook_secret": SECRET})
            if provider == "waha":
                text = "olá do WAHA"
                body = json.dumps({"event": "message", "session": "default", "payload": {
                    "id": "false_5511977776666@c.us_1", "timestamp": 1700000000, "from": "5511977776666@c.us",
                    "fromMe": False, "body": text}}).encode()  # fmt: skip
                good = {"x-webhook-hmac": hmac.new(SECRET.encode(), body, hashlib.sha512).hexdigest(),
                        "x-webhook-hmac-algorithm": "sha512"}  # fmt: skip
                bad = {"x-webhook-hmac": "00" * 64}
            else:
                text = "olá da Evolution"
                body = json.dumps({"event": "messages.upsert", "instance": "loja", "data": {
                    "key": {"remoteJid": "5511977776666@s.whatsapp.net", "fromMe": False, "id": "EVO1"},
                    "pushName": "Rui", "message": {"conversation": text},
                    "messageTimestamp": 1700000000}}).encode()  # fmt: skip
                good, bad = {"apikey": SECRET}, {"apikey": "wrong-key-123"}
            assert (await client.post(f"/hooks/{provider}/{key}", content=body, headers=bad)).status_code == 401
            accepted = await client.post(f"/hooks/{provider}/{key}", content=body, headers=good)
            assert (accepted.status_code, accepted.json()) == (200, {"accepted": 1, "skipped": 0}), provider
        await _route(own, redis_url)
        assert [r["body"] for r in await tenant_rows(tenant.slug, "SELECT body FROM messages")] == [text], provider


@pytest.mark.parametrize("workers", [2])
async def test_delivery_rate_is_limited_per_connection_across_workers(
    settings: Settings, make_tenant: MakeTenant, workers: int
) -> None:
    tenant, connection_id, key, own = await _setup(settings, make_tenant, "cloud")
    own = msgspec.structs.replace(own, webhook_rate_per_min=10)
    _, _, other_key, _ = await _setup(settings, make_tenant, "cloud")
    async with app_client(create_app(own)) as first, app_client(create_app(own)) as second:
        admin = await login(first, tenant.slug)
        await first.patch(f"/api/v1/connections/{connection_id}", headers=admin, json={"webhook_secret": SECRET})
        bodies = [_cloud(f"wamid.{i}", f"m{i}") for i in range(30)]
        clients = [first, second]
        answers = await asyncio.gather(*(clients[i % workers].post(f"/hooks/cloud/{key}", content=b,
                                                                   headers=_signed(b)) for i, b in enumerate(bodies)))  # fmt: skip
        statuses = [a.status_code for a in answers]
        assert statuses.count(200) == 10 and statuses.count(429) == 20
        limited = next(a for a in answers if a.status_code == 429)
        assert limited.json()["code"] == "rate_limited" and int(limited.headers["retry-after"]) > 0
        # Another connection has its own budget (it has no secret, so it stops at the signature, before the limit).
        assert (
            await second.post(f"/hooks/cloud/{other_key}", content=bodies[0], headers=_signed(bodies[0]))
        ).status_code == 401


async def _statuses(client: httpx.AsyncClient, path: str, bodies: list[bytes], secret: str) -> list[int]:
    answers = [await client.post(path, content=b, headers=_signed(b, secret)) for b in bodies]
    for answer in answers:
        if answer.status_code == 429:
            assert answer.json()["code"] == "rate_limited" and int(answer.headers["retry-after"]) > 0
    return [a.status_code for a in answers]


async def test_forgeries_have_their_own_budget_and_cannot_use_up_the_delivery_rate(
    settings: Settings, make_tenant: MakeTenant
) -> None:
    tenant, connection_id, key, own = await _setup(settings, make_tenant, "cloud")
    own = msgspec.structs.replace(own, webhook_rate_per_min=10)
    path = f"/hooks/cloud/{key}"
    async with app_client(create_app(own)) as client:
        admin = await login(client, tenant.slug)
        await client.patch(f"/api/v1/connections/{connection_id}", headers=admin, json={"webhook_secret": SECRET})
        budget = hooks.FAILED_PROOFS.max_events
        forged = await _statuses(client, path, [_cloud(f"wamid.f{i}", "x") for i in range(budget + 10)], "guess")
        assert forged == [401] * budget + [429] * 10  # a flood of bad signatures is refused cheaply
        # None of that touched the connection's delivery rate: its whole budget is left for the provider.
        signed = await _statuses(client, path, [_cloud(f"wamid.s{i}", "ok") for i in range(11)], SECRET)
        assert signed == [200] * 10 + [429]


async def test_a_known_connection_is_served_without_the_database(settings: Settings, make_tenant: MakeTenant) -> None:
    tenant, connection_id, key, own = await _setup(settings, make_tenant, "cloud")
    path = f"/hooks/cloud/{key}"
    async with app_client(create_app(own)) as client:
        admin = await login(client, tenant.slug)
        await client.patch(f"/api/v1/connections/{connection_id}", headers=admin, json={"webhook_secret": SECRET})
        assert await _statuses(client, path, [_cloud("wamid.warm", "oi")], SECRET) == [200]
        budget = hooks.FAILED_PROOFS.max_events
        assert await _statuses(client, path, [_cloud(f"wamid.f{i}", "x") for i in range(budget)], "guess") == (
            [401] * budget)  # fmt: skip
        assert own.database_url is not None
        await db.stop()  # from here on, any query would fail the request with a 500
        try:
            assert await _statuses(client, path, [_cloud(f"wamid.g{i}", "x") for i in range(5)], "guess") == [429] * 5
            assert await _statuses(client, path, [_cloud(f"wamid.s{i}", "ok") for i in range(3)], SECRET) == [200] * 3
        finally:
            await db.start(own.database_url)


async def test_a_changed_secret_is_picked_up_within_the_cache_ttl(
    settings: Settings, make_tenant: MakeTenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant, connection_id, key, own = await _setup(settings, make_tenant, "cloud")
    path = f"/hooks/cloud/{key}"
    first, second, third = SECRET, "rotated-secret-1", "rotated-secret-2"
    async with app_client(create_app(own)) as client:
        admin = await login(client, tenant.slug)

        async def rotate(secret: str) -> None:
            saved = await client.patch(f"/api/v1/connections/{connection_id}", headers=admin,
                                       json={"webhook_secret": secret})  # fmt: skip
            assert saved.status_code == 200, saved.text

        await rotate(first)
        assert await _statuses(client, path, [_cloud("wamid.1", "a")], first) == [200]  # now cached
        await rotate(second)
        # A delivery proving the new secret works at once (a failed proof looks the connection up again) ...
        assert await _statuses(client, path, [_cloud("wamid.2", "b")], second) == [200]
        assert await _statuses(client, path, [_cloud("wamid.3", "c")], first) == [401]  # ... and the old one is out
        await rotate(third)
        # Until the cached answer expires the previous secret may still be accepted; never beyond the TTL.
        assert await _statuses(client, path, [_cloud("wamid.4", "d")], second) == [200]
        later = time.monotonic() + hooks.TARGET_TTL_S + 1
        monkeypatch.setattr(hooks._targets, "clock", lambda: later)
        assert await _statuses(client, path, [_cloud("wamid.5", "e")], second) == [401]
        assert await _statuses(client, path, [_cloud("wamid.6", "f")], third) == [200]
