"""Users through the API: invite, accept, roles, disable, resets, profile, plan limits and the audit log."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from saas.app import create_app
from saas.settings import Settings
from tenants.provisioning import TenantInfo
from tests.conftest import app_client

MakeTenant = Callable[..., Awaitable[TenantInfo]]
PASSWORD = "correct horse"


async def _login(client: httpx.AsyncClient, tenant: TenantInfo, email: str, password: str = PASSWORD) -> dict[str, str]:
    response = await client.post(
        "/api/v1/auth/login", json={"tenant": tenant.slug, "email": email, "password": password}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def _invite(client: httpx.AsyncClient, admin: dict[str, str], email: str, role: str = "agent") -> dict[str, Any]:
    response = await client.post(
        "/api/v1/users/invite", headers=admin, json={"email": email, "name": "New", "role": role}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_invite_accept_roles_disable_and_audit(settings: Settings, make_tenant: MakeTenant) -> None:
    tenant = await make_tenant("team", plan="pro")
    async with app_client(create_app(settings)) as client:
        admin = await _login(client, tenant, f"admin@{tenant.slug}.example")
        invited = await _invite(client, admin, "Ana@Team.io")
        assert invited["user"]["invited"] and invited["user"]["email"] == "ana@team.io"
        token = invited["invite_token"]

        # Before accepting, the invitee cannot log in; a common password is refused; the token works once.
        assert (await client.post("/api/v1/auth/login", json={"tenant": tenant.slug, "email": "ana@team.io",
                                                               "password": PASSWORD})).status_code == 401  # fmt: skip
        weak = await client.post("/api/v1/auth/accept-invite", json={"tenant": tenant.slug, "token": token,
                                                                      "password": "password123"})  # fmt: skip
        assert (weak.status_code, weak.json()["code"]) == (400, "weak_password")
        ok = await client.post("/api/v1/auth/accept-invite", json={"tenant": tenant.slug, "token": token,
                                                                    "password": PASSWORD, "name": "Ana"})  # fmt: skip
        assert ok.status_code == 204
        again = await client.post("/api/v1/auth/accept-invite", json={"tenant": tenant.slug, "token": token,
                                                                       "password": PASSWORD})  # fmt: skip
        assert (again.status_code, again.json()["code"]) == (400, "invalid_token")

        agent = await _login(client, tenant, "ana@team.io")
        assert (await client.get("/api/v1/profile", headers=agent)).json()["name"] == "Ana"
        assert (await client.get("/api/v1/users", headers=agent)).status_code == 403  # agents do not read users
        assert (await client.get("/api/v1/audit", headers=agent)).status_code == 403

        user_id = invited["user"]["id"]
        promoted = await client.patch(f"/api/v1/users/{user_id}", headers=admin, json={"role": "supervisor"})
        assert promoted.json()["role"] == "supervisor"
        assert (await client.get("/api/v1/tickets", headers=agent)).status_code == 401  # role change ended it
        supervisor = await _login(client, tenant, "ana@team.io")
        assert (await client.get("/api/v1/users", headers=supervisor)).status_code == 200
        assert (await client.post("/api/v1/users/invite", headers=supervisor,
                                  json={"email": "x@team.io", "name": "X"})).status_code == 403  # fmt: skip

        disabled = await client.post(f"/api/v1/users/{user_id}/disable", headers=admin)
        assert disabled.json()["active"] is False
        assert (await client.get("/api/v1/tickets", headers=supervisor)).status_code == 401
        assert (await client.post("/api/v1/auth/login", json={"tenant": tenant.slug, "email": "ana@team.io",
                                                               "password": PASSWORD})).status_code == 401  # fmt: skip
        assert (await client.post(f"/api/v1/users/{user_id}/enable", headers=admin)).json()["active"] is True

        # The only admin cannot demote or disable themself.
        me = (await client.get("/api/v1/profile", headers=admin)).json()
        last = await client.post(f"/api/v1/users/{me['id']}/disable", headers=admin)
        assert (last.status_code, last.json()["code"]) == (409, "last_admin")

        actions = [e["action"] for e in (await client.get("/api/v1/audit", headers=admin)).json()["items"]]
        assert actions[:4] == ["user.enabled", "user.disabled", "user.role_changed", "user.invite_accepted"]
        assert "user.invited" in actions
        entry = (await client.get("/api/v1/audit", headers=admin, params={"limit": 1})).json()
        assert entry["items"][0]["origin"] and entry["next_cursor"]


async def test_password_reset_and_change_end_every_session(settings: Settings, make_tenant: MakeTenant) -> None:
    tenant = await make_tenant("reset", plan="pro")
    async with app_client(create_app(settings)) as client:
        admin = await _login(client, tenant, f"admin@{tenant.slug}.example")
        invited = await _invite(client, admin, "bia@reset.io")
        await client.post("/api/v1/auth/accept-invite", json={"tenant": tenant.slug, "token": invited["invite_token"],
                                                              "password": PASSWORD})  # fmt: skip
        bia = await _login(client, tenant, "bia@reset.io")
        reset = (await client.post(f"/api/v1/users/{invited['user']['id']}/password-reset", headers=admin)).json()
        done = await client.post("/api/v1/auth/reset-password", json={"tenant": tenant.slug, "token": reset["reset_token"],
                                                                      "password": "a whole new secret"})  # fmt: skip
        assert done.status_code == 204
        assert (await client.get("/api/v1/profile", headers=bia)).status_code == 401
        bia = await _login(client, tenant, "bia@reset.io", "a whole new secret")

        wrong = await client.post("/api/v1/profile/password", headers=bia,
                                  json={"current_password": "nope nope", "new_password": "another secret 1"})  # fmt: skip
        assert wrong.status_code == 400
        changed = await client.post("/api/v1/profile/password", headers=bia,
                                    json={"current_password": "a whole new secret", "new_password": "another secret 1"})  # fmt: skip
        assert changed.status_code == 204
        assert (await client.get("/api/v1/profile", headers=bia)).status_code == 401
        await _login(client, tenant, "bia@reset.io", "another secret 1")


async def test_plan_limits_users_server_side(settings: Settings, make_tenant: MakeTenant) -> None:
    tenant = await make_tenant("small", plan="free")  # 3 users
    async with app_client(create_app(settings)) as client:
        admin = await _login(client, tenant, f"admin@{tenant.slug}.example")
        await _invite(client, admin, "one@small.io")
        await _invite(client, admin, "two@small.io")
        over = await client.post("/api/v1/users/invite", headers=admin, json={"email": "three@small.io", "name": "3"})
        assert (over.status_code, over.json()["code"], over.json()["limit"]) == (403, "plan_limit_reached", 3)
        duplicate = await client.post(
            "/api/v1/users/invite", headers=admin, json={"email": "ONE@small.io", "name": "1"}
        )
        assert duplicate.status_code in (403, 409)
        users = (await client.get("/api/v1/users", headers=admin)).json()["items"]
        assert len(users) == 3
