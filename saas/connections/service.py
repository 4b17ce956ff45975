"""WhatsApp connections of a tenant: the tenant's row (what the portal shows) and the public session registry
row (what the supervisor runs), written together in the caller's tenant transaction."""

from __future__ import annotations

import re
import secrets
from datetime import datetime

import msgspec

from tenants.context import TenantSession
from tenants.errors import Conflict, Forbidden, InvalidInput, NotFound

__all__ = ["PROVIDERS", "ConnectionInfo", "ConnectionNotFound", "create_connection", "get_connection"]


class ConnectionNotFound(NotFound):
    code = "connection_not_found"
    title = "Connection not found"


PROVIDERS = ("simulator", "evolution", "waha", "cloud", "neonize")
_NUMBER_RE = re.compile(r"\+[0-9]{8,15}\Z")


class ConnectionInfo(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    name: str
    provider: str
    business_number: str
    state: str
    connection_key: str
    created_at: datetime


class PlanLimitReached(Forbidden):
    code = "plan_limit_reached"
    title = "Plan limit reached"


async def create_connection(
    session: TenantSession, *, name: str, provider: str, business_number: str, endpoint: str | None = None,
    desired_state: str = "running",
) -> ConnectionInfo:  # fmt: skip
    """Add a connection and register its session (desired state ``running`` starts it)."""
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise InvalidInput("name must be 1-100 characters long", field="name")
    if provider not in PROVIDERS:
        raise InvalidInput(f"provider must be one of {', '.join(PROVIDERS)}", field="provider")
    if not _NUMBER_RE.match(business_number):
        raise InvalidInput("business_number must be E.164, e.g. +5511900000000", field="business_number")
    conn = session.conn
    limit = await conn.fetchval(
        "SELECT p.max_connections FROM public.tenants t JOIN public.plans p ON p.id = t.plan_id WHERE t.id = $1",
        session.tenant.id,
    )
    if limit is not None and await conn.fetchval("SELECT count(*) FROM connections") >= limit:
        raise PlanLimitReached(f"the plan allows {limit} connection(s)", limit=limit)
    if await conn.fetchval("SELECT 1 FROM connections WHERE business_number = $1", business_number):
        raise Conflict(f"{business_number} is already connected", field="business_number")
    key = secrets.token_urlsafe(24)
    row = await conn.fetchrow(
        "INSERT INTO connections (name, provider, business_number, connection_key, endpoint)"
        " VALUES ($1, $2, $3, $4, $5) RETURNING id, state, created_at",
        name, provider, business_number, key, endpoint,
    )  # fmt: skip
    assert row is not None
    await conn.execute(
        "INSERT INTO public.session_registry (tenant_id, connection_id, connection_key, provider, desired_state)"
        " VALUES ($1, $2, $3, $4, $5)",
        session.tenant.id, row["id"], key, provider, desired_state,
    )  # fmt: skip
    return ConnectionInfo(id=row["id"], name=name, provider=provider, business_number=business_number,
                          state=row["state"], connection_key=key, created_at=row["created_at"])  # fmt: skip


async def get_connection(session: TenantSession, connection_id: int) -> ConnectionInfo | None:
    row = await session.conn.fetchrow(
        "SELECT id, name, provider, business_number, state, connection_key, created_at FROM connections WHERE id = $1",
        connection_id,
    )
    return ConnectionInfo(**dict(row)) if row else None
