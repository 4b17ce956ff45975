"""``/api/v1/quick-replies`` and ``/api/v1/tickets/{id}/quick-replies`` (filled in for that ticket)."""

from __future__ import annotations

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from saas.auth.guards import Caller, requires
from saas.auth.permissions import Permission
from saas.auth.principal import principal_context
from saas.params import Id
from saas.quick_replies.service import (
    QuickReplyIn,
    QuickReplyOut,
    QuickReplyUpdate,
    RenderedReply,
    create_reply,
    delete_reply,
    list_replies,
    render_for_ticket,
    update_reply,
)
from supervisor.wire import utcnow

__all__ = ["QuickReplyController", "TicketQuickReplyController"]


class QuickReplyController(Controller):
    path = "/api/v1/quick-replies"
    tags = ["quick replies"]

    @get("/", summary="The quick replies the caller may use", guards=[requires(Permission.QUICK_REPLIES_USE)])
    async def index(self, caller: NamedDependency[Caller]) -> list[QuickReplyOut]:
        async with principal_context(caller.claims) as (principal, session):
            return await list_replies(session, principal)

    @post("/", summary="Save a quick reply (personal, or for a queue or the whole tenant)", status_code=201,
          guards=[requires(Permission.QUICK_REPLIES_USE)])  # fmt: skip
    async def create(self, caller: NamedDependency[Caller], data: JSONBody[QuickReplyIn]) -> QuickReplyOut:
        async with principal_context(caller.claims) as (principal, session):
            return await create_reply(session, data, principal)

    @patch("/{reply_id:int}", summary="Change a quick reply", guards=[requires(Permission.QUICK_REPLIES_USE)])
    async def update(self, caller: NamedDependency[Caller], reply_id: Id,
                     data: JSONBody[QuickReplyUpdate]) -> QuickReplyOut:  # fmt: skip
        async with principal_context(caller.claims) as (principal, session):
            return await update_reply(session, reply_id, data, principal)

    @delete("/{reply_id:int}", summary="Delete a quick reply", status_code=204,
            guards=[requires(Permission.QUICK_REPLIES_USE)])  # fmt: skip
    async def remove(self, caller: NamedDependency[Caller], reply_id: Id) -> None:
        async with principal_context(caller.claims) as (principal, session):
            await delete_reply(session, reply_id, principal)


class TicketQuickReplyController(Controller):
    path = "/api/v1/tickets/{ticket_id:int}/quick-replies"
    tags = ["quick replies"]

    @get("/", summary="The caller's quick replies filled in for this ticket",
         guards=[requires(Permission.QUICK_REPLIES_USE)])  # fmt: skip
    async def rendered(self, caller: NamedDependency[Caller], ticket_id: Id) -> list[RenderedReply]:
        async with principal_context(caller.claims) as (principal, session):
            return await render_for_ticket(session, ticket_id, principal, now=utcnow())
