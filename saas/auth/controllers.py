"""``/api/v1/auth``: login and WebSocket tickets."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

import msgspec
from litestar import Controller, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from saas.auth.guards import Caller
from saas.auth.principal import principal_context
from saas.auth.service import LoginResult, login
from saas.runtime import Runtime

__all__ = ["WS_TICKET_TTL_S", "AuthController"]

WS_TICKET_TTL_S = 30


class LoginRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    tenant: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class WsTicket(msgspec.Struct, frozen=True, kw_only=True):
    ticket: str
    expires_in: int


class AuthController(Controller):
    path = "/api/v1/auth"
    tags = ["auth"]

    @post("/login", summary="Log in to a tenant", status_code=200)
    async def login(self, data: JSONBody[LoginRequest], runtime: NamedDependency[Runtime]) -> LoginResult:
        return await login(runtime.tokens, tenant=data.tenant, email=data.email, password=data.password)

    @post("/ws-ticket", summary="A single-use ticket (30 s) to open the events WebSocket", status_code=200)
    async def ws_ticket(self, caller: NamedDependency[Caller], runtime: NamedDependency[Runtime]) -> WsTicket:
        async with principal_context(caller.claims) as (principal, _session):
            ticket = secrets.token_urlsafe(24)
            payload: dict[str, Any] = {"sub": caller.claims.sub, "tid": principal.tenant_id, "ver": caller.claims.ver}
            await runtime.redis_client.set(runtime.ws_ticket_key(ticket), msgspec.json.encode(payload),
                                           ex=WS_TICKET_TTL_S)  # fmt: skip
        return WsTicket(ticket=ticket, expires_in=WS_TICKET_TTL_S)
