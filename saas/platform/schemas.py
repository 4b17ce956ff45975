"""Request and response shapes of the platform (operator) API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

__all__ = ["CreateTenant", "OperatorLogin", "OperatorToken", "TenantOut", "TenantPage"]


class OperatorLogin(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class OperatorToken(msgspec.Struct, frozen=True, kw_only=True):
    """An operator's login: an access token only. Operators have no refresh token; they log in again."""

    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int


class TenantOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    slug: str
    name: str
    schema: str
    plan: str
    status: str
    created_at: datetime


class TenantPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[TenantOut]
    next_cursor: str | None


class CreateTenant(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Only generous caps here: the domain rules (tenants.naming, tenants.passwords) answer with their own codes.
    slug: Annotated[str, msgspec.Meta(max_length=100)]
    name: Annotated[str, msgspec.Meta(max_length=1000)]
    admin_email: Annotated[str, msgspec.Meta(max_length=320)]
    admin_password: Annotated[str, msgspec.Meta(max_length=1024)]
    plan: Annotated[str, msgspec.Meta(max_length=100)] = "free"
