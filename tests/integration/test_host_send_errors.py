"""A send that fails never stops the session's sends: an agent's file that the session host cannot read from the
media store is reported FAILED with a stable code (a store outage after the store's own retries, a missing file, an
unexpected error as ``internal_error``), and the agent's next message still reaches the phone. Real stack: the
simulator is the only fake; the host's media store is pointed at an empty directory, at an S3 endpoint where
nothing listens, or at an S3 store missing its settings."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from saas.app import create_app
from tenants.context import tenant_context
from tests.conftest import app_client, eventually, login
from tests.integration.conftest import PDF, Stack

PHONE = "+5511976540002"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # nothing listens there once the probe is closed: connections are refused


def _empty_dir(tmp_path: Path) -> dict[str, Any]:
    (tmp_path / "other-media").mkdir()
    return {"media_store": "file", "media_dir": str(tmp_path / "other-media")}


def _s3_down(tmp_path: Path) -> dict[str, Any]:
    return {"media_store": "s3", "s3_endpoint": f"http://127.0.0.1:{_closed_port()}", "s3_bucket": "atende-media",
            "s3_access_key": "access", "s3_secret_key": "secret"}  # fmt: skip


def _s3_unconfigured(tmp_path: Path) -> dict[str, Any]:
    return {"media_store": "s3"}  # no endpoint, bucket or keys: building the store raises ValueError


async def _ticket_id(stack: Stack) -> int | None:
    async with tenant_context(stack.tenant.slug) as session:
        value = await session.conn.fetchval("SELECT ticket_id FROM messages WHERE NOT from_me LIMIT 1")
    return int(value) if value is not None else None


@pytest.mark.parametrize(
    ("store", "code"),
    [(_empty_dir, "media_not_found"), (_s3_down, "media_store_unavailable"), (_s3_unconfigured, "internal_error")],
    ids=["file-missing", "store-down", "unexpected-error"],
)  # fmt: skip
async def test_an_unreadable_file_fails_alone_and_the_next_message_is_sent(
    stack_factory: Callable[..., Awaitable[Stack]],
    tmp_path: Path,
    store: Callable[[Path], dict[str, Any]],
    code: str,
) -> None:
    stack = await stack_factory()
    await eventually(lambda: stack.in_state("CONNECTED"), what="CONNECTED")
    # The host builds its media store on first use (no media has been read yet): point it somewhere broken. The
    # API keeps storing uploads in the shared directory, so the upload itself succeeds.
    stack.host.config = dataclasses.replace(stack.host.config, **store(tmp_path))
    await stack.sim.send(PHONE, stack.number, "oi, me manda o boleto?")
    ticket_id = await eventually(lambda: _ticket_id(stack), what="the customer's ticket")

    async with app_client(create_app(stack.settings)) as client:
        auth = await login(client, stack.tenant.slug)
        upload = await client.post(f"/api/v1/tickets/{ticket_id}/media", headers=auth, data={"caption": "boleto"},
                                   files={"file": ("boleto.pdf", PDF, "application/pdf")})  # fmt: skip
        assert upload.status_code == 201, upload.text

        async def settled() -> Any:
            page = (await client.get(f"/api/v1/tickets/{ticket_id}/messages", headers=auth)).json()["items"]
            sent = next(m for m in page if m["id"] == upload.json()["id"])
            return sent if sent["status"] == "FAILED" else None

        failed = await eventually(settled, within_s=30, what="the file reported FAILED")
        assert failed["error_code"] == code
        assert failed["error_title"] and "/" not in failed["error_title"]  # no server path or key leaks to agents

        text = await client.post(f"/api/v1/tickets/{ticket_id}/messages", headers=auth,
                                 json={"text": "segue a linha digitável por texto"})  # fmt: skip
        assert text.status_code == 201, text.text

        async def phone_got_it() -> Any:
            inbox = await stack.sim.inbox(PHONE)
            return [m for m in inbox.messages if m.text == "segue a linha digitável por texto"]

        await eventually(phone_got_it, what="the next message on the phone: the send loop survived")
        assert not [m for m in (await stack.sim.inbox(PHONE)).messages if m.media is not None]


async def test_an_unreadable_outbound_entry_is_dropped_and_the_rest_are_sent(
    stack_factory: Callable[..., Awaitable[Stack]],
) -> None:
    """An entry no host can decode (a broken or newer writer) must not stop the entries read with it, nor come
    back on every reconnect and take the session down with it."""
    stack = await stack_factory()
    await eventually(lambda: stack.in_state("CONNECTED"), what="CONNECTED")
    await stack.sim.send(PHONE, stack.number, "oi")
    ticket_id = await eventually(lambda: _ticket_id(stack), what="the customer's ticket")
    key = stack.keys.outbound(stack.tenant.id, stack.connection_id)
    await stack.redis.xadd(key, {b"e": b"\x93not a command"})
    async with app_client(create_app(stack.settings)) as client:
        auth = await login(client, stack.tenant.slug)
        sent = await client.post(f"/api/v1/tickets/{ticket_id}/messages", headers=auth, json={"text": "depois dele"})
        assert sent.status_code == 201, sent.text

        async def phone_got_it() -> Any:
            return [m for m in (await stack.sim.inbox(PHONE)).messages if m.text == "depois dele"]

        await eventually(phone_got_it, what="the message after the unreadable entry on the phone")
    pending: Any = await stack.redis.xpending(key, "hosts")
    assert pending["pending"] == 0  # the unreadable entry was acknowledged, not left to be claimed again
    assert await stack.state() == "CONNECTED"
