"""``/api/v1/auth``: login and WebSocket tickets."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from saas.auth import api_tokens, ratelimit
from saas.auth.guards import Caller, requires
from saas.auth.permissions import Permission
from saas.auth.principal import principal_context
from saas.auth.service import LoginResult, login, logout, refresh
from saas.params import Id, client_address
from saas.runtime import Runtime

__all__ = ["WS_TICKET_TTL_S", "AuthController"]

WS_TICKET_TTL_S = 30


class LoginRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    tenant: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class RefreshRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    refresh_token: Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]


class WsTicket(msgspec.Struct, frozen=True, kw_only=True):
    ticket: str
    expires_in: int


class AuthController(Controller):
    path = "/api/v1/auth"
    tags = ["auth"]

    @post("/login", summary="Log in to a tenant (10 failed attempts per account in 15 min, then 429)", status_code=200)
    async def login(
        self, request: Request[Any, Any, Any], data: JSONBody[LoginRequest], runtime: NamedDependency[Runtime]
    ) -> LoginResult:
        account = f"{data.tenant.lower()}:{data.email.strip().lower()}"
        address = client_address(request) or "unknown"
        async with ratelimit.login_attempt(runtime.redis_client, runtime.keys.prefix, account=account, address=address):
            return await login(runtime.tokens, tenant=data.tenant, email=data.email, password=data.password)

    @post("/refresh", summary="Rotate a refresh token; reusing one revokes its whole login", status_code=200)
    async def refresh(self, data: JSONBody[RefreshRequest], runtime: NamedDependency[Runtime]) -> LoginResult:
        return await refresh(runtime.tokens, data.refresh_token)

    @post("/logout", summary="Revoke the refresh token's login (all tokens rotated from it)", status_code=204)
    async def logout(self, data: JSONBody[RefreshRequest], runtime: NamedDependency[Runtime]) -> None:
        await logout(runtime.tokens, data.refresh_token)

    @post("/ws-ticket", summary="A single-use ticket (30 s) to open the events WebSocket", status_code=200,
          guards=[requires(Permission.EVENTS_SUBSCRIBE)])  # fmt: skip
    async def ws_ticket(self, caller: NamedDependency[Caller], runtime: NamedDependency[Runtime]) -> WsTicket:
        async with principal_context(caller.claims) as (principal, _session):
            ticket = secrets.token_urlsafe(24)
            payload: dict[str, Any] = {"sub": caller.claims.sub, "tid": principal.tenant_id, "ver": caller.claims.ver,
                                       "role": caller.claims.role}  # fmt: skip
            await runtime.redis_client.set(runtime.ws_ticket_key(ticket), msgspec.json.encode(payload),
                                           ex=WS_TICKET_TTL_S)  # fmt: skip
        return WsTicket(ticket=ticket, expires_in=WS_TICKET_TTL_S)


class NewApiToken(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    scopes: Annotated[list[str], msgspec.Meta(min_length=1, max_length=10)]
    expires_in_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] | None = None


class CreatedApiToken(msgspec.Struct, frozen=True, kw_only=True):
    api_token: api_tokens.ApiTokenOut
    token: str  # shown once


class ApiTokenPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[api_tokens.ApiTokenOut]
    next_cursor: str | None = None


class ApiTokenController(Controller):
    path = "/api/v1/api-tokens"
    tags = ["auth"]

    @get("/", summary="The tenant's API tokens (never the secrets)", guards=[requires(Permission.API_TOKENS_MANAGE)])
    async def index(self, caller: NamedDependency[Caller]) -> ApiTokenPage:
        async with principal_context(caller.claims) as (_principal, session):
            return ApiTokenPage(items=await api_tokens.list_tokens(session))

    @post("/", summary="Create a scoped API token; the token is shown once", status_code=201,
          guards=[requires(Permission.API_TOKENS_MANAGE)])  # fmt: skip
    async def create(self, request: Request[Any, Any, Any], caller: NamedDependency[Caller],
                     data: JSONBody[NewApiToken]) -> CreatedApiToken:  # fmt: skip
        async with principal_context(caller.claims) as (principal, session):
            out, token = await api_tokens.create(session, actor_id=principal.user_id, name=data.name, scopes=data.scopes,
                                                 expires_in_days=data.expires_in_days,
                                                 origin=client_address(request))  # fmt: skip
        return CreatedApiToken(api_token=out, token=token)

    @post("/{token_id:int}/revoke", summary="Revoke an API token", status_code=200,
          guards=[requires(Permission.API_TOKENS_MANAGE)])  # fmt: skip
    async def revoke(self, request: Request[Any, Any, Any], caller: NamedDependency[Caller],
                     token_id: Id) -> api_tokens.ApiTokenOut:  # fmt: skip
        async with principal_context(caller.claims) as (principal, session):
            return await api_tokens.revoke(session, actor_id=principal.user_id, token_id=token_id,
                                           origin=client_address(request))  # fmt: skip
