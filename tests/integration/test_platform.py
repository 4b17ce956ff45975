"""Platform operators against the real app: login and its rate limit, tenant provisioning, suspension and
resumption, the audit trail, and the wall between operator and tenant tokens in both directions."""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, cast

import httpx
import jwt
import pytest
from litestar import Litestar
from litestar.types import ASGIApp, Receive, Scope, Send

from saas.app import create_app
from saas.auth.principal import principal_context
from saas.auth.tokens import InvalidToken, TokenService, kid_of
from saas.platform.controllers import PlatformController
from saas.platform.service import (
    OPERATOR_TOKEN_TTL_S,
    OperatorExists,
    OperatorNotFound,
    create_operator,
    operator_context,
    set_operator_active,
)
from saas.settings import Settings
from tenants.passwords import WeakPassword
from tenants.provisioning import TenantInfo
from tests.conftest import app_client

MakeTenant = Callable[..., Awaitable[TenantInfo]]
PASSWORD = "correct horse"
OPERATOR_PASSWORD = "operator battery staple"
# Logins from this module come from their own address, so the per-address login limit (shared by the whole
# test session on 127.0.0.1) neither trips here nor is used up for other modules.
DESK_ADDRESS = "203.0.113.10"


def _platform_app(settings: Settings) -> Litestar:
    """The real app with the platform controller (registered here until ``create_app`` mounts it)."""
    app = create_app(settings)
    if not any(route.path.startswith(PlatformController.path) for route in app.routes):
        app.register(PlatformController)
    return app


def _from_desk(app: ASGIApp) -> ASGIApp:
    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            cast(dict[str, Any], scope)["client"] = (DESK_ADDRESS, 50000)
        await app(scope, receive, send)

    return wrapped


async def _operator() -> tuple[int, str]:
    email = f"ops-{uuid.uuid4().hex[:10]}@atende.example"
    return await create_operator(email, "Platform Ops", OPERATOR_PASSWORD), email


async def _operator_token(client: httpx.AsyncClient, email: str) -> str:
    response = await client.post("/api/v1/platform/auth/login", json={"email": email, "password": OPERATOR_PASSWORD})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def _tenant_token(client: httpx.AsyncClient, slug: str) -> str:
    response = await client.post("/api/v1/auth/login", json={"tenant": slug, "email": f"admin@{slug}.example",
                                                             "password": PASSWORD})  # fmt: skip
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def _b64(claims: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")


def _platform_routes(app: Litestar) -> list[tuple[str, str]]:
    """Every guarded platform route (all but the login), from the app's route table."""
    found = []
    for route in app.routes:
        if route.path.startswith("/api/v1/platform") and route.path != "/api/v1/platform/auth/login":
            for handler in getattr(route, "route_handlers", []):
                found += [(m, route.path) for m in sorted(handler.http_methods) if m != "OPTIONS"]
    return found


async def test_operator_login_gives_an_access_token_only(settings: Settings) -> None:
    operator_id, email = await _operator()
    async with app_client(_from_desk(_platform_app(settings))) as client:
        response = await client.post("/api/v1/platform/auth/login",
                                     json={"email": email.upper(), "password": OPERATOR_PASSWORD})  # fmt: skip
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"access_token", "token_type", "expires_in"}
        assert (body["token_type"], body["expires_in"]) == ("bearer", OPERATOR_TOKEN_TTL_S)
        claims = _claims(body["access_token"])
        assert (claims["sub"], claims["tid"], claims["role"], claims["typ"]) == (
            str(operator_id),
            0,
            "operator",
            "access",
        )
        assert claims["exp"] - claims["iat"] == OPERATOR_TOKEN_TTL_S

        for wrong in ({"email": email, "password": "not the password"},
                      {"email": "nobody@atende.example", "password": OPERATOR_PASSWORD}):  # fmt: skip
            refused = await client.post("/api/v1/platform/auth/login", json=wrong)
            assert (refused.status_code, refused.json()["code"]) == (401, "invalid_credentials")
        # An operator is not a user of any tenant, and an access token is no refresh token.
        as_tenant = await client.post("/api/v1/auth/login", json={"tenant": "platform", "email": email,
                                                                  "password": OPERATOR_PASSWORD})  # fmt: skip
        assert as_tenant.status_code == 401
        as_refresh = await client.post("/api/v1/auth/refresh", json={"refresh_token": body["access_token"]})
        assert as_refresh.status_code == 401


async def test_eleventh_failed_operator_login_is_429(settings: Settings) -> None:
    _operator_id, email = await _operator()
    async with app_client(_from_desk(_platform_app(settings))) as client:
        statuses = []
        for _ in range(10):
            response = await client.post("/api/v1/platform/auth/login", json={"email": email, "password": "wrong one"})
            statuses.append(response.status_code)
        assert statuses == [401] * 10
        blocked = await client.post(
            "/api/v1/platform/auth/login", json={"email": email, "password": OPERATOR_PASSWORD}
        )  # even the right one
        assert (blocked.status_code, blocked.json()["code"]) == (429, "rate_limited")
        assert 0 < int(blocked.headers["retry-after"]) <= 15 * 60


async def test_operator_provisions_suspends_and_resumes_a_tenant(
    settings: Settings, unique_slug: Callable[[str], str], caplog: pytest.LogCaptureFixture
) -> None:
    operator_id, email = await _operator()
    slug = unique_slug("shop")
    async with app_client(_from_desk(_platform_app(settings))) as client:
        auth = _bearer(await _operator_token(client, email))
        with caplog.at_level(logging.INFO, logger="atende.audit"):
            created = await client.post("/api/v1/platform/tenants", headers=auth, json={
                "slug": slug, "name": "Shop", "admin_email": f"admin@{slug}.example", "admin_password": PASSWORD,
                "plan": "pro"})  # fmt: skip
            assert created.status_code == 201, created.text
            tenant = created.json()
            assert {k: tenant[k] for k in ("slug", "name", "schema", "plan", "status")} == {
                "slug": slug, "name": "Shop", "schema": f"t_{slug}", "plan": "pro", "status": "active"}  # fmt: skip
            assert isinstance(tenant["id"], int) and tenant["created_at"]

            listing = await client.get("/api/v1/platform/tenants", headers=auth)
            assert listing.status_code == 200
            assert listing.json()["next_cursor"] is None
            assert tenant in listing.json()["items"]

            admin = await _tenant_token(client, slug)
            assert (await client.get("/api/v1/tickets", headers=_bearer(admin))).status_code == 200

            suspended = await client.post(f"/api/v1/platform/tenants/{slug}/suspend", headers=auth)
            assert suspended.status_code == 200, suspended.text
            assert suspended.json() == {**tenant, "status": "suspended"}
            denied = await client.get("/api/v1/tickets", headers=_bearer(admin))
            assert (denied.status_code, denied.json()["code"]) == (401, "invalid_token")
            login = await client.post("/api/v1/auth/login", json={"tenant": slug, "email": f"admin@{slug}.example",
                                                                  "password": PASSWORD})  # fmt: skip
            assert (login.status_code, login.json()["code"]) == (401, "invalid_credentials")

            resumed = await client.post(f"/api/v1/platform/tenants/{slug}/resume", headers=auth)
            assert (resumed.status_code, resumed.json()) == (200, tenant)
            admin = await _tenant_token(client, slug)
            assert (await client.get("/api/v1/tickets", headers=_bearer(admin))).status_code == 200

    trail = [(r.getMessage(), getattr(r, "fields", {})) for r in caplog.records if r.name == "atende.audit"]
    assert [(action, fields["tenant"], fields["operator_id"]) for action, fields in trail] == [
        ("platform.tenant.create", slug, operator_id),
        ("platform.tenant.suspend", slug, operator_id),
        ("platform.tenant.resume", slug, operator_id),
    ]


async def test_provisioning_errors_are_problems_with_stable_codes(settings: Settings, make_tenant: MakeTenant,
                                                                  unique_slug: Callable[[str], str]) -> None:  # fmt: skip
    existing = await make_tenant("taken")
    _operator_id, email = await _operator()
    fresh = unique_slug("fresh")

    def body(**changes: str) -> dict[str, str]:
        return {"slug": fresh, "name": "Fresh", "admin_email": f"admin@{fresh}.example", "admin_password": PASSWORD,
                **changes}  # fmt: skip

    cases = [
        (body(slug=existing.slug), 409, "tenant_exists"),
        (body(slug="Bad Slug!"), 400, "invalid_slug"),
        (body(slug="platform"), 400, "invalid_slug"),
        (body(plan="gold"), 400, "plan_not_found"),
        (body(admin_password="short"), 400, "weak_password"),
        (body(admin_email="not-an-address"), 400, "invalid_input"),
    ]
    async with app_client(_from_desk(_platform_app(settings))) as client:
        auth = _bearer(await _operator_token(client, email))
        for payload, status, code in cases:
            response = await client.post("/api/v1/platform/tenants", headers=auth, json=payload)
            assert (response.status_code, response.json()["code"]) == (status, code), payload
            assert response.headers["content-type"].startswith("application/problem+json")
        listed = (await client.get("/api/v1/platform/tenants", headers=auth)).json()["items"]
        assert fresh not in {t["slug"] for t in listed}  # no failed attempt left a tenant behind
        missing = await client.post("/api/v1/platform/tenants/no_such_tenant/suspend", headers=auth)
        assert (missing.status_code, missing.json()["code"]) == (404, "tenant_not_found")


async def test_tenant_tokens_are_refused_on_every_platform_route(settings: Settings, make_tenant: MakeTenant) -> None:
    tenant = await make_tenant("outsider")
    app = _platform_app(settings)
    routes = _platform_routes(app)
    assert len(routes) >= 4
    async with app_client(_from_desk(app)) as client:
        admin = await _tenant_token(client, tenant.slug)
        for method, path in routes:
            url = path.replace("{slug:str}", tenant.slug)
            body = {"slug": "sneaky", "name": "x", "admin_email": "a@b.example", "admin_password": PASSWORD}
            response = await client.request(
                method, url, headers=_bearer(admin), json=body if method == "POST" else None
            )
            assert (response.status_code, response.json()["code"]) == (403, "permission_denied"), f"{method} {path}"
        anonymous = await client.get("/api/v1/platform/tenants")
        assert anonymous.status_code == 401
    # The database check refuses them too, whatever the token claims about its role.
    assert settings.secret_key is not None
    tokens = TokenService.from_secrets(settings.secret_key)
    admin_claims = tokens.verify(admin)
    with pytest.raises(InvalidToken):
        async with operator_context(admin_claims):
            pass
    as_operator = tokens.verify(tokens.issue(user_id=int(admin_claims.sub), tenant_id=tenant.id, version=0,
                                             role="operator"))  # fmt: skip
    with pytest.raises(InvalidToken):
        async with operator_context(as_operator):
            pass


async def test_operator_tokens_are_refused_on_tenant_routes(settings: Settings, make_tenant: MakeTenant) -> None:
    await make_tenant("first")  # tenant ids start at 1: there is a tenant, but none is number 0
    _operator_id, email = await _operator()
    async with app_client(_from_desk(_platform_app(settings))) as client:
        token = await _operator_token(client, email)
        response = await client.get("/api/v1/tickets", headers=_bearer(token))
        assert (response.status_code, response.json()["code"]) == (403, "permission_denied")
    assert settings.secret_key is not None
    claims = TokenService.from_secrets(settings.secret_key).verify(token)
    with pytest.raises(InvalidToken):
        async with principal_context(claims):
            pass


async def test_disabled_operator_loses_every_token(settings: Settings) -> None:
    _operator_id, email = await _operator()
    async with app_client(_from_desk(_platform_app(settings))) as client:
        token = await _operator_token(client, email)
        assert (await client.get("/api/v1/platform/tenants", headers=_bearer(token))).status_code == 200

        await set_operator_active(email.upper(), False)
        response = await client.get("/api/v1/platform/tenants", headers=_bearer(token))
        assert (response.status_code, response.json()["code"]) == (401, "invalid_token")
        login = await client.post("/api/v1/platform/auth/login", json={"email": email, "password": OPERATOR_PASSWORD})
        assert (login.status_code, login.json()["code"]) == (401, "invalid_credentials")

        await set_operator_active(email, True)
        assert (await client.get("/api/v1/platform/tenants", headers=_bearer(token))).status_code == 401  # old version
        fresh = await _operator_token(client, email)
        assert (await client.get("/api/v1/platform/tenants", headers=_bearer(fresh))).status_code == 200


async def test_forged_operator_tokens_are_refused(settings: Settings, make_tenant: MakeTenant) -> None:
    tenant = await make_tenant("forger")
    operator_id, email = await _operator()
    assert settings.secret_key is not None
    key, kid = settings.secret_key, kid_of(settings.secret_key)
    tokens = TokenService.from_secrets(key)
    async with app_client(_from_desk(_platform_app(settings))) as client:
        real = _claims(await _operator_token(client, email))
        admin = await _tenant_token(client, tenant.slug)
        admin_id = int(_claims(admin)["sub"])
        header, _payload, signature = admin.split(".")
        forged = {
            "wrong key": jwt.encode(
                real, "another-secret-key-that-is-long-enough-1234", algorithm="HS256", headers={"kid": kid}
            ),
            "tenant token re-labelled as operator": ".".join(
                [header, _b64({**_claims(admin), "role": "operator", "tid": 0}), signature]
            ),
            "operator role for a tenant user": tokens.issue(
                user_id=admin_id, tenant_id=tenant.id, version=0, role="operator"
            ),
            "no such operator": tokens.issue(user_id=2**40, tenant_id=0, version=0, role="operator"),
            "stale version": tokens.issue(user_id=operator_id, tenant_id=0, version=real["ver"] + 1, role="operator"),
            "expired": jwt.encode({**real, "exp": int(time.time()) - 10}, key, algorithm="HS256", headers={"kid": kid}),
        }
        for name, token in forged.items():
            response = await client.get("/api/v1/platform/tenants", headers=_bearer(token))
            assert (response.status_code, response.json()["code"]) == (401, "invalid_token"), name


async def test_operator_accounts_from_the_cli_helpers(database: str) -> None:
    _operator_id, email = await _operator()
    with pytest.raises(OperatorExists) as duplicate:
        await create_operator(f"  {email.upper()} ", "Someone Else", OPERATOR_PASSWORD)
    assert (duplicate.value.code, duplicate.value.status) == ("operator_exists", 409)
    with pytest.raises(WeakPassword):
        await create_operator(f"new-{email}", "New", "short")
    with pytest.raises(OperatorNotFound):
        await set_operator_active("nobody-at-all@atende.example", False)
