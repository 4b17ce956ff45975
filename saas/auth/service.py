"""Login, refresh and logout. Timing does not reveal whether an e-mail exists.

Refresh tokens rotate: each use returns a new pair and marks the old token used. Presenting a used (or
revoked) refresh token again means it was stolen or replayed, so the whole family — every token descended
from that login — is revoked, and the event is written to the audit log.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import msgspec

from saas.auth.tokens import InvalidToken, TokenService
from tenants.context import TenantSession, tenant_context
from tenants.errors import AtendeError, TenantNotFound, TenantSuspended
from tenants.passwords import verify_stored

__all__ = ["InvalidCredentials", "LoginResult", "RefreshReused", "login", "logout", "refresh"]

REFRESH_TTL_S = 14 * 24 * 3600


class InvalidCredentials(AtendeError):
    code = "invalid_credentials"
    status = 401
    title = "Invalid credentials"


class RefreshReused(InvalidToken):
    code = "refresh_token_reused"
    title = "Refresh token reused: every session of this login was revoked"


class LoginResult(msgspec.Struct, frozen=True, kw_only=True):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int


async def _issue_pair(session: TenantSession, tokens: TokenService, *, user_id: int, version: int, role: str,
                      family: str) -> LoginResult:  # fmt: skip
    jti = secrets.token_urlsafe(18)
    await session.conn.execute(
        "INSERT INTO refresh_tokens (jti, family, user_id, expires_at) VALUES ($1, $2, $3, $4)",
        jti, family, user_id, datetime.now(UTC) + timedelta(seconds=REFRESH_TTL_S),
    )  # fmt: skip
    tenant_id = session.tenant.id
    return LoginResult(
        access_token=tokens.issue(user_id=user_id, tenant_id=tenant_id, version=version, role=role),
        refresh_token=tokens.issue(
            user_id=user_id,
            tenant_id=tenant_id,
            version=version,
            role=role,
            typ="refresh",
            ttl_s=REFRESH_TTL_S,
            family=family,
            jti=jti,
        ),
        expires_in=tokens.ttl_s,
    )


async def login(tokens: TokenService, *, tenant: str, email: str, password: str) -> LoginResult:
    try:
        async with tenant_context(tenant) as session:
            row = await session.conn.fetchrow(
                "SELECT id, password_hash, active, role, token_version FROM users WHERE lower(email) = lower($1)", email
            )
            ok = verify_stored(row["password_hash"] if row else None, password)
            if row is None or not ok or not row["active"]:
                raise InvalidCredentials("wrong tenant, e-mail or password")
            return await _issue_pair(session, tokens, user_id=row["id"], version=row["token_version"],
                                     role=row["role"], family=secrets.token_urlsafe(12))  # fmt: skip
    except (TenantNotFound, TenantSuspended):
        verify_stored(None, password)
        raise InvalidCredentials("wrong tenant, e-mail or password") from None


async def refresh(tokens: TokenService, refresh_token: str) -> LoginResult:
    claims = tokens.verify(refresh_token, typ="refresh")
    reused = False
    try:
        async with tenant_context(tenant_id=claims.tid) as session:
            row = await session.conn.fetchrow(
                "SELECT r.family, r.used_at, r.revoked_at, u.active, u.role, u.token_version"
                " FROM refresh_tokens r JOIN users u ON u.id = r.user_id WHERE r.jti = $1 FOR UPDATE OF r",
                claims.jti,
            )
            if row is None:
                raise InvalidToken("unknown refresh token")
            if row["revoked_at"] is not None and row["used_at"] is None:
                raise InvalidToken("refresh token revoked")
            if row["used_at"] is not None:
                await session.conn.execute(
                    "UPDATE refresh_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE family = $1",
                    row["family"],
                )
                await session.conn.execute(
                    "INSERT INTO audit_log (actor_id, action, target, details) VALUES ($1, 'auth.refresh_reused', $2, '{}')",
                    int(claims.sub), f"family:{row['family']}",
                )  # fmt: skip
                reused = True
            elif not row["active"] or row["token_version"] != claims.ver:
                raise InvalidToken("token no longer valid")
            else:
                await session.conn.execute("UPDATE refresh_tokens SET used_at = now() WHERE jti = $1", claims.jti)
                return await _issue_pair(session, tokens, user_id=int(claims.sub), version=row["token_version"],
                                         role=row["role"], family=row["family"])  # fmt: skip
    except (TenantNotFound, TenantSuspended) as exc:
        raise InvalidToken("token no longer valid") from exc
    assert reused  # the revocation above committed before we answer
    raise RefreshReused("refresh token was already used; this login's sessions are revoked")


async def logout(tokens: TokenService, refresh_token: str) -> None:
    """Revoke the presented refresh token's whole family (every token of that login)."""
    claims = tokens.verify(refresh_token, typ="refresh")
    try:
        async with tenant_context(tenant_id=claims.tid) as session:
            await session.conn.execute(
                "UPDATE refresh_tokens SET revoked_at = coalesce(revoked_at, now())"
                " WHERE family = (SELECT family FROM refresh_tokens WHERE jti = $1)",
                claims.jti,
            )
    except (TenantNotFound, TenantSuspended) as exc:
        raise InvalidToken("token no longer valid") from exc
