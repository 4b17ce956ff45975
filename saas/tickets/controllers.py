"""``/api/v1/tickets`` and ``/api/v1/search``: the inbox list, a ticket's messages and activity, replies, notes,
media, and the ticket actions (accept, assign, transfer, close, reopen, priority, snooze, tags, read)."""

from __future__ import annotations

from typing import Annotated, TypeVar

from litestar import Controller, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter

from saas.auth.guards import Caller, requires
from saas.auth.permissions import Permission
from saas.auth.principal import principal_context
from saas.effects import act
from saas.params import Cursor, Id, Limit, OptionalId
from saas.runtime import Runtime
from saas.tickets import actions
from saas.tickets.schemas import (
    AssignTicket,
    CloseTicket,
    MessageOut,
    MessagePage,
    NoteIn,
    Priority,
    ReopenTicket,
    SearchPage,
    SendMessage,
    TicketEventOut,
    TicketOut,
    TicketPage,
    TicketStatus,
    TicketTags,
    TicketUpdate,
    TransferTicket,
)
from saas.tickets.service import TicketFilter, get_ticket, list_events, list_messages, list_tickets, search_messages

__all__ = ["SearchController", "TicketController", "act"]

T = TypeVar("T")


class TicketController(Controller):
    path = "/api/v1/tickets"
    tags = ["tickets"]

    @get("/", summary="The inbox: priority first, then who waits longest, then latest activity",
         guards=[requires(Permission.TICKETS_READ)])  # fmt: skip
    async def index(
        self,
        caller: NamedDependency[Caller],
        limit: Limit = 50,
        cursor: Cursor = None,
        status: Annotated[TicketStatus | None, QueryParameter(name="status")] = None,
        queue_id: OptionalId = None,
        user_id: OptionalId = None,
        tag_id: OptionalId = None,
        priority: Annotated[Priority | None, QueryParameter()] = None,
        snoozed: Annotated[bool, QueryParameter(description="only snoozed tickets")] = False,
        unassigned: Annotated[bool, QueryParameter(description="only tickets nobody took")] = False,
        mine: Annotated[bool, QueryParameter(description="only the caller's tickets")] = False,
        q: Annotated[str | None, QueryParameter(max_length=100, description="contact name or phone")] = None,
    ) -> TicketPage:
        async with principal_context(caller.claims) as (principal, session):
            filters = TicketFilter(status=status, queue_id=queue_id, user_id=principal.user_id if mine else user_id,
                                   tag_id=tag_id, priority=priority, snoozed=snoozed, q=q, unassigned=unassigned)  # fmt: skip
            return await list_tickets(session, filters, limit=limit, cursor=cursor, viewer=principal)

    @get("/{ticket_id:int}", summary="One ticket", guards=[requires(Permission.TICKETS_READ)])
    async def detail(self, caller: NamedDependency[Caller], ticket_id: Id) -> TicketOut:
        async with principal_context(caller.claims) as (principal, session):
            return await get_ticket(session, ticket_id, principal)

    @get("/{ticket_id:int}/messages", summary="A ticket's messages and notes: the latest page, oldest first",
         guards=[requires(Permission.TICKETS_READ)])  # fmt: skip
    async def messages(
        self, caller: NamedDependency[Caller], ticket_id: Id, limit: Limit = 50, cursor: Cursor = None
    ) -> MessagePage:
        async with principal_context(caller.claims) as (principal, session):
            return await list_messages(session, ticket_id, limit=limit, cursor=cursor, viewer=principal)

    @get("/{ticket_id:int}/events", summary="The ticket's activity log (accepted, transferred, closed ...)",
         guards=[requires(Permission.TICKETS_READ)])  # fmt: skip
    async def events(self, caller: NamedDependency[Caller], ticket_id: Id) -> list[TicketEventOut]:
        async with principal_context(caller.claims) as (principal, session):
            return await list_events(session, ticket_id, principal)

    @post("/{ticket_id:int}/messages", summary="Reply: the message is queued and sent by the session",
          status_code=201, guards=[requires(Permission.TICKETS_REPLY)])  # fmt: skip
    async def send(self, caller: NamedDependency[Caller], runtime: NamedDependency[Runtime], ticket_id: Id,
                   data: JSONBody[SendMessage]) -> MessageOut:  # fmt: skip
        return await act(caller, runtime, lambda s, p: actions.reply(s, ticket_id, p, text=data.text,
                                                                     client_id=data.client_id))  # fmt: skip

    @post("/{ticket_id:int}/notes", summary="A private note: staff see it in the conversation, the customer never",
          status_code=201, guards=[requires(Permission.TICKETS_UPDATE)])  # fmt: skip
    async def note(self, caller: NamedDependency[Caller], runtime: NamedDependency[Runtime], ticket_id: Id,
                   data: JSONBody[NoteIn]) -> MessageOut:  # fmt: skip
        return await act(caller, runtime, lambda s, p: actions.add_note(s, ticket_id, data.text, p,
                                                                        client_id=data.client_id))  # fmt: skip

    @post("/{ticket_id:int}/accept", summary="Take the ticket", status_code=200,
          guards=[requires(Permission.TICKETS_UPDATE)])  # fmt: skip
    async def accept(
        self, caller: NamedDependency[Caller], runtime: NamedDependency[Runtime], ticket_id: Id
    ) -> TicketOut:
        return await act(caller, runtime, lambda s, p: actions.accept(s, ticket_id, p))

    @post("/{ticket_id:int}/assign", summary="Give the ticket to a user", status_code=200,
          guards=[requires(Permission.TICKETS_UPDATE)])  # fmt: skip
    async def assign(self, caller: NamedDependency[Caller], runtime: NamedDependency[Runtime], ticket_id: Id,
                     data: JSONBody[AssignTicket]) -> TicketOut:  # fmt: skip
        return await act(caller, runtime, lambda s, p: actions.assign(s, ticket_id, data.user_id, p))

    @post("/{ticket_id:int}/transfer", summary="Move the ticket to another queue, agent and/or connection",
          status_code=200, guards=[requires(Permission.TICKETS_UPDATE)])  # fmt: skip
    async def transfer(self, caller: NamedDependency[Caller], runtime: NamedDependency[Runtime], ticket_id: Id,
                       data: JSONBody[TransferTicket]) -> TicketOut:  # fmt: skip
        return await act(caller, runtime, lambda s, p: actions.transfer(s, ticket_id, data, p))

    @post("/{ticket_id:int}/close", summary="Close: optional farewell, optional satisfaction survey", status_code=200,
          guards=[requires(Permission.TICKETS_UPDATE)])  # fmt: skip
    async def close(self, caller: NamedDependency[Caller], runtime: NamedDependency[Runtime], ticket_id: Id,
                    data: JSONBody[CloseTicket | None] = None) -> TicketOut:  # fmt: skip
        body = data or CloseTicket()
        return await act(caller, runtime, lambda s, p: actions.close(s, ticket_id, body, p))

    @post("/{ticket_id:int}/reopen", summary="Reopen a closed ticket", status_code=200,
          guards=[requires(Permission.TICKETS_UPDATE)])  # fmt: skip
    async def reopen(self, caller: NamedDependency[Caller], runtime: NamedDependency[Runtime], ticket_id: Id,
                     data: JSONBody[ReopenTicket | None] = None) -> TicketOut:  # fmt: skip
        body = data or ReopenTicket()
        return await act(caller, runtime, lambda s, p: actions.reopen(s, ticket_id, body, p))

    @patch("/{ticket_id:int}", summary="Change priority or snooze", guards=[requires(Permission.TICKETS_UPDATE)])
    async def update(self, caller: NamedDependency[Caller], runtime: NamedDependency[Runtime], ticket_id: Id,
                     data: JSONBody[TicketUpdate]) -> TicketOut:  # fmt: skip
        return await act(caller, runtime, lambda s, p: actions.update(s, ticket_id, data, p))

    @put("/{ticket_id:int}/tags", summary="Set the ticket's tags", guards=[requires(Permission.TICKETS_UPDATE)])
    async def set_tags(self, caller: NamedDependency[Caller], runtime: NamedDependency[Runtime], ticket_id: Id,
                   data: JSONBody[TicketTags]) -> TicketOut:  # fmt: skip
        return await act(caller, runtime, lambda s, p: actions.set_tags(s, ticket_id, data.tag_ids, p))

    @post("/{ticket_id:int}/read", summary="Mark the conversation read (unread count to 0)", status_code=200,
          guards=[requires(Permission.TICKETS_UPDATE)])  # fmt: skip
    async def read(
        self, caller: NamedDependency[Caller], runtime: NamedDependency[Runtime], ticket_id: Id
    ) -> TicketOut:
        return await act(caller, runtime, lambda s, p: actions.mark_read(s, ticket_id, p))


class SearchController(Controller):
    path = "/api/v1/search"
    tags = ["tickets"]

    @get("/messages", summary="Messages containing every word (as prefixes), newest first, in visible tickets",
         guards=[requires(Permission.TICKETS_READ)])  # fmt: skip
    async def messages(
        self,
        caller: NamedDependency[Caller],
        q: Annotated[str, QueryParameter(min_length=1, max_length=200)],
        limit: Limit = 20,
        cursor: Cursor = None,
        ticket_id: OptionalId = None,
    ) -> SearchPage:
        async with principal_context(caller.claims) as (principal, session):
            return await search_messages(session, q, limit=limit, cursor=cursor, viewer=principal, ticket_id=ticket_id)
