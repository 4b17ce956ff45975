"""The root of Atende's error hierarchy.

It lives in the bottom layer so every layer can raise it; ``saas.errors`` maps it to HTTP
(``application/problem+json``) in one place and the CLI maps it to a message and an exit code.
Each error carries a stable machine ``code`` that clients may switch on.
"""

from __future__ import annotations

from typing import Any, ClassVar

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
]


class AtendeError(Exception):
    """Base error: ``code`` is stable, ``status`` is the HTTP status it maps to."""

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class InvalidInput(AtendeError):
    code = "invalid_input"
    status = 400
    title = "Invalid input"


class NotFound(AtendeError):
    code = "not_found"
    status = 404
    title = "Not found"


class Conflict(AtendeError):
    code = "conflict"
    status = 409
    title = "Conflict"


class Forbidden(AtendeError):
    code = "forbidden"
    status = 403
    title = "Forbidden"


class ServiceUnavailable(AtendeError):
    code = "service_unavailable"
    status = 503
    title = "Service unavailable"


class InvalidSlug(InvalidInput):
    code = "invalid_slug"
    title = "Invalid tenant slug"


class TenantExists(Conflict):
    code = "tenant_exists"
    title = "Tenant already exists"


class TenantNotFound(NotFound):
    code = "tenant_not_found"
    title = "Tenant not found"


class TenantSuspended(Forbidden):
    code = "tenant_suspended"
    title = "Tenant suspended"


class PlanNotFound(InvalidInput):
    code = "plan_not_found"
    title = "Plan not found"


class NoTenantContext(AtendeError):
    """Tenant data was touched outside ``tenants.context.tenant_context`` — a programming error."""

    code = "no_tenant_context"
    status = 500
    title = "No tenant context"
