"""Queues through the API, and what agents and supervisors see once tickets wait in queues."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

from saas.app import create_app
from saas.connections.service import create_connection
from saas.settings import Settings
from tenants.context import tenant_context
from tenants.passwords import hash_password
from tenants.provisioning import TenantInfo
from tests.conftest import app_client

MakeTenant = Callable[..., Awaitable[TenantInfo]]


async def _login(client: httpx.AsyncClient, tenant: TenantInfo, email: str) -> dict[str, str]:
    r = await client.post(
        "/api/v1/auth/login", json={"tenant": tenant.slug, "email": email, "password": "correct horse"}
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def test_queue_crud_members_limits_and_audit(settings: Settings, make_tenant: MakeTenant) -> None:
    tenant = await make_tenant("queues", plan="free")  # 3 queues
    async with tenant_context(tenant.slug) as session:
        agent_id = await session.conn.fetchval(
            "INSERT INTO users (email, role, password_hash) VALUES ('ag@q.io', 'agent', $1) RETURNING id",
            hash_password("correct horse"),
        )
    async with app_client(create_app(settings)) as client:
        admin = await _login(client, tenant, f"admin@{tenant.slug}.example")
        agent = await _login(client, tenant, "ag@q.io")
        sales = await client.post("/api/v1/queues", headers=admin, json={"name": "Sales", "color": "#ff0000",
                                                                          "member_ids": [agent_id]})  # fmt: skip
        assert sales.status_code == 201, sales.text
        assert sales.json()["member_ids"] == [agent_id]
        assert (await client.post("/api/v1/queues", headers=admin, json={"name": "sales"})).status_code == 409
        bad = await client.post("/api/v1/queues", headers=admin, json={"name": "X", "member_ids": [999999]})
        assert (bad.status_code, bad.json()["code"]) == (400, "invalid_input")
        assert (
            await client.post("/api/v1/queues", headers=admin, json={"name": "X", "color": "red"})
        ).status_code == 400
        await client.post("/api/v1/queues", headers=admin, json={"name": "Support"})
        await client.post("/api/v1/queues", headers=admin, json={"name": "Billing"})
        over = await client.post("/api/v1/queues", headers=admin, json={"name": "Fourth"})
        assert (over.status_code, over.json()["code"]) == (403, "plan_limit_reached")

        assert [q["name"] for q in (await client.get("/api/v1/queues", headers=agent)).json()["items"]] == ["Sales"]
        assert len((await client.get("/api/v1/queues", headers=admin)).json()["items"]) == 3
        assert (await client.post("/api/v1/queues", headers=agent, json={"name": "Mine"})).status_code == 403
        queue_id = sales.json()["id"]
        renamed = await client.patch(
            f"/api/v1/queues/{queue_id}", headers=admin, json={"name": "Vendas", "member_ids": []}
        )
        assert (renamed.json()["name"], renamed.json()["member_ids"]) == ("Vendas", [])
        assert (await client.get("/api/v1/queues", headers=agent)).json()["items"] == []
        assert (await client.delete(f"/api/v1/queues/{queue_id}", headers=admin)).status_code == 204
        assert (await client.get(f"/api/v1/queues/{queue_id}", headers=admin)).status_code == 404
        actions = [e["action"] for e in (await client.get("/api/v1/audit", headers=admin)).json()["items"]]
        assert actions[:2] == ["queue.deleted", "queue.updated"]


async def test_queue_membership_decides_what_agents_and_supervisors_see(
    settings: Settings, make_tenant: MakeTenant
) -> None:
    tenant = await make_tenant("qvis", plan="pro")
    async with tenant_context(tenant.slug) as session:
        conn = session.conn
        connection = await create_connection(
            session, name="Main", provider="simulator", business_number="+5511966660000"
        )
        users = {}
        for name, role in (("ana", "agent"), ("bia", "agent"), ("sol", "supervisor")):
            users[name] = await conn.fetchval("INSERT INTO users (email, role, password_hash) VALUES ($1, $2, $3) RETURNING id",
                                              f"{name}@qvis.io", role, hash_password("correct horse"))  # fmt: skip
        sales, support = [
            await conn.fetchval("INSERT INTO queues (name) VALUES ($1) RETURNING id", n) for n in ("Sales", "Support")
        ]
        await conn.execute("INSERT INTO queue_members VALUES ($1, $2), ($1, $3), ($4, $5)",
                           sales, users["ana"], users["sol"], support, users["bia"])  # fmt: skip
        tickets = {}
        for label, queue, owner in (("sales_free", sales, None), ("support_free", support, None), ("no_queue", None, None),
                                    ("support_bia", support, users["bia"]), ("sales_ana", sales, users["ana"])):  # fmt: skip
            contact = await conn.fetchval(
                "INSERT INTO contacts (wa_id) VALUES ($1) RETURNING id", f"{label}@s.whatsapp.net"
            )
            tickets[label] = await conn.fetchval(
                "INSERT INTO tickets (contact_id, connection_id, queue_id, user_id) VALUES ($1, $2, $3, $4) RETURNING id",
                contact, connection.id, queue, owner,
            )  # fmt: skip
    expected = {
        "ana": {"sales_free", "no_queue", "sales_ana"},
        "bia": {"support_free", "no_queue", "support_bia"},
        "sol": {"sales_free", "no_queue", "sales_ana"},
        "admin": set(tickets),
    }
    async with app_client(create_app(settings)) as client:
        for who, labels in expected.items():
            email = f"admin@{tenant.slug}.example" if who == "admin" else f"{who}@qvis.io"
            auth = await _login(client, tenant, email)
            seen = {t["id"] for t in (await client.get("/api/v1/tickets", headers=auth)).json()["items"]}
            assert seen == {tickets[label] for label in labels}, who
            for label, ticket_id in tickets.items():
                status = (await client.get(f"/api/v1/tickets/{ticket_id}", headers=auth)).status_code
                assert status == (200 if label in labels else 404), (who, label)
