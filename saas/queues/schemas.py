"""Request and response shapes of the queues API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from saas.params import RowId
from saas.queues.hours import HoursSpec

__all__ = ["QueueIn", "QueueOut", "QueuePage", "QueueUpdate"]

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"\S")]  # stored stripped: not blank
Color = Annotated[str, msgspec.Meta(pattern=r"^#[0-9a-fA-F]{6}$")]
Greeting = Annotated[str, msgspec.Meta(max_length=4096)]
Members = Annotated[list[RowId], msgspec.Meta(max_length=1000)]
Connections = Annotated[list[RowId], msgspec.Meta(max_length=100)]
Strategy = Literal["manual", "round_robin", "least_busy"]
Message = Annotated[str, msgspec.Meta(max_length=4096)]


class QueueOut(msgspec.Struct, frozen=True, kw_only=True):
    """``strategy``: ``manual`` (agents accept from pending), ``round_robin`` or ``least_busy`` among online members
    below their capacity. ``hours`` null: the tenant's hours. ``return_on_offline``: an agent going offline gives
    their open tickets of this queue back to it."""

    id: int
    name: str
    color: str
    greeting: str
    member_ids: list[int]
    connection_ids: list[int]
    strategy: str
    return_on_offline: bool
    hours: HoursSpec | None
    out_of_hours_message: str
    created_at: datetime


class QueuePage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[QueueOut]
    next_cursor: str | None = None


class QueueIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Name
    color: Color = "#5c6bc0"
    greeting: Greeting = ""
    member_ids: Members = []
    connection_ids: Connections = []
    strategy: Strategy = "manual"
    return_on_offline: bool = False
    hours: HoursSpec | None = None
    out_of_hours_message: Message = ""


class QueueUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Name | msgspec.UnsetType = msgspec.UNSET
    color: Color | msgspec.UnsetType = msgspec.UNSET
    greeting: Greeting | msgspec.UnsetType = msgspec.UNSET
    member_ids: Members | msgspec.UnsetType = msgspec.UNSET
    connection_ids: Connections | msgspec.UnsetType = msgspec.UNSET
    strategy: Strategy | msgspec.UnsetType = msgspec.UNSET
    return_on_offline: bool | msgspec.UnsetType = msgspec.UNSET
    hours: HoursSpec | msgspec.UnsetType | None = msgspec.UNSET
    out_of_hours_message: Message | msgspec.UnsetType = msgspec.UNSET
