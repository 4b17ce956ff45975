"""Route guards and the ``caller`` dependency.

``requires(permission)`` is declared on every protected route: it verifies the bearer token and checks the
token's role against :data:`saas.auth.permissions.MATRIX` before any database work. The database re-check of
role, status, version and tenant happens in ``principal_context`` inside the request's transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from saas.auth import api_tokens, ratelimit
from saas.auth.permissions import Permission, allowed
from saas.auth.tokens import Claims, InvalidToken
from saas.runtime import Runtime
from tenants.errors import Forbidden

__all__ = ["Caller", "provide_caller", "requires"]

_STATE_KEY = "atende_caller"


@dataclass(frozen=True, slots=True)
class Caller:
    claims: Claims


class PermissionDenied(Forbidden):
    code = "permission_denied"
    title = "Permission denied"


async def _verify(connection: ASGIConnection[Any, Any, Any, Any]) -> Caller:
    cached = connection.scope.get("state", {}).get(_STATE_KEY)
    if isinstance(cached, Caller):
        return cached
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise InvalidToken("missing bearer token")
    runtime: Runtime = connection.app.state["runtime"]
    if token.startswith(api_tokens.API_TOKEN_PREFIX):
        caller = Caller(await api_tokens.authenticate(token))
    else:
        caller = Caller(runtime.tokens.verify(token))
    connection.scope.setdefault("state", {})[_STATE_KEY] = caller
    return caller


def _holds(claims: Claims, permission: Permission) -> bool:
    if claims.typ == "api":  # an integration holds exactly its scopes, and only grantable ones
        return permission in api_tokens.GRANTABLE and permission.value in claims.scopes
    return allowed(claims.role, permission)


Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]


def requires(permission: Permission) -> Guard:
    """A guard: a valid access token whose role holds ``permission``, within the caller's API rate limit."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
        caller = await _verify(connection)
        if not _holds(caller.claims, permission):
            raise PermissionDenied(f"role {caller.claims.role!r} lacks {permission.value}", permission=permission.value)
        runtime: Runtime = connection.app.state["runtime"]
        limit = ratelimit.Limit("api", runtime.settings.api_rate_per_min, 60)
        await ratelimit.hit(
            runtime.redis_client, runtime.keys.prefix, limit, f"{caller.claims.tid}:{caller.claims.sub}"
        )

    guard.permission = permission  # type: ignore[attr-defined]  # read by the route-table tests
    return guard


async def provide_caller(request: Request[Any, Any, Any]) -> Caller:
    return await _verify(request)
