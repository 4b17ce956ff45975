"""Media end to end on the real stack: a customer's photo is downloaded by the session host into the media store
and served to the inbox; an agent's upload is checked, stored, sent through the session and reaches the phone with
the same bytes; downloads that fail are retried and reported; limits are enforced before anything is stored."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from saas.app import create_app
from supervisor.simulator.network import MediaSpec
from tenants.context import tenant_context
from tests.conftest import eventually, live_server, login
from tests.integration.conftest import PDF, Stack

PHONE = "+5511976540001"
# A real (tiny) PNG: the API sniffs content, so a made-up header would be refused as a type mismatch.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc000000301010018dd8db00000000049454e44ae426082"
)


async def _message(stack: Stack, **where: Any) -> Any:
    clauses = " AND ".join(f"{k} = ${i + 1}" for i, k in enumerate(where))
    async with tenant_context(stack.tenant.slug) as session:
        return await session.conn.fetchrow(f"SELECT id, ticket_id, media::text AS media FROM messages WHERE {clauses}"
                                           " ORDER BY id DESC LIMIT 1", *where.values())  # fmt: skip


async def test_customer_photo_is_stored_and_served_agent_file_reaches_the_phone(
    stack_factory: Callable[..., Awaitable[Stack]],
) -> None:
    stack = await stack_factory()
    await eventually(lambda: stack.in_state("CONNECTED"), what="CONNECTED")
    await stack.sim.send(PHONE, stack.number, "olha a foto", kind="image",
                         media=MediaSpec(mime="image/png", data=PNG, filename="foto.png"))  # fmt: skip

    async def stored() -> Any:
        row = await _message(stack, kind="image")
        return row if row is not None and '"stored"' in row["media"] else None

    row = await eventually(stored, what="the photo downloaded into the media store")
    async with live_server(create_app(stack.settings)) as base, httpx.AsyncClient(base_url=base) as client:
        auth = await login(client, stack.tenant.slug)
        page = (await client.get(f"/api/v1/tickets/{row['ticket_id']}/messages", headers=auth)).json()["items"]
        photo = next(m for m in page if m["id"] == row["id"])
        assert photo["text"] == "olha a foto"
        assert (photo["media"]["state"], photo["media"]["mime"], photo["media"]["size"]) == (
            "stored",
            "image/png",
            len(PNG),
        )
        served = await client.get(photo["media"]["url"], headers=auth)
        assert served.status_code == 200 and served.content == PNG
        assert served.headers["content-type"] == "image/png"
        assert served.headers["x-content-type-options"] == "nosniff"
        assert "sandbox" in served.headers["content-security-policy"]
        assert (await client.get(photo["media"]["url"])).status_code == 401  # the bearer token, not the URL, grants

        sent = await client.post(f"/api/v1/tickets/{row['ticket_id']}/media", headers=auth,
                                 data={"caption": "segue o orçamento"},
                                 files={"file": ("orçamento.pdf", PDF, "application/pdf")})  # fmt: skip
        assert sent.status_code == 201, sent.text
        assert (sent.json()["kind"], sent.json()["media"]["state"]) == ("document", "stored")

        async def delivered() -> Any:
            inbox = await stack.sim.inbox(PHONE)
            return next((m for m in inbox.messages if m.media is not None and m.kind == "document"), None)

        got = await eventually(delivered, what="the document on the phone")
        assert got.text == "segue o orçamento"
        assert got.media is not None and got.media.sha256 == hashlib.sha256(PDF).hexdigest()
        assert got.media.url is not None
        downloaded = await client.get(stack.settings.simulator_url + got.media.url)
        assert downloaded.content == PDF

        # Limits, checked before anything is stored.
        fake = await client.post(f"/api/v1/tickets/{row['ticket_id']}/media", headers=auth,
                                 files={"file": ("x.jpg", b"MZ\x90\x00 not a picture", "image/jpeg")})  # fmt: skip
        assert (fake.status_code, fake.json()["code"]) == (400, "media_type_mismatch")
        exe = await client.post(f"/api/v1/tickets/{row['ticket_id']}/media", headers=auth,
                                files={"file": ("x.exe", b"MZ\x90\x00", "application/x-msdownload")})  # fmt: skip
        assert (exe.status_code, exe.json()["code"]) == (400, "media_type_not_allowed")
        big = await client.post(f"/api/v1/tickets/{row['ticket_id']}/media", headers=auth,
                                files={"file": ("big.png", PNG + b"\0" * (5 * 1024 * 1024), "image/png")})  # fmt: skip
        assert (big.status_code, big.json()["code"]) == (413, "media_too_large")
        files_before = sorted(p for p in stack.settings.media_path.rglob("*") if p.is_file())
        unseen = await client.post("/api/v1/tickets/999999/media", headers=auth,
                                   files={"file": ("outro.pdf", PDF + b"%", "application/pdf")})  # fmt: skip
        assert (unseen.status_code, unseen.json()["code"]) == (404, "ticket_not_found")
        assert sorted(p for p in stack.settings.media_path.rglob("*") if p.is_file()) == files_before
        async with tenant_context(stack.tenant.slug) as session:
            assert await session.conn.fetchval("SELECT count(*) FROM messages WHERE from_me AND media IS NOT NULL") == 1


async def test_failed_downloads_are_retried_then_reported(stack_factory: Callable[..., Awaitable[Stack]]) -> None:
    stack = await stack_factory()
    await eventually(lambda: stack.in_state("CONNECTED"), what="CONNECTED")
    await stack.sim.send(PHONE, stack.number, None, kind="image",
                         media=MediaSpec(mime="image/png", data=PNG, fail=1))  # fmt: skip
    await stack.sim.send(PHONE, stack.number, None, kind="document",
                         media=MediaSpec(mime="application/pdf", data=PDF, fail=-1))  # fmt: skip

    async def settled() -> bool:
        async with tenant_context(stack.tenant.slug) as session:
            states = [r["state"] for r in await session.conn.fetch(
                "SELECT media->>'state' AS state FROM messages ORDER BY id")]  # fmt: skip
        return states == ["stored", "failed"]

    await eventually(settled, within_s=30, what="one download retried to success, one given up")
    row = await _message(stack, kind="document")
    assert "media_unavailable" in row["media"]
