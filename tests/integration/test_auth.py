"""Identity hardening: forged tokens, refresh rotation with reuse detection, logout, login rate limits across
two API workers, key rotation, the permission matrix on every route, and cross-tenant access by id."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import msgspec
from litestar import Litestar

from saas.app import create_app
from saas.auth.permissions import MATRIX, Permission, matrix_markdown
from saas.auth.tokens import AUDIENCE, ISSUER, TokenService, kid_of
from saas.connections.service import create_connection
from saas.settings import Settings
from supervisor.streams import StreamKeys, append_events
from supervisor.wire import Envelope, InboundMessage, utcnow
from tenants.context import tenant_context
from tenants.passwords import hash_password
from tenants.provisioning import TenantInfo
from tests.conftest import app_client

MakeTenant = Callable[..., Awaitable[TenantInfo]]
PASSWORD = "correct horse"


async def _login(client: httpx.AsyncClient, tenant: TenantInfo, email: str | None = None) -> dict[str, Any]:
    response = await client.post("/api/v1/auth/login", json={"tenant": tenant.slug, "email": email or f"admin@{tenant.slug}.example",
                                                             "password": PASSWORD})  # fmt: skip
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _add_user(tenant: TenantInfo, email: str, role: str) -> int:
    async with tenant_context(tenant.slug) as session:
        user_id: int = await session.conn.fetchval(
            "INSERT INTO users (email, role, password_hash) VALUES ($1, $2, $3) RETURNING id",
            email, role, hash_password(PASSWORD),
        )  # fmt: skip
    return user_id


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def _sign(claims: dict[str, Any], key: str, *, kid: str, alg: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


async def test_forged_and_stale_tokens_are_all_rejected(settings: Settings, make_tenant: MakeTenant) -> None:
    tenant = await make_tenant("forge")
    other = await make_tenant("victim")
    assert settings.secret_key is not None
    key, kid = settings.secret_key, kid_of(settings.secret_key)
    async with app_client(create_app(settings)) as client:
        good = (await _login(client, tenant))["access_token"]
        base = _claims(good)
        assert (await client.get("/api/v1/tickets", headers=_bearer(good))).status_code == 200
        now = int(time.time())
        header, payload, signature = good.split(".")
        forged = {
            "alg none": ".".join(
                [
                    base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT","kid":"%s"}' % kid.encode())
                    .decode()
                    .rstrip("="),
                    payload,
                    "",
                ]
            ),
            "wrong key": _sign(base, "another-secret-key-that-is-long-enough-1234", kid=kid),
            "algorithm confusion (HS512)": _sign_quietly(base, key, kid=kid, alg="HS512"),
            "expired": _sign({**base, "exp": now - 10}, key, kid=kid),
            "not yet valid": _sign({**base, "nbf": now + 600}, key, kid=kid),
            "wrong audience": _sign({**base, "aud": "someone-else"}, key, kid=kid),
            "wrong issuer": _sign({**base, "iss": "evil"}, key, kid=kid),
            "refresh as access": _sign({**base, "typ": "refresh"}, key, kid=kid),
            "unknown kid": _sign(base, key, kid="nope"),
            "no kid": jwt.encode(base, key, algorithm="HS256"),
            "missing exp": _sign({k: v for k, v in base.items() if k != "exp"}, key, kid=kid),
            "tampered tid": ".".join([header, _b64({**base, "tid": other.id}), signature]),
            "tampered sub": ".".join([header, _b64({**base, "sub": "999"}), signature]),
            "tampered role": ".".join([header, _b64({**base, "role": "operator"}), signature]),
            "garbage": "not.a.token",
        }
        for name, token in forged.items():
            response = await client.get("/api/v1/tickets", headers=_bearer(token))
            assert response.status_code == 401, name
            assert response.json()["code"] == "invalid_token", name

        # A validly signed token that no longer matches the database.
        agent_id = await _add_user(tenant, "agent@forge.io", "agent")
        agent = (await _login(client, tenant, "agent@forge.io"))["access_token"]
        async with tenant_context(tenant.slug) as session:
            await session.conn.execute("UPDATE users SET active = false WHERE id = $1", agent_id)
        assert (await client.get("/api/v1/tickets", headers=_bearer(agent))).status_code == 401
        async with tenant_context(tenant.slug) as session:
            await session.conn.execute("UPDATE users SET active = true, token_version = token_version + 1 WHERE id = $1",
                                       agent_id)  # fmt: skip
        assert (await client.get("/api/v1/tickets", headers=_bearer(agent))).status_code == 401  # older version
        agent = (await _login(client, tenant, "agent@forge.io"))["access_token"]
        async with tenant_context(tenant.slug) as session:  # promoted without a version bump: still refused
            await session.conn.execute("UPDATE users SET role = 'admin' WHERE id = $1", agent_id)
        assert (await client.get("/api/v1/tickets", headers=_bearer(agent))).status_code == 401


def _sign_quietly(claims: dict[str, Any], key: str, *, kid: str, alg: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyJWT warns that the key is short for HS512: that is the attack
        return _sign(claims, key, kid=kid, alg=alg)


def _b64(claims: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")


async def test_refresh_rotates_and_reuse_revokes_the_whole_login(settings: Settings, make_tenant: MakeTenant) -> None:
    tenant = await make_tenant("refresh")
    async with app_client(create_app(settings)) as client:
        first = await _login(client, tenant)
        second = (await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})).json()
        assert second["refresh_token"] != first["refresh_token"]
        assert (await client.get("/api/v1/tickets", headers=_bearer(second["access_token"]))).status_code == 200
        third = (await client.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})).json()

        replay = await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
        assert (replay.status_code, replay.json()["code"]) == (401, "refresh_token_reused")
        after = await client.post("/api/v1/auth/refresh", json={"refresh_token": third["refresh_token"]})
        assert after.status_code == 401  # the family is revoked: the thief and the owner both lose it

        other = await _login(client, tenant)  # another login is another family
        assert (
            await client.post("/api/v1/auth/logout", json={"refresh_token": other["refresh_token"]})
        ).status_code == 204
        gone = await client.post("/api/v1/auth/refresh", json={"refresh_token": other["refresh_token"]})
        assert gone.status_code == 401
        access_as_refresh = await client.post("/api/v1/auth/refresh", json={"refresh_token": other["access_token"]})
        assert access_as_refresh.status_code == 401
    async with tenant_context(tenant.slug) as session:
        assert await session.conn.fetchval("SELECT count(*) FROM audit_log WHERE action = 'auth.refresh_reused'") == 1


async def test_eleventh_failed_login_is_429_across_two_api_workers(settings: Settings, make_tenant: MakeTenant) -> None:
    tenant = await make_tenant("brute")
    body = {"tenant": tenant.slug, "email": f"admin@{tenant.slug}.example", "password": "wrong password"}
    async with app_client(create_app(settings)) as one, app_client(create_app(settings)) as two:
        statuses = []
        for i in range(10):
            statuses.append((await (one if i % 2 else two).post("/api/v1/auth/login", json=body)).status_code)
        assert statuses == [401] * 10
        blocked = await one.post("/api/v1/auth/login", json={**body, "password": PASSWORD})  # even the right one
        assert blocked.status_code == 429
        assert blocked.json()["code"] == "rate_limited"
        assert 0 < int(blocked.headers["retry-after"]) <= 15 * 60

        # Concurrent attempts on both workers: exactly ten get through to the password check.
        victim = await make_tenant("burst")
        burst = {"tenant": victim.slug, "email": f"admin@{victim.slug}.example", "password": "wrong password"}
        results = await asyncio.gather(
            *((one if i % 2 else two).post("/api/v1/auth/login", json=burst) for i in range(30))
        )
        codes = sorted(r.status_code for r in results)
        assert codes.count(401) == 10 and codes.count(429) == 20


async def test_rotated_keys_keep_old_tokens_valid_until_dropped(settings: Settings, make_tenant: MakeTenant) -> None:
    tenant = await make_tenant("rotate")
    old_key, new_key = settings.secret_key or "", "a-brand-new-signing-key-" + "y" * 24
    async with app_client(create_app(settings)) as client:
        old_token = (await _login(client, tenant))["access_token"]
    rotated = msgspec.structs.replace(settings, secret_key=new_key, previous_secret_keys=(old_key,))
    async with app_client(create_app(rotated)) as client:
        assert (await client.get("/api/v1/tickets", headers=_bearer(old_token))).status_code == 200
        new_token = (await _login(client, tenant))["access_token"]
        assert jwt.get_unverified_header(new_token)["kid"] == kid_of(new_key)
    dropped = msgspec.structs.replace(settings, secret_key=new_key, previous_secret_keys=())
    async with app_client(create_app(dropped)) as client:
        assert (await client.get("/api/v1/tickets", headers=_bearer(old_token))).status_code == 401
        assert (await client.get("/api/v1/tickets", headers=_bearer(new_token))).status_code == 200


def _api_routes(app: Litestar) -> list[tuple[str, str, Any]]:
    found = []
    for route in app.routes:
        if not route.path.startswith("/api/v1"):
            continue
        for handler in getattr(route, "route_handlers", []):
            for method in sorted(getattr(handler, "http_methods", {"WS"})):
                if method != "OPTIONS":  # Litestar's automatic CORS preflight handlers
                    found.append((method, route.path, handler))
    return found


PUBLIC = {("POST", "/api/v1/auth/login"), ("POST", "/api/v1/auth/refresh"), ("POST", "/api/v1/auth/logout"),
          ("POST", "/api/v1/auth/accept-invite"), ("POST", "/api/v1/auth/reset-password"),
          ("POST", "/api/v1/platform/auth/login"), ("WS", "/api/v1/events")}  # fmt: skip


def test_every_api_route_declares_its_permission(settings: Settings) -> None:
    app = create_app(settings)
    for method, path, handler in _api_routes(app):
        if (method, path) in PUBLIC:
            continue
        permissions = [getattr(g, "permission", None) for g in handler.guards or []]
        assert any(isinstance(p, Permission) for p in permissions), f"{method} {path} declares no permission"


def test_readme_shows_the_matrix_in_code() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert matrix_markdown() in readme
    assert all(MATRIX[p] for p in Permission)


async def test_operator_role_cannot_use_tenant_routes(settings: Settings, make_tenant: MakeTenant) -> None:
    tenant = await make_tenant("roles")
    assert settings.secret_key is not None
    tokens = TokenService.from_secrets(settings.secret_key)
    operator = tokens.issue(user_id=1, tenant_id=tenant.id, version=0, role="operator")
    async with app_client(create_app(settings)) as client:
        response = await client.get("/api/v1/tickets", headers=_bearer(operator))
        assert (response.status_code, response.json()["code"]) == (403, "permission_denied")


async def test_another_tenants_ids_are_not_found_on_every_route(settings: Settings, make_tenant: MakeTenant) -> None:
    """Generated from the route table: every route with an id, tenant B's token on tenant A's id."""
    a, b = await make_tenant("owner"), await make_tenant("intruder")
    keys = StreamKeys(settings.redis_prefix, settings.stream_shards)
    from redis.asyncio import Redis

    from saas.router.worker import RouterWorker

    redis = Redis.from_url(settings.redis_url or "")
    try:
        async with tenant_context(a.slug) as session:
            connection = await create_connection(
                session, name="A", provider="simulator", business_number="+5511911110000"
            )
        chats = [f"55119222200{i:02d}@s.whatsapp.net" for i in range(3)]
        await append_events(redis, keys, [
            Envelope(event_id=f"x{i}", tenant_id=a.id, connection_id=connection.id, provider="simulator",
                     received_at=utcnow(), event=InboundMessage(provider_message_id=f"p{i}", chat_id=c, chat_id_raw=c,
                                                                sender_id=c, text="private", occurred_at=utcnow()))
            for i, c in enumerate(chats)])  # fmt: skip
        worker = RouterWorker(redis, keys)
        for shard in range(keys.shards):
            consumer = worker.consumer(shard)
            await consumer.ensure_group()
            if entries := await consumer.read(100, block_ms=None):
                await worker.process(consumer, entries)
    finally:
        await redis.aclose()
    for i in range(3):  # A has more users than B, so A's highest user id does not exist in B
        await _add_user(a, f"staff{i}@owner.io", "agent")
    from saas.auth import api_tokens

    async with tenant_context(a.slug) as session:
        await api_tokens.create(session, actor_id=1, name="A's CRM", scopes=["tickets:read"], expires_in_days=None,
                                origin=None)  # fmt: skip
        await session.conn.execute("INSERT INTO queues (name) VALUES ('Sales'), ('Support')")
        await session.conn.execute("INSERT INTO tags (name) VALUES ('vip'), ('late')")
        await session.conn.execute(
            "INSERT INTO contact_notes (contact_id, body) SELECT max(id), 'secret' FROM contacts"
        )
        await session.conn.execute("INSERT INTO quick_replies (shortcut, body, scope) VALUES ('hi', 'Hello', 'tenant')")
    snapshot = ("SELECT (SELECT json_agg(t ORDER BY id) FROM (SELECT id, status, unread_count, user_id, queue_id, priority,"
                " snoozed_until, connection_id FROM tickets) t)::text,"
                " (SELECT json_agg(u ORDER BY id) FROM (SELECT id, role, active, name, token_version, capacity FROM users) u)::text,"
                " (SELECT count(*) FROM messages),"
                " (SELECT json_agg(k ORDER BY id) FROM (SELECT id, revoked_at FROM api_tokens) k)::text,"
                " (SELECT json_agg(q ORDER BY id) FROM (SELECT id, name FROM queues) q)::text,"
                " (SELECT json_agg(c ORDER BY id) FROM (SELECT id, name, custom_fields, blocked_at FROM contacts) c)::text,"
                " (SELECT json_agg(g ORDER BY id) FROM (SELECT id, name FROM tags) g)::text,"
                " (SELECT count(*) FROM contact_notes) + (SELECT count(*) FROM ticket_tags) + (SELECT count(*) FROM contact_tags),"
                " (SELECT json_agg(r ORDER BY id) FROM (SELECT id, body FROM quick_replies) r)::text,"
                " (SELECT json_agg(c ORDER BY id) FROM (SELECT id, name, greeting, bot FROM connections) c)::text")  # fmt: skip
    async with tenant_context(a.slug) as session:
        ids = {"ticket_id": await session.conn.fetchval("SELECT max(id) FROM tickets"),
               "user_id": await session.conn.fetchval("SELECT max(id) FROM users"),
               "token_id": await session.conn.fetchval("SELECT max(id) FROM api_tokens"),
               "queue_id": await session.conn.fetchval("SELECT max(id) FROM queues"),
               "contact_id": await session.conn.fetchval("SELECT max(id) FROM contacts"),
               "note_id": await session.conn.fetchval("SELECT max(id) FROM contact_notes"),
               "tag_id": await session.conn.fetchval("SELECT max(id) FROM tags"),
               "reply_id": await session.conn.fetchval("SELECT max(id) FROM quick_replies"),
               "connection_id": await session.conn.fetchval("SELECT max(id) FROM connections"),
               "message_id": await session.conn.fetchval("SELECT max(id) FROM messages")}  # fmt: skip
        before = await session.conn.fetchrow(snapshot)
    async with tenant_context(b.slug) as session:
        assert await session.conn.fetchval("SELECT max(id) FROM users") < ids["user_id"]
    # A valid body for every request type a route takes (a new route with a new body type must add one here).
    bodies: dict[str, dict[str, Any]] = {
        "SendMessage": {"text": "intrusion"}, "UserUpdate": {"role": "admin"}, "QueueUpdate": {"name": "hijacked"},
        "NoneType": {}, "NoteIn": {"text": "intrusion"}, "AssignTicket": {"user_id": 1},
        "TransferTicket": {"queue_id": None}, "saas.tickets.schemas.CloseTicket | None": {}, "saas.tickets.schemas.ReopenTicket | None": {},
        "TicketUpdate": {"priority": "urgent"}, "TicketTags": {"tag_ids": []}, "ContactUpdate": {"name": "hijacked"},
        "ContactTags": {"tag_ids": []}, "MergeContacts": {"other_id": 1}, "ContactNoteIn": {"text": "intrusion"},
        "TagUpdate": {"name": "hijacked"}, "QuickReplyUpdate": {"body": "hijacked"}, "ConnectionUpdate": {"name": "x"},
        "MediaUpload": {},
    }  # fmt: skip
    app = create_app(settings)
    async with app_client(app) as client:
        intruder = (await _login(client, b))["access_token"]
        checked = 0
        for method, path, handler in _api_routes(app):
            params = re.findall(r"{(\w+):int}", path)
            if not params or method == "WS":
                continue
            url = path
            for name in params:
                assert name in ids, f"{path}: no fixture id for {name}"
                url = url.replace(f"{{{name}:int}}", str(ids[name]))
            data = handler.parsed_fn_signature.parameters.get("data")
            body_type = getattr(getattr(data, "annotation", None), "__name__", "NoneType") if data else "NoneType"
            if data is not None and hasattr(data, "annotation"):
                inner = getattr(data.annotation, "__origin__", data.annotation)
                body_type = getattr(inner, "__name__", str(inner))
            assert body_type in bodies, f"{method} {path}: add a sample body for {body_type}"
            if body_type == "MediaUpload":  # multipart: a real file
                response = await client.request(method, url, headers=_bearer(intruder),
                                                files={"file": ("x.txt", b"hello", "text/plain")})  # fmt: skip
            else:
                response = await client.request(method, url, headers=_bearer(intruder), json=bodies[body_type] or None)
            assert response.status_code == 404, f"{method} {path}: {response.status_code} {response.text}"
            checked += 1
        assert checked >= 8
    async with tenant_context(a.slug) as session:
        assert await session.conn.fetchrow(snapshot) == before


def test_issued_tokens_carry_every_required_claim(settings: Settings) -> None:
    assert settings.secret_key is not None
    token = TokenService.from_secrets(settings.secret_key).issue(user_id=7, tenant_id=3, version=2, role="agent")
    claims = _claims(token)
    assert {"iss", "aud", "exp", "iat", "nbf", "jti", "sub", "tid", "typ", "ver", "role"} <= set(claims)
    assert (claims["iss"], claims["aud"], claims["typ"]) == (ISSUER, AUDIENCE, "access")
    assert jwt.get_unverified_header(token)["kid"] == kid_of(settings.secret_key)


async def test_api_rate_limit_per_caller(settings: Settings, make_tenant: MakeTenant) -> None:
    tenant = await make_tenant("chatty")
    tight = msgspec.structs.replace(settings, api_rate_per_min=10)
    async with app_client(create_app(tight)) as one, app_client(create_app(tight)) as two:
        auth = _bearer((await _login(one, tenant))["access_token"])
        codes = [(await (one if i % 2 else two).get("/api/v1/tickets", headers=auth)).status_code for i in range(12)]
        assert codes == [200] * 10 + [429, 429]
        limited = await one.get("/api/v1/tickets", headers=auth)
        assert limited.json()["code"] == "rate_limited" and int(limited.headers["retry-after"]) <= 60


async def test_no_ambient_credentials_so_cross_site_requests_fail(settings: Settings, make_tenant: MakeTenant) -> None:
    """CSRF: the API authenticates only with an explicit bearer token (never a cookie), accepts only JSON bodies,
    and the events socket checks the Origin (see test_router). A forged cross-site form gets nowhere."""
    tenant = await make_tenant("csrf")
    async with app_client(create_app(settings)) as client:
        token = (await _login(client, tenant))["access_token"]
        cross_site = {"Origin": "https://evil.example", "Content-Type": "application/x-www-form-urlencoded",
                      "Cookie": f"access_token={token}; session={token}"}  # fmt: skip
        reply = await client.post("/api/v1/tickets/1/messages", headers=cross_site, content=b"text=pwned")
        assert reply.status_code == 401
        login = await client.post("/api/v1/auth/login", headers=cross_site,
                                  content=f"tenant={tenant.slug}&email=admin@{tenant.slug}.example&password=x".encode())  # fmt: skip
        assert login.status_code == 400  # login CSRF: form posts are not JSON and are refused
        ok = await client.get("/api/v1/tickets", headers=_bearer(token))
        assert ok.headers["x-content-type-options"] == "nosniff"
        assert ok.headers["x-frame-options"] == "DENY"
        assert ok.headers["cache-control"] == "no-store"


async def test_api_tokens_are_scoped_shown_once_hashed_and_revocable(
    settings: Settings, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant("integr")
    async with app_client(create_app(settings)) as client:
        admin = _bearer((await _login(client, tenant))["access_token"])
        escalate = await client.post("/api/v1/api-tokens", headers=admin,
                                     json={"name": "bad", "scopes": ["users:manage"]})  # fmt: skip
        assert (escalate.status_code, escalate.json()["code"]) == (400, "invalid_input")
        created = await client.post("/api/v1/api-tokens", headers=admin,
                                    json={"name": "CRM sync", "scopes": ["tickets:read"]})  # fmt: skip
        assert created.status_code == 201
        token, token_id = created.json()["token"], created.json()["api_token"]["id"]
        listed = (await client.get("/api/v1/api-tokens", headers=admin)).json()["items"]
        assert token not in json.dumps(listed) and listed[0]["display"] == token[:12] + "..."
        async with tenant_context(tenant.slug) as session:
            stored = await session.conn.fetchval("SELECT token_hash FROM api_tokens WHERE id = $1", token_id)
        assert token.encode() not in stored  # only a hash is kept

        integration = _bearer(token)
        assert (await client.get("/api/v1/tickets", headers=integration)).status_code == 200
        denied = await client.post("/api/v1/tickets/1/messages", headers=integration, json={"text": "x"})
        assert (denied.status_code, denied.json()["code"]) == (403, "permission_denied")  # not in its scopes
        assert (await client.get("/api/v1/api-tokens", headers=integration)).status_code == 403
        forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        assert (await client.get("/api/v1/tickets", headers=_bearer(forged))).status_code == 401
        other = await make_tenant("integr2")
        moved = token.replace(f"atd_{tenant.id}_", f"atd_{other.id}_")  # the same secret presented to another tenant
        assert (await client.get("/api/v1/tickets", headers=_bearer(moved))).status_code == 401

        assert (await client.post(f"/api/v1/api-tokens/{token_id}/revoke", headers=admin)).json()["revoked_at"]
        assert (await client.get("/api/v1/tickets", headers=integration)).status_code == 401
        actions = [e["action"] for e in (await client.get("/api/v1/audit", headers=admin)).json()["items"]]
        assert actions[:2] == ["api_token.revoked", "api_token.created"]
