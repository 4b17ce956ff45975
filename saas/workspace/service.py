"""The tenant's service rules (one row of ``tenant_settings``): read by the router on every new conversation and
by the ticket actions, changed by admins (audited)."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg
import msgspec

from saas.audit.service import record
from saas.queues.calendar import Calendar
from saas.queues.hours import decode_hours, hours_json, to_calendar
from saas.workspace.schemas import WorkspaceSettings, WorkspaceUpdate
from tenants.context import TenantSession
from tenants.errors import InvalidInput

__all__ = ["check_timezone", "load_settings", "tenant_calendar", "update_settings"]

_COLUMNS = """timezone, hours, out_of_hours_message, reopen_mode, reopen_window_s, farewell_message, csat_enabled,
              csat_prompt, csat_thanks, csat_window_s, updated_at"""


def _settings(row: asyncpg.Record) -> WorkspaceSettings:
    return WorkspaceSettings(**{**dict(row), "hours": decode_hours(row["hours"])})


async def load_settings(conn: asyncpg.Connection) -> WorkspaceSettings:
    """The settings of the tenant whose transaction ``conn`` is in."""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM tenant_settings")
    assert row is not None, "tenant_settings has its one row from the migration"
    return _settings(row)


def tenant_calendar(settings: WorkspaceSettings) -> Calendar | None:
    """The tenant's business hours, or None when it is always open."""
    return None if settings.hours is None else to_calendar(settings.hours, settings.timezone)


def check_timezone(name: str, field: str = "timezone") -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {name!r}; use an IANA name such as America/Sao_Paulo",
                           field=field) from None  # fmt: skip
    return name


async def update_settings(session: TenantSession, data: WorkspaceUpdate, *, actor_id: int,
                          origin: str | None) -> WorkspaceSettings:  # fmt: skip
    changes: dict[str, Any] = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
    current = await load_settings(session.conn)
    timezone = check_timezone(changes.get("timezone", current.timezone))
    hours = changes.get("hours", current.hours)
    if hours is not None:
        to_calendar(hours, timezone)  # validates (overlaps, zones, ...) before anything is written
    if "hours" in changes:
        changes["hours"] = hours_json(changes["hours"])
    if changes:
        assignments = ", ".join(f"{column} = ${i + 1}" for i, column in enumerate(changes))  # columns from the schema
        await session.conn.execute(f"UPDATE tenant_settings SET {assignments}, updated_at = now()", *changes.values())
        await record(session, actor_id=actor_id, action="settings.updated", target="settings",
                     details={k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET
                              and k != "hours"} | ({"hours": "changed"} if "hours" in changes else {}),
                     origin=origin)  # fmt: skip
    return await load_settings(session.conn)
