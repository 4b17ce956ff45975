"""Login: tenant + e-mail + password -> tokens. Timing does not reveal whether the e-mail exists."""

from __future__ import annotations

import msgspec

from saas.auth.tokens import TokenService
from tenants.context import tenant_context
from tenants.errors import AtendeError, TenantNotFound, TenantSuspended
from tenants.passwords import hash_password, verify_password

__all__ = ["InvalidCredentials", "LoginResult", "login"]

_DUMMY_HASH = hash_password("not a real password, only for timing")
REFRESH_TTL_S = 14 * 24 * 3600


class InvalidCredentials(AtendeError):
    code = "invalid_credentials"
    status = 401
    title = "Invalid credentials"


class LoginResult(msgspec.Struct, frozen=True, kw_only=True):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int


async def login(tokens: TokenService, *, tenant: str, email: str, password: str) -> LoginResult:
    try:
        async with tenant_context(tenant) as session:
            row = await session.conn.fetchrow(
                "SELECT id, password_hash, active, token_version FROM users WHERE lower(email) = lower($1)", email
            )
            tenant_id = session.tenant.id
    except (TenantNotFound, TenantSuspended):
        row, tenant_id = None, 0
    ok = verify_password(row["password_hash"] if row and row["password_hash"] else _DUMMY_HASH, password)
    if row is None or not ok or not row["active"]:
        raise InvalidCredentials("wrong tenant, e-mail or password")
    return LoginResult(
        access_token=tokens.issue(user_id=row["id"], tenant_id=tenant_id, version=row["token_version"]),
        refresh_token=tokens.issue(
            user_id=row["id"], tenant_id=tenant_id, version=row["token_version"], typ="refresh", ttl_s=REFRESH_TTL_S
        ),
        expires_in=tokens.ttl_s,
    )
