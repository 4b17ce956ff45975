"""Platform operators: login, the operator check, tenant management, and the operator accounts themselves.

Operators live in ``public.platform_operators`` and work only on public tables (and on tenant provisioning),
never inside a tenant's schema. Their tokens carry ``role="operator"`` and ``tid=0`` ("no tenant"), so the
tenant ``principal_context`` refuses them (there is no tenant 0) and :func:`operator_context` refuses tenant
tokens. Operators get access tokens only (:data:`OPERATOR_TOKEN_TTL_S`), no refresh tokens: rotating refresh
tokens need a store, and operators log in again instead.

There is no public audit table: every platform change is logged to ``atende.audit`` with structured fields.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg

from saas.auth.permissions import Role
from saas.auth.service import InvalidCredentials
from saas.auth.tokens import Claims, InvalidToken, TokenService
from saas.logs import update
from saas.platform.schemas import CreateTenant, OperatorToken, TenantOut, TenantPage
from tenants.db import pool
from tenants.errors import Conflict, NotFound, TenantNotFound
from tenants.passwords import hash_password, verify_stored
from tenants.provisioning import TenantInfo, check_email, check_name, create_tenant, list_tenants, set_tenant_status
from tenants.tables import Tenant

__all__ = [
    "NO_TENANT",
    "OPERATOR_TOKEN_TTL_S",
    "Operator",
    "OperatorExists",
    "OperatorNotFound",
    "change_tenant_status",
    "create_operator",
    "login",
    "operator_context",
    "provision_tenant",
    "set_operator_active",
    "tenant_page",
]

NO_TENANT = 0  # the ``tid`` of operator tokens: tenant ids start at 1
OPERATOR_TOKEN_TTL_S = 30 * 60

audit = logging.getLogger("atende.audit")


class OperatorExists(Conflict):
    code = "operator_exists"
    title = "Platform operator already exists"


class OperatorNotFound(NotFound):
    code = "operator_not_found"
    title = "Platform operator not found"


@dataclass(frozen=True, slots=True)
class Operator:
    id: int
    email: str
    name: str


def _audit(action: str, operator: Operator | None, **fields: Any) -> None:
    actor = {"operator_id": operator.id, "operator_email": operator.email} if operator else {"actor": "cli"}
    audit.info(action, extra={"fields": {"action": action, **actor, **fields}})


def _tenant_out(info: TenantInfo) -> TenantOut:
    return TenantOut(id=info.id, slug=info.slug, name=info.name, schema=info.schema, plan=info.plan,
                     status=info.status, created_at=info.created_at)  # fmt: skip


# -- login and the operator check -----------------------------------------------------------------------


async def login(tokens: TokenService, *, email: str, password: str) -> OperatorToken:
    """Check an operator's e-mail and password; an access token for :data:`OPERATOR_TOKEN_TTL_S` seconds."""
    row = await pool().fetchrow(
        "SELECT id, password_hash, active, token_version FROM public.platform_operators WHERE lower(email) = lower($1)",
        email.strip(),
    )
    ok = verify_stored(row["password_hash"] if row is not None else None, password)
    if row is None or not ok or not row["active"]:
        raise InvalidCredentials("wrong e-mail or password")
    token = tokens.issue(user_id=row["id"], tenant_id=NO_TENANT, version=row["token_version"],
                         role=Role.OPERATOR.value, ttl_s=OPERATOR_TOKEN_TTL_S)  # fmt: skip
    return OperatorToken(access_token=token, expires_in=OPERATOR_TOKEN_TTL_S)


@asynccontextmanager
async def operator_context(claims: Claims) -> AsyncIterator[Operator]:
    """Confirm the caller is a current platform operator, re-checked in the public schema.

    The token must say ``role="operator"`` and ``tid=0``, and the operator must exist, be active and have the
    token's version (bumped on every enable/disable). No transaction is held open: tenant provisioning opens
    its own, and transactions do not nest.
    """
    if claims.role != Role.OPERATOR.value or claims.tid != NO_TENANT or not claims.sub.isdigit():
        raise InvalidToken("not an operator token")
    row = await pool().fetchrow(
        "SELECT id, email, name, active, token_version FROM public.platform_operators WHERE id = $1", int(claims.sub)
    )
    if row is None or not row["active"] or row["token_version"] != claims.ver:
        raise InvalidToken("token no longer valid")
    operator = Operator(row["id"], row["email"], row["name"])
    update(operator=operator.id)
    yield operator


# -- tenants --------------------------------------------------------------------------------------------


async def tenant_page() -> TenantPage:
    """Every tenant, oldest first, in one page."""
    return TenantPage(items=[_tenant_out(t) for t in await list_tenants()], next_cursor=None)


async def provision_tenant(operator: Operator, data: CreateTenant) -> TenantOut:
    """Create a tenant with its first admin (all or nothing) and audit it."""
    info = await create_tenant(data.slug, name=data.name, admin_email=data.admin_email,
                               admin_password=data.admin_password, plan=data.plan)  # fmt: skip
    _audit("platform.tenant.create", operator, tenant=info.slug, tenant_id=info.id, plan=info.plan)
    return _tenant_out(info)


async def change_tenant_status(operator: Operator, slug: str, status: str) -> TenantOut:
    """Suspend (``"suspended"``) or resume (``"active"``) a tenant and audit it; the tenant as it now is."""
    await set_tenant_status(slug, status)
    row = (
        await Tenant.select(
            Tenant.id, Tenant.slug, Tenant.name, Tenant.schema_name, Tenant.plan_id.slug.as_alias("plan"),
            Tenant.status, Tenant.created_at,
        )
        .where(Tenant.slug == slug)
        .first()
        .run()
    )  # fmt: skip
    if row is None:  # deleted in between
        raise TenantNotFound(f"tenant {slug!r} does not exist", tenant=slug)
    action = "platform.tenant.suspend" if status == "suspended" else "platform.tenant.resume"
    _audit(action, operator, tenant=slug, tenant_id=row["id"])
    return TenantOut(id=row["id"], slug=row["slug"], name=row["name"], schema=row["schema_name"], plan=row["plan"],
                     status=row["status"], created_at=row["created_at"])  # fmt: skip


# -- operator accounts (CLI) ----------------------------------------------------------------------------


async def create_operator(email: str, name: str, password: str) -> int:
    """Add a platform operator (argon2id password); its id. A second operator with the e-mail is a conflict."""
    email, name = check_email(email), check_name(name)
    password_hash = hash_password(password)
    try:
        operator_id: int = await pool().fetchval(
            "INSERT INTO public.platform_operators (email, name, password_hash) VALUES ($1, $2, $3) RETURNING id",
            email, name, password_hash,
        )  # fmt: skip
    except asyncpg.UniqueViolationError as exc:
        raise OperatorExists(f"operator {email!r} already exists", email=email) from exc
    _audit("platform.operator.create", None, target_operator_id=operator_id, email=email)
    return operator_id


async def set_operator_active(email: str, active: bool) -> None:
    """Enable or disable an operator; either way its token version is bumped, so every issued token dies."""
    operator_id = await pool().fetchval(
        "UPDATE public.platform_operators SET active = $2, token_version = token_version + 1"
        " WHERE lower(email) = lower($1) RETURNING id",
        email.strip(), active,
    )  # fmt: skip
    if operator_id is None:
        raise OperatorNotFound(f"operator {email!r} does not exist", email=email)
    action = "platform.operator.enable" if active else "platform.operator.disable"
    _audit(action, None, target_operator_id=operator_id, email=email.strip().lower())
