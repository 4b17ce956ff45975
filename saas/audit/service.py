"""Write and read the tenant's audit log (inside the caller's tenant transaction: the entry commits with the
change it describes, or not at all)."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import msgspec

from tenants.context import TenantSession
from tenants.errors import InvalidInput

__all__ = ["AuditEntry", "AuditPage", "list_entries", "record"]


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    at: datetime
    actor_id: int | None
    action: str
    target: str
    details: dict[str, Any]
    origin: str | None


class AuditPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[AuditEntry]
    next_cursor: str | None


async def record(session: TenantSession, *, actor_id: int | None, action: str, target: str = "",
                 details: dict[str, Any] | None = None, origin: str | None = None) -> None:  # fmt: skip
    await session.conn.execute(
        "INSERT INTO audit_log (actor_id, action, target, details, origin) VALUES ($1, $2, $3, $4::jsonb, $5)",
        actor_id, action, target, msgspec.json.encode(details or {}).decode(), origin,
    )  # fmt: skip


async def list_entries(session: TenantSession, *, limit: int, cursor: str | None) -> AuditPage:
    """Newest first, keyset-paginated by id."""
    before: int | None = None
    if cursor:
        try:
            before = int(base64.urlsafe_b64decode(cursor.encode()).decode())
        except ValueError as exc:
            raise InvalidInput("invalid cursor", field="cursor") from exc
    rows = await session.conn.fetch(
        "SELECT id, at, actor_id, action, target, details, origin FROM audit_log"
        " WHERE ($1::bigint IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
        before, limit + 1,
    )  # fmt: skip
    items = [AuditEntry(**{**dict(r), "details": msgspec.json.decode(r["details"])}) for r in rows[:limit]]
    next_cursor = base64.urlsafe_b64encode(str(items[-1].id).encode()).decode() if len(rows) > limit else None
    return AuditPage(items=items, next_cursor=next_cursor)
