"""The ``caller`` dependency: a verified bearer token (the database check happens in ``principal_context``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request

from saas.auth.tokens import Claims, InvalidToken
from saas.runtime import Runtime

__all__ = ["Caller", "provide_caller"]


@dataclass(frozen=True, slots=True)
class Caller:
    claims: Claims


async def provide_caller(request: Request[Any, Any, Any]) -> Caller:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise InvalidToken("missing bearer token")
    runtime: Runtime = request.app.state["runtime"]
    return Caller(runtime.tokens.verify(token.strip()))
