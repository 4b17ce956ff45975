"""``/api/v1/contacts``: list and search, add, edit, tags, notes, merge, block, and a contact's history."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter

from saas.auth.guards import Caller, requires
from saas.auth.permissions import Permission
from saas.auth.principal import principal_context
from saas.contacts import service
from saas.contacts.schemas import (
    ContactDetail,
    ContactIn,
    ContactNoteIn,
    ContactNoteOut,
    ContactPage,
    ContactTags,
    ContactUpdate,
    MergeContacts,
)
from saas.effects import act
from saas.params import Cursor, Id, Limit, OptionalId, client_address
from saas.runtime import Runtime
from saas.tickets.schemas import MessagePage, TicketPage

__all__ = ["ContactController"]


class ContactController(Controller):
    path = "/api/v1/contacts"
    tags = ["contacts"]

    @get("/", summary="Contacts, newest first; q matches names (word prefixes) or phone digits",
         guards=[requires(Permission.CONTACTS_READ)])  # fmt: skip
    async def index(
        self,
        caller: NamedDependency[Caller],
        q: Annotated[str | None, QueryParameter(max_length=100)] = None,
        tag_id: OptionalId = None,
        blocked: Annotated[bool | None, QueryParameter()] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> ContactPage:
        async with principal_context(caller.claims) as (_principal, session):
            return await service.list_contacts(session, q=q, tag_id=tag_id, blocked=blocked, limit=limit,
                                               cursor=cursor)  # fmt: skip

    @post("/", summary="Add a contact by phone number", status_code=201, guards=[requires(Permission.CONTACTS_WRITE)])
    async def create(self, request: Request[Any, Any, Any], caller: NamedDependency[Caller],
                     data: JSONBody[ContactIn]) -> ContactDetail:  # fmt: skip
        async with principal_context(caller.claims) as (principal, session):
            return await service.create_contact(
                session, data, actor_id=principal.user_id, origin=client_address(request)
            )

    @get("/{contact_id:int}", summary="One contact", guards=[requires(Permission.CONTACTS_READ)])
    async def detail(self, caller: NamedDependency[Caller], contact_id: Id) -> ContactDetail:
        async with principal_context(caller.claims) as (_principal, session):
            return await service.get_contact(session, contact_id)

    @patch(
        "/{contact_id:int}", summary="Edit name, e-mail or custom fields", guards=[requires(Permission.CONTACTS_WRITE)]
    )
    async def update(self, caller: NamedDependency[Caller], runtime: NamedDependency[Runtime], contact_id: Id,
                     data: JSONBody[ContactUpdate]) -> ContactDetail:  # fmt: skip
        return await act(caller, runtime, lambda s, _p: service.update_contact(s, contact_id, data))

    @put("/{contact_id:int}/tags", summary="Set the contact's tags", guards=[requires(Permission.CONTACTS_WRITE)])
    async def set_tags(self, caller: NamedDependency[Caller], runtime: NamedDependency[Runtime], contact_id: Id,
                   data: JSONBody[ContactTags]) -> ContactDetail:  # fmt: skip
        return await act(caller, runtime, lambda s, _p: service.set_tags(s, contact_id, data.tag_ids))

    @post("/{contact_id:int}/merge", summary="Fold another contact (same person) into this one", status_code=200,
          guards=[requires(Permission.CONTACTS_MANAGE)])  # fmt: skip
    async def merge(self, request: Request[Any, Any, Any], caller: NamedDependency[Caller],
                    runtime: NamedDependency[Runtime], contact_id: Id, data: JSONBody[MergeContacts]) -> ContactDetail:  # fmt: skip
        return await act(caller, runtime, lambda s, p: service.merge(s, contact_id, data.other_id, actor_id=p.user_id,
                                                                     origin=client_address(request)))  # fmt: skip

    @post("/{contact_id:int}/block", summary="Block: the contact's messages are dropped, nobody can write to them",
          status_code=200, guards=[requires(Permission.CONTACTS_MANAGE)])  # fmt: skip
    async def block(self, request: Request[Any, Any, Any], caller: NamedDependency[Caller],
                    runtime: NamedDependency[Runtime], contact_id: Id) -> ContactDetail:  # fmt: skip
        return await act(caller, runtime, lambda s, p: service.set_blocked(s, contact_id, True, actor_id=p.user_id,
                                                                           origin=client_address(request)))  # fmt: skip

    @post(
        "/{contact_id:int}/unblock", summary="Unblock", status_code=200, guards=[requires(Permission.CONTACTS_MANAGE)]
    )
    async def unblock(self, request: Request[Any, Any, Any], caller: NamedDependency[Caller],
                      runtime: NamedDependency[Runtime], contact_id: Id) -> ContactDetail:  # fmt: skip
        return await act(caller, runtime, lambda s, p: service.set_blocked(s, contact_id, False, actor_id=p.user_id,
                                                                           origin=client_address(request)))  # fmt: skip

    @get("/{contact_id:int}/tickets", summary="Every ticket of the contact, newest first",
         guards=[requires(Permission.TICKETS_READ)])  # fmt: skip
    async def tickets(self, caller: NamedDependency[Caller], contact_id: Id, limit: Limit = 50,
                      cursor: Cursor = None) -> TicketPage:  # fmt: skip
        async with principal_context(caller.claims) as (principal, session):
            return await service.contact_tickets(session, contact_id, principal, limit=limit, cursor=cursor)

    @get("/{contact_id:int}/messages", summary="The contact's whole history across tickets (latest page, oldest first)",
         guards=[requires(Permission.TICKETS_READ)])  # fmt: skip
    async def history(self, caller: NamedDependency[Caller], contact_id: Id, limit: Limit = 50,
                      cursor: Cursor = None) -> MessagePage:  # fmt: skip
        async with principal_context(caller.claims) as (principal, session):
            return await service.contact_history(session, contact_id, principal, limit=limit, cursor=cursor)

    @get("/{contact_id:int}/notes", summary="Notes about the contact, newest first",
         guards=[requires(Permission.CONTACTS_READ)])  # fmt: skip
    async def notes(self, caller: NamedDependency[Caller], contact_id: Id) -> list[ContactNoteOut]:
        async with principal_context(caller.claims) as (_principal, session):
            return await service.list_notes(session, contact_id)

    @post("/{contact_id:int}/notes", summary="Add a note about the contact", status_code=201,
          guards=[requires(Permission.CONTACTS_WRITE)])  # fmt: skip
    async def add_note(self, caller: NamedDependency[Caller], contact_id: Id,
                       data: JSONBody[ContactNoteIn]) -> ContactNoteOut:  # fmt: skip
        async with principal_context(caller.claims) as (principal, session):
            return await service.add_note(session, contact_id, data.text, user_id=principal.user_id)

    @delete("/{contact_id:int}/notes/{note_id:int}", summary="Delete a note (its author, supervisors, admins)",
            status_code=204, guards=[requires(Permission.CONTACTS_WRITE)])  # fmt: skip
    async def delete_note(self, caller: NamedDependency[Caller], contact_id: Id, note_id: Id) -> None:
        async with principal_context(caller.claims) as (principal, session):
            await service.delete_note(session, contact_id, note_id, principal)
