"""Request and response shapes of ``/api/v1/settings``: the tenant's service rules."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from saas.queues.hours import HoursSpec

__all__ = ["ReopenMode", "WorkspaceSettings", "WorkspaceUpdate"]

ReopenMode = Literal["window", "new"]
Text = Annotated[str, msgspec.Meta(max_length=4096)]
Prompt = Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
Zone = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class WorkspaceSettings(msgspec.Struct, frozen=True, kw_only=True):
    """``reopen_mode``: ``window`` reopens the last ticket when the customer writes within ``reopen_window_s`` of its
    closing, ``new`` always opens a new ticket. ``hours`` NULL means always open."""

    timezone: str
    hours: HoursSpec | None
    out_of_hours_message: str
    reopen_mode: ReopenMode
    reopen_window_s: int
    farewell_message: str
    csat_enabled: bool
    csat_prompt: str
    csat_thanks: str
    csat_window_s: int
    updated_at: datetime


class WorkspaceUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    timezone: Zone | msgspec.UnsetType = msgspec.UNSET
    hours: HoursSpec | msgspec.UnsetType | None = msgspec.UNSET
    out_of_hours_message: Text | msgspec.UnsetType = msgspec.UNSET
    reopen_mode: ReopenMode | msgspec.UnsetType = msgspec.UNSET
    reopen_window_s: Annotated[int, msgspec.Meta(ge=0, le=2_592_000)] | msgspec.UnsetType = msgspec.UNSET
    farewell_message: Text | msgspec.UnsetType = msgspec.UNSET
    csat_enabled: bool | msgspec.UnsetType = msgspec.UNSET
    csat_prompt: Prompt | msgspec.UnsetType = msgspec.UNSET
    csat_thanks: Text | msgspec.UnsetType = msgspec.UNSET
    csat_window_s: Annotated[int, msgspec.Meta(ge=60, le=2_592_000)] | msgspec.UnsetType = msgspec.UNSET
