"""Request and response shapes of the ticket API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from saas.params import RowId

__all__ = [
    "AssignTicket",
    "CloseTicket",
    "ContactOut",
    "MediaOut",
    "MessageOut",
    "MessagePage",
    "NoteIn",
    "ReopenTicket",
    "SearchHit",
    "SearchPage",
    "SendMessage",
    "TagOut",
    "TicketEventOut",
    "TicketOut",
    "TicketPage",
    "TicketTags",
    "TicketUpdate",
    "TransferTicket",
]

Priority = Literal["low", "normal", "high", "urgent"]
TicketStatus = Literal["pending", "open", "closed"]


class ContactOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    name: str | None
    phone: str | None
    wa_id: str
    blocked: bool = False


class TagOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    name: str
    color: str


class TicketOut(msgspec.Struct, frozen=True, kw_only=True):
    """``waiting_since``: the oldest customer message no agent has answered yet (None: nobody is waiting).
    ``bot_state`` is ``menu`` while the chatbot waits for the customer's choice."""

    id: int
    number: int
    status: str
    priority: Priority
    contact: ContactOut
    connection_id: int
    queue_id: int | None
    user_id: int | None
    unread_count: int
    last_message_at: datetime | None
    last_message_preview: str | None
    waiting_since: datetime | None
    snoozed_until: datetime | None
    bot_state: str | None
    tags: list[TagOut]
    created_at: datetime
    updated_at: datetime
    accepted_at: datetime | None
    first_response_at: datetime | None
    closed_at: datetime | None


class TicketPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[TicketOut]
    next_cursor: str | None


class MediaOut(msgspec.Struct, frozen=True, kw_only=True):
    """``state``: ``pending`` (being downloaded from WhatsApp), ``stored`` (ready at ``url``), ``failed`` or
    ``rejected`` (over the size or type limits; ``error`` says why)."""

    mime: str
    size: int | None
    filename: str | None
    state: str
    error: str | None = None
    url: str | None = None


class MessageOut(msgspec.Struct, frozen=True, kw_only=True):
    """``private``: an internal note, never sent to the customer. ``bot``: sent by automation (menu, greeting,
    out-of-hours message, survey)."""

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
    private: bool = False
    bot: bool = False
    media: MediaOut | None = None
    occurred_at: datetime
    created_at: datetime


class MessagePage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[MessageOut]
    next_cursor: str | None


Text = Annotated[str, msgspec.Meta(min_length=1, max_length=4096, pattern=r"\S")]  # not only blanks


class SendMessage(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    text: Text
    client_id: uuid.UUID | None = None


class NoteIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    text: Text
    client_id: uuid.UUID | None = None


class AssignTicket(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    user_id: RowId


class TransferTicket(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Move the ticket to another queue, agent and/or connection; at least one of them. Without ``user_id`` the
    ticket waits unassigned in its (new) queue, where distribution may pick an agent."""

    queue_id: RowId | msgspec.UnsetType | None = msgspec.UNSET
    user_id: RowId | msgspec.UnsetType | None = msgspec.UNSET
    connection_id: RowId | msgspec.UnsetType = msgspec.UNSET
    note: Text | None = None


class CloseTicket(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``farewell``: the text sent on closing (default: the tenant's farewell message, none to a group; ``""``
    sends none). ``survey``: ask for a 1-5 rating (default: the tenant's CSAT setting; never a group)."""

    farewell: Annotated[str, msgspec.Meta(max_length=4096, pattern=r"^$|\S")] | None = None  # "" or a text
    survey: bool | None = None


class ReopenTicket(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Reopen a closed ticket, assigned to the caller (default) or waiting unassigned in its queue."""

    assign_to_me: bool = True


class TicketUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``snoozed_until``: hide the ticket from the inbox until then (a customer message wakes it earlier);
    null wakes it now."""

    priority: Priority | msgspec.UnsetType = msgspec.UNSET
    snoozed_until: datetime | msgspec.UnsetType | None = msgspec.UNSET


class TicketTags(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    tag_ids: Annotated[list[RowId], msgspec.Meta(max_length=50)]


class TicketEventOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    at: datetime
    actor_id: int | None
    action: str
    details: dict[str, object]


class SearchHit(msgspec.Struct, frozen=True, kw_only=True):
    message: MessageOut
    ticket_number: int
    ticket_status: str
    contact: ContactOut


class SearchPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[SearchHit]
    next_cursor: str | None
