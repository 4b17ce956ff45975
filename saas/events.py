"""``/api/v1/events``: the realtime WebSocket of the inbox.

Auth: a single-use ticket from ``POST /api/v1/auth/ws-ticket`` (tokens never travel in URLs) and an Origin
check (same host, or an allowed CORS origin). Each event carries its stream id; a client that reconnects
with ``last_event_id`` first receives everything it missed that is still in the tenant's capped stream.

Agents and supervisors receive only events of tickets they may see; when a change takes a ticket out of their
sight (transferred, taken by someone else) they get ``ticket.hidden`` so the inbox drops it.

Presence: an open socket makes its user online (:mod:`saas.presence`); the client sends
``{"type": "presence", "status": "online" | "away"}`` every 20 s (any frame counts as a heartbeat), and the
socket closing — or its heartbeats stopping — makes the user offline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable
from typing import Any
from urllib.parse import urlsplit

import msgspec
from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect

from saas import presence
from saas.auth.permissions import Permission, allowed
from saas.auth.principal import principal_context
from saas.auth.tokens import Claims
from saas.runtime import Runtime
from saas.tickets.service import could_see, visible_tickets

__all__ = ["events_socket"]

logger = logging.getLogger("atende.events")
_decoder = msgspec.json.Decoder()
POLICY_VIOLATION = 4401


def _origin_allowed(socket: WebSocket[Any, Any, Any], runtime: Runtime) -> bool:
    origin = socket.headers.get("origin")
    if origin is None:
        return True  # not a browser: no cross-site risk, the ticket is the credential
    host = socket.headers.get("host", "")
    return urlsplit(origin).netloc == host or origin in runtime.settings.cors_origins


async def _visible(claims: Claims, batch: list[tuple[str, dict[str, Any]]]) -> tuple[set[int] | None, set[str]]:
    """For agents and supervisors, the tickets of this batch they may see (and a re-check that they may still
    connect at all), and the ids of events about tickets they could see before that change; None means every
    ticket (admins)."""
    if claims.role not in ("agent", "supervisor"):
        return None, set()
    ids = sorted({e["ticket_id"] for _, e in batch if e.get("ticket_id") is not None})
    async with principal_context(claims) as (principal, session):
        visible = await visible_tickets(session, ids, principal) if ids else set()
        moved = [(entry_id, e["data"]["was"]) for entry_id, e in batch
                 if e.get("ticket_id") not in visible and isinstance(e.get("data", {}).get("was"), dict)]  # fmt: skip
        seen = await could_see(session, [(w.get("user_id"), w.get("queue_id")) for _, w in moved], principal)
    return visible, {entry_id for (entry_id, _), before in zip(moved, seen, strict=True) if before}


@websocket("/api/v1/events", summary="Realtime inbox events (auth: ?ticket= from /auth/ws-ticket)")
async def events_socket(socket: WebSocket[Any, Any, Any]) -> None:
    runtime: Runtime = socket.app.state["runtime"]
    ticket = socket.query_params.get("ticket", "")
    raw = await runtime.redis_client.getdel(runtime.ws_ticket_key(ticket)) if ticket else None
    if raw is None or not _origin_allowed(socket, runtime):
        await socket.close(code=POLICY_VIOLATION, reason="invalid ticket or origin")
        return
    payload = _decoder.decode(raw)
    claims = Claims(sub=payload["sub"], tid=payload["tid"], ver=payload["ver"], typ="access", jti=ticket, exp=0,
                    role=payload["role"])  # fmt: skip
    async with principal_context(claims):
        pass  # still an active user of an active tenant
    await socket.accept()
    last_id = socket.query_params.get("last_event_id") or "$"
    key = runtime.keys.realtime(claims.tid)
    # A session's QR code links a device to the tenant's WhatsApp number: only who may manage connections sees it.
    may_link = allowed(claims.role, Permission.CONNECTIONS_MANAGE)

    async def pump() -> None:
        nonlocal last_id
        while True:
            response: Any = await runtime.redis_client.xread({key: last_id}, count=200, block=15_000)
            if not response:
                await socket.send_json({"type": "ping"})
                continue
            batch = [(entry_id.decode(), _decoder.decode(fields[b"e"])) for _key, items in response
                     for entry_id, fields in items]  # fmt: skip
            visible, hidden = await _visible(claims, batch)
            for entry_id, event in batch:
                last_id = entry_id
                ticket_id = event.get("ticket_id")
                if event.get("type") == "session.updated" and not may_link:
                    event = {**event, "data": {**event.get("data", {}), "qr": None}}
                if ticket_id is None or visible is None or ticket_id in visible:
                    await socket.send_json({"id": entry_id, **event})
                elif entry_id in hidden:
                    await socket.send_json({"id": entry_id, "type": "ticket.hidden", "ticket_id": ticket_id,
                                            "data": {"id": ticket_id}})  # fmt: skip

    redis, user_id, socket_id = runtime.redis_client, int(claims.sub), uuid.uuid4().hex
    away: bool | None = None

    async def quietly(change: Awaitable[object]) -> None:
        """Presence never closes the inbox: a failed change is logged and the sweep reconciles it later."""
        try:
            await change
        except Exception:
            logger.exception("presence of user %s of tenant %s not updated", user_id, claims.tid)

    await quietly(presence.connected(redis, runtime.keys, claims.tid, user_id, socket_id))
    sender = asyncio.create_task(pump())
    try:
        while True:
            frame = await socket.receive_data(mode="text")  # heartbeats and presence; disconnect ends the loop
            await quietly(presence.heartbeat(redis, runtime.keys, claims.tid, user_id, socket_id))
            status = _presence_choice(frame)
            if status is not None and (status == "away") != away:
                away = status == "away"
                await quietly(presence.connected(redis, runtime.keys, claims.tid, user_id, socket_id, away=away))
    except WebSocketDisconnect:
        pass
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sender
        with contextlib.suppress(Exception):
            await presence.disconnected(redis, runtime.keys, claims.tid, user_id, socket_id)


def _presence_choice(frame: str | bytes) -> str | None:
    """``online``/``away`` from a ``{"type": "presence", "status": ...}`` frame; None for anything else."""
    try:
        message = _decoder.decode(frame)
    except msgspec.DecodeError:
        return None
    if isinstance(message, dict) and message.get("type") == "presence" and message.get("status") in ("online", "away"):
        return str(message["status"])
    return None
