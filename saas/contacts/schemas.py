"""Request and response shapes of the contacts API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from saas.params import RowId
from saas.tickets.schemas import TagOut

__all__ = ["ContactDetail", "ContactIn", "ContactNoteIn", "ContactNoteOut", "ContactPage", "ContactTags",
           "ContactUpdate", "CustomFields", "MergeContacts"]  # fmt: skip

FieldName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_ .-]{0,63}$")]
FieldValue = Annotated[str, msgspec.Meta(max_length=1024)]
CustomFields = Annotated[dict[FieldName, FieldValue], msgspec.Meta(max_length=50)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=120, pattern=r"\S")]  # not only blanks
Email = Annotated[str, msgspec.Meta(pattern=r"^[^@\s]{1,64}@[^@\s]{1,189}$")]


class ContactDetail(msgspec.Struct, frozen=True, kw_only=True):
    """``phone``: E.164 as WhatsApp knows the number; ``lid``: WhatsApp's privacy id when it showed one;
    ``wa_id``: the chat replies go to."""

    id: int
    name: str | None
    push_name: str | None
    phone: str | None
    wa_id: str
    lid: str | None
    email: str | None
    is_group: bool
    custom_fields: dict[str, str]
    tags: list[TagOut]
    blocked: bool
    blocked_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ContactPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[ContactDetail]
    next_cursor: str | None


class ContactIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A contact added by hand; ``phone`` in any usual form (``+55 11 98888-7777``, ``(11) 98888-7777`` ...)."""

    phone: Annotated[str, msgspec.Meta(min_length=6, max_length=40)]
    name: Name | None = None
    email: Email | None = None
    custom_fields: CustomFields = {}


class ContactUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``custom_fields`` replaces the whole set; a null name falls back to the WhatsApp push name."""

    name: Name | msgspec.UnsetType | None = msgspec.UNSET
    email: Email | msgspec.UnsetType | None = msgspec.UNSET
    custom_fields: CustomFields | msgspec.UnsetType = msgspec.UNSET


class ContactTags(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    tag_ids: Annotated[list[RowId], msgspec.Meta(max_length=50)]


class MergeContacts(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Fold contact ``other_id`` into this one (its tickets, notes, tags and identities); ``other_id`` is deleted."""

    other_id: RowId


class ContactNoteIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=4096, pattern=r"\S")]


class ContactNoteOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    contact_id: int
    user_id: int | None
    text: str
    created_at: datetime
