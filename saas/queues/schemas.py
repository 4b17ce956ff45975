"""Request and response shapes of the queues API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

__all__ = ["QueueIn", "QueueOut", "QueuePage", "QueueUpdate"]

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Color = Annotated[str, msgspec.Meta(pattern=r"^#[0-9a-fA-F]{6}$")]
Greeting = Annotated[str, msgspec.Meta(max_length=4096)]
Members = Annotated[list[Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]], msgspec.Meta(max_length=1000)]


class QueueOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    name: str
    color: str
    greeting: str
    member_ids: list[int]
    created_at: datetime


class QueuePage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[QueueOut]
    next_cursor: str | None = None


class QueueIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Name
    color: Color = "#5c6bc0"
    greeting: Greeting = ""
    member_ids: Members = []


class QueueUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Name | msgspec.UnsetType = msgspec.UNSET
    color: Color | msgspec.UnsetType = msgspec.UNSET
    greeting: Greeting | msgspec.UnsetType = msgspec.UNSET
    member_ids: Members | msgspec.UnsetType = msgspec.UNSET
