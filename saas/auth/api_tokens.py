"""API tokens for integrations: ``atd_<tenant id>_<secret>``, scoped to a few permissions, shown once, stored
as a SHA-256 hash, revocable, optionally expiring.

An API token acts as the role ``integration``: it holds exactly its scopes, never user or token management.
Every request re-checks the token row (not revoked, not expired) inside the request's tenant transaction.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

import asyncpg
import msgspec

from saas.audit.service import record
from saas.auth.permissions import Permission
from saas.auth.tokens import Claims, InvalidToken
from tenants.context import TenantSession, tenant_context
from tenants.errors import InvalidInput, NotFound, TenantNotFound, TenantSuspended

__all__ = ["API_TOKEN_PREFIX", "GRANTABLE", "ApiTokenOut", "authenticate", "create", "list_tokens", "revoke"]

API_TOKEN_PREFIX = "atd_"  # noqa: S105 - a marker, not a secret
INTEGRATION_ROLE = "integration"
GRANTABLE = frozenset({Permission.TICKETS_READ, Permission.TICKETS_REPLY, Permission.TICKETS_UPDATE,
                       Permission.CONTACTS_READ, Permission.CONTACTS_WRITE, Permission.CONNECTIONS_READ,
                       Permission.USERS_READ, Permission.DASHBOARD_READ, Permission.AUDIT_READ})  # fmt: skip


class ApiTokenOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    name: str
    display: str
    scopes: list[str]
    created_by: int
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiTokenNotFound(NotFound):
    code = "api_token_not_found"
    title = "API token not found"


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


_COLUMNS = "id, name, display, scopes, created_by, created_at, expires_at, last_used_at, revoked_at"


async def create(session: TenantSession, *, actor_id: int, name: str, scopes: list[str], expires_in_days: int | None,
                 origin: str | None) -> tuple[ApiTokenOut, str]:  # fmt: skip
    unknown = sorted(set(scopes) - {p.value for p in GRANTABLE})
    if not scopes or unknown:
        raise InvalidInput(f"scopes must be a non-empty subset of {sorted(p.value for p in GRANTABLE)}", field="scopes")
    token = f"{API_TOKEN_PREFIX}{session.tenant.id}_{secrets.token_urlsafe(32)}"
    expires = datetime.now(UTC) + timedelta(days=expires_in_days) if expires_in_days else None
    row = await session.conn.fetchrow(
        f"INSERT INTO api_tokens (name, display, token_hash, scopes, created_by, expires_at)"
        f" VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_COLUMNS}",
        name.strip(), token[:12] + "...", _digest(token), sorted(set(scopes)), actor_id, expires,
    )  # fmt: skip
    assert row is not None
    await record(session, actor_id=actor_id, action="api_token.created", target=f"api_token:{row['id']}",
                 details={"name": name, "scopes": sorted(set(scopes))}, origin=origin)  # fmt: skip
    return ApiTokenOut(**dict(row)), token


async def list_tokens(session: TenantSession) -> list[ApiTokenOut]:
    rows = await session.conn.fetch(f"SELECT {_COLUMNS} FROM api_tokens ORDER BY id")
    return [ApiTokenOut(**dict(r)) for r in rows]


async def revoke(session: TenantSession, *, actor_id: int, token_id: int, origin: str | None) -> ApiTokenOut:
    row = await session.conn.fetchrow(
        f"UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 RETURNING {_COLUMNS}", token_id
    )
    if row is None:
        raise ApiTokenNotFound(f"API token {token_id} does not exist", token_id=token_id)
    await record(session, actor_id=actor_id, action="api_token.revoked", target=f"api_token:{token_id}", origin=origin)
    return ApiTokenOut(**dict(row))


def _tenant_of(token: str) -> int:
    try:
        tenant, _, secret = token.removeprefix(API_TOKEN_PREFIX).partition("_")
        if not secret:
            raise ValueError
        return int(tenant)
    except ValueError:
        raise InvalidToken("malformed API token") from None


_LOOKUP = "SELECT id, scopes FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())"


async def authenticate(token: str) -> Claims:
    """The claims an API token stands for (checked in its tenant's schema)."""
    tenant_id = _tenant_of(token)
    try:
        async with tenant_context(tenant_id=tenant_id) as session:
            row = await session.conn.fetchrow(_LOOKUP, _digest(token))
    except (TenantNotFound, TenantSuspended) as exc:
        raise InvalidToken("invalid API token") from exc
    if row is None:
        raise InvalidToken("invalid API token")
    return Claims(sub=f"api-{row['id']}", tid=tenant_id, ver=0, typ="api", jti=_digest(token).hex(), exp=0,
                  role=INTEGRATION_ROLE, scopes=tuple(row["scopes"]))  # fmt: skip


async def confirm(conn: asyncpg.Connection, claims: Claims) -> asyncpg.Record:
    """Re-check an API token inside the request's transaction and note its use; returns (id, name, created_by)."""
    row = await conn.fetchrow(
        "UPDATE api_tokens SET last_used_at = now() WHERE token_hash = $1 AND revoked_at IS NULL"
        " AND (expires_at IS NULL OR expires_at > now()) RETURNING id, name, created_by",
        bytes.fromhex(claims.jti),
    )
    if row is None:
        raise InvalidToken("API token revoked or expired")
    return row
