"""Request and response shapes of the ticket API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

__all__ = ["MessageOut", "MessagePage", "SendMessage", "TicketOut", "TicketPage"]


class ContactOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    name: str | None
    phone: str | None
    wa_id: str


class TicketOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    number: int
    status: str
    contact: ContactOut
    connection_id: int
    queue_id: int | None
    user_id: int | None
    unread_count: int
    last_message_at: datetime | None
    last_message_preview: str | None
    created_at: datetime
    updated_at: datetime


class TicketPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[TicketOut]
    next_cursor: str | None


class MessageOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    ticket_id: int
    from_me: bool
    kind: str
    text: str | None
    status: str
    sender_name: str | None
    user_id: int | None
    provider_message_id: str | None
    error_code: str | None
    error_title: str | None
    client_id: uuid.UUID | None
    occurred_at: datetime
    created_at: datetime


class MessagePage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[MessageOut]
    next_cursor: str | None


class SendMessage(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
    client_id: uuid.UUID | None = None
