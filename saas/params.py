"""Shared request parameter types, so every route validates the same way."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request
from litestar.enums import RequestEncodingType
from litestar.exceptions import ValidationException
from litestar.params import PathParameter, QueryParameter

__all__ = ["Cursor", "Id", "Limit", "OptionalId", "RowId", "client_address", "strict_json_body"]

# A row id in a path: a positive bigint. Anything else is a 400, never a database error.
Id = Annotated[int, PathParameter(ge=1, le=2**63 - 1)]
# The same in a JSON body, as an optional query filter, and the page parameters of every list.
RowId = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]
OptionalId = Annotated[int | None, QueryParameter(ge=1, le=2**63 - 1)]
Limit = Annotated[int, QueryParameter(name="limit", ge=1, le=200)]
Cursor = Annotated[str | None, QueryParameter(name="cursor", max_length=200)]


def client_address(request: Request[Any, Any, Any]) -> str | None:
    """The caller's address as the audit log records it (the ASGI server's view: behind a proxy, the proxy's
    unless the server is told to trust forwarded headers)."""
    return request.client.host if request.client else None


# id(handler) -> (handler, body type). Holding the handler keeps its id from being reused by another app's handler
# once its own app is gone (tests build many apps); handlers are made once per route, so this stays small.
_strict_types: dict[int, tuple[Any, Any]] = {}


async def strict_json_body(request: Request[Any, Any, Any]) -> None:
    """Decode a JSON body strictly against the handler's ``data`` type before Litestar does.

    Litestar converts request data with ``strict=False``, which would accept ``0`` for a boolean or ``"5"`` for an
    integer; the API's schema promises types, so a body that does not match them exactly is a 400 here. Text may
    not contain NUL characters (PostgreSQL cannot store them), also a 400. (The body is cached by the request, so
    the handler's own parsing costs no second read.)
    """
    handler = request.route_handler
    if id(handler) not in _strict_types:
        data = handler.parsed_fn_signature.parameters.get("data")
        # The handler's declared encoding decides, not the request's Content-Type: Litestar reads a JSON body
        # whatever the client labels it, so a ``text/plain`` label must not skip the check.
        media_type = getattr(None if data is None else data.kwarg_definition, "media_type", RequestEncodingType.JSON)
        expected = data.annotation if data is not None and media_type == RequestEncodingType.JSON else None
        _strict_types[id(handler)] = (handler, expected)
    target = _strict_types[id(handler)][1]
    if target is None:
        return
    body = await request.body()
    if not body.strip():
        return
    try:
        msgspec.json.decode(body, type=target, strict=True)
    except msgspec.ValidationError as exc:
        raise ValidationException(f"Validation failed for {request.method} {request.url.path}: {exc}") from exc
    except msgspec.DecodeError:
        return  # not JSON at all: Litestar's own parsing answers that
    if b"\\u0000" in body and _has_nul(msgspec.json.decode(body)):
        raise ValidationException(f"Validation failed for {request.method} {request.url.path}: text may not contain"
                                  " NUL characters (\\u0000)")  # fmt: skip


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False
