"""Who is calling, re-checked against the database inside the request's tenant transaction.

A valid signature is not enough: the user must exist, be active, and have the token's version (bumped on
password, role or status change), and the tenant must be active (the tenant context refuses otherwise). An
API token must still exist unrevoked and unexpired; its actions are attributed to the admin who created it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from saas.auth.api_tokens import confirm
from saas.auth.tokens import Claims, InvalidToken
from saas.logs import update
from tenants.context import TenantSession, tenant_context
from tenants.errors import TenantNotFound, TenantSuspended

__all__ = ["Principal", "principal_context"]


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: int
    tenant_id: int
    tenant_slug: str
    role: str
    name: str
    email: str


@asynccontextmanager
async def principal_context(claims: Claims) -> AsyncIterator[tuple[Principal, TenantSession]]:
    """Open the caller's tenant transaction and confirm the caller in it."""
    try:
        async with tenant_context(tenant_id=claims.tid) as session:
            if claims.typ == "api":
                token = await confirm(session.conn, claims)
                principal = Principal(token["created_by"], claims.tid, session.tenant.slug, claims.role,
                                      f"API token {token['name']}", "")  # fmt: skip
                update(tenant=principal.tenant_slug, user=claims.sub)
                yield principal, session
                return
            row = await session.conn.fetchrow(
                "SELECT id, role, name, email, active, token_version FROM users WHERE id = $1", int(claims.sub)
            )
            if row is None or not row["active"] or row["token_version"] != claims.ver or row["role"] != claims.role:
                raise InvalidToken("token no longer valid")
            principal = Principal(row["id"], claims.tid, session.tenant.slug, row["role"], row["name"], row["email"])
            update(tenant=principal.tenant_slug, user=principal.user_id)
            yield principal, session
    except (TenantNotFound, TenantSuspended) as exc:
        raise InvalidToken("token no longer valid") from exc
