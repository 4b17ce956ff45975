"""``/api/v1/tickets``: the inbox list, a ticket's messages, and replying."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter

from saas.auth.guards import Caller, requires
from saas.auth.permissions import Permission
from saas.auth.principal import principal_context
from saas.outbox import mark_dirty, relay_tenant
from saas.params import Id
from saas.runtime import Runtime
from saas.tickets.schemas import MessageOut, MessagePage, SendMessage, TicketOut, TicketPage
from saas.tickets.service import get_ticket, list_messages, list_tickets, queue_text
from supervisor.realtime import publish

__all__ = ["TicketController"]

Limit = Annotated[int, QueryParameter(name="limit", ge=1, le=200)]
Cursor = Annotated[str | None, QueryParameter(name="cursor", max_length=200)]


class TicketController(Controller):
    path = "/api/v1/tickets"
    tags = ["tickets"]

    @get("/", summary="List tickets, newest activity first", guards=[requires(Permission.TICKETS_READ)])
    async def index(
        self,
        caller: NamedDependency[Caller],
        limit: Limit = 50,
        cursor: Cursor = None,
        status: Annotated[str | None, QueryParameter(name="status")] = None,
    ) -> TicketPage:
        async with principal_context(caller.claims) as (principal, session):
            return await list_tickets(session, status=status, limit=limit, cursor=cursor, viewer=principal)

    @get("/{ticket_id:int}", summary="One ticket", guards=[requires(Permission.TICKETS_READ)])
    async def detail(self, caller: NamedDependency[Caller], ticket_id: Id) -> TicketOut:
        async with principal_context(caller.claims) as (principal, session):
            return await get_ticket(session, ticket_id, principal)

    @get(
        "/{ticket_id:int}/messages",
        summary="A ticket's messages: the latest page, oldest first",
        guards=[requires(Permission.TICKETS_READ)],
    )
    async def messages(
        self, caller: NamedDependency[Caller], ticket_id: Id, limit: Limit = 50, cursor: Cursor = None
    ) -> MessagePage:
        async with principal_context(caller.claims) as (principal, session):
            return await list_messages(session, ticket_id, limit=limit, cursor=cursor, viewer=principal)

    @post(
        "/{ticket_id:int}/messages",
        summary="Reply: the message is queued and sent by the session",
        status_code=201,
        guards=[requires(Permission.TICKETS_REPLY)],
    )
    async def send(
        self,
        caller: NamedDependency[Caller],
        runtime: NamedDependency[Runtime],
        ticket_id: Id,
        data: JSONBody[SendMessage],
    ) -> MessageOut:
        await mark_dirty(runtime.redis_client, runtime.keys, caller.claims.tid)  # before the commit: see saas.outbox
        async with principal_context(caller.claims) as (principal, session):
            message, events, created = await queue_text(session, ticket_id, user_id=principal.user_id, text=data.text,
                                                        client_id=data.client_id, viewer=principal)  # fmt: skip
        if created:
            await relay_tenant(runtime.redis_client, runtime.keys, caller.claims.tid, message_ids=[message.id])
            await publish(runtime.redis_client, runtime.keys, caller.claims.tid, events)
        return message
