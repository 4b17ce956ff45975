"""The one mapping from errors to HTTP: every error leaves as ``application/problem+json`` with a stable ``code``.

Domain code raises :class:`tenants.errors.AtendeError` subclasses; Litestar's own HTTP exceptions
(validation, routing, auth) are translated here too, and anything else becomes a logged 500 that reveals
nothing internal.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Litestar, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Reference, Schema
from litestar.types import ExceptionHandlersMap

from saas.logs import log_context
from tenants.errors import (
    AtendeError,
    Conflict,
    Forbidden,
    InvalidInput,
    NoTenantContext,
    NotFound,
    ServiceUnavailable,
    TenantExists,
    TenantNotFound,
    TenantSuspended,
)

__all__ = [
    "AtendeError",
    "Conflict",
    "Forbidden",
    "InvalidInput",
    "NoTenantContext",
    "NotFound",
    "ServiceUnavailable",
    "TenantExists",
    "TenantNotFound",
    "TenantSuspended",
    "document_problems",
    "exception_handlers",
    "problem",
]

PROBLEM_JSON = "application/problem+json"
logger = logging.getLogger("atende.errors")

# Litestar's HTTP exceptions by status -> our stable codes.
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "service_unavailable",
}


_DESCRIPTIONS = {
    400: "Invalid input (validation_error, invalid_input, ...)",
    401: "Missing, invalid or expired credentials (invalid_token, invalid_credentials)",
    403: "Not allowed (permission_denied, plan_limit_reached, tenant_suspended)",
    404: "Not found, or not visible to the caller",
    405: "Method not allowed",
    409: "Conflict with the current state",
    413: "Payload too large",
    415: "Unsupported media type",
    429: "Rate limited; see Retry-After",
    500: "Internal error",
}


_PROBLEM_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    required=["type", "title", "status", "code", "detail", "instance"],
    properties={
        "type": Schema(type=OpenAPIType.STRING),
        "title": Schema(type=OpenAPIType.STRING),
        "status": Schema(type=OpenAPIType.INTEGER),
        "code": Schema(type=OpenAPIType.STRING, description="stable, machine-readable error code"),
        "detail": Schema(type=OpenAPIType.STRING),
        "instance": Schema(type=OpenAPIType.STRING),
        "request_id": Schema(type=OpenAPIType.STRING),
    },
)


def document_problems(app: Litestar) -> None:
    """Declare, in the OpenAPI document, the problem+json answers every operation can give — so clients (and
    schemathesis) know them. Done on the generated document (not per handler) so no route can forget it."""
    schema = app.openapi_schema
    schema.components.schemas["Problem"] = _PROBLEM_SCHEMA
    reference = Reference(ref="#/components/schemas/Problem")
    for path, item in (schema.paths or {}).items():
        statuses = [400, 405, 415, 500]
        if path.startswith("/api/"):
            statuses += [401, 403, 404, 409, 429]
        elif path.startswith("/hooks/"):
            statuses += [401, 404, 413, 429]
        if path == "/readyz":
            statuses.append(503)
        for method in ("get", "put", "post", "delete", "patch"):
            operation = getattr(item, method, None)
            if operation is None:
                continue
            responses = operation.responses if operation.responses is not None else {}
            for status in statuses:
                current = responses.get(str(status))
                content = dict(getattr(current, "content", None) or {})
                content[PROBLEM_JSON] = OpenAPIMediaType(schema=reference)
                description = getattr(current, "description", None) or _DESCRIPTIONS.get(status, "Not ready")
                responses[str(status)] = OpenAPIResponse(description=description, content=content)
            operation.responses = responses


def problem(
    request: Request[Any, Any, Any], *, status: int, code: str, title: str, detail: str, **extra: Any
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {
        "type": f"https://atende.dev/problems/{code}",
        "title": title,
        "status": status,
        "code": code,
        "detail": detail,
        "instance": request.url.path,
    }
    request_id = log_context().get("request_id")
    if request_id:
        body["request_id"] = request_id
    headers = dict(extra.pop("headers", None) or {})
    body.update(extra)
    if "retry_after" in extra:
        headers["Retry-After"] = str(extra["retry_after"])
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _atende_error(request: Request[Any, Any, Any], exc: AtendeError) -> Response[dict[str, Any]]:
    if exc.status >= 500:
        logger.error("%s: %s", exc.code, exc.detail, exc_info=exc)
        return problem(request, status=exc.status, code=exc.code, title=exc.title, detail="internal error")
    return problem(request, status=exc.status, code=exc.code, title=exc.title, detail=exc.detail, **exc.extra)


def _http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    status = exc.status_code
    if isinstance(exc, ValidationException):
        errors = exc.extra if isinstance(exc.extra, list) else []
        return problem(
            request,
            status=400,
            code="validation_error",
            title="Invalid request",
            detail=exc.detail,
            errors=errors,
        )
    if status >= 500:
        logger.error("http %s: %s", status, exc.detail, exc_info=exc)
    code = _HTTP_CODES.get(status, "http_error")
    return problem(request, status=status, code=code, title=code.replace("_", " ").capitalize(), detail=exc.detail,
                   headers=exc.headers)  # fmt: skip


def _unhandled(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    logger.error("unhandled %s", type(exc).__name__, exc_info=exc)
    return problem(request, status=500, code="internal_error", title="Internal error", detail="internal error")


def exception_handlers() -> ExceptionHandlersMap:
    return {AtendeError: _atende_error, HTTPException: _http_exception, Exception: _unhandled}
