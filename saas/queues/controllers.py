"""``/api/v1/queues``: admins manage queues and their members; everyone else reads the queues they belong to."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from saas.auth.guards import Caller, requires
from saas.auth.permissions import Permission
from saas.auth.principal import Principal, principal_context
from saas.effects import Effects, act
from saas.params import Id, client_address
from saas.queues.assign import distribute_now
from saas.queues.schemas import QueueIn, QueueOut, QueuePage, QueueUpdate
from saas.queues.service import create_queue, delete_queue, get_queue, list_queues, update_queue
from saas.runtime import Runtime
from supervisor.wire import utcnow
from tenants.context import TenantSession

__all__ = ["QueueController"]


class QueueController(Controller):
    path = "/api/v1/queues"
    tags = ["queues"]

    @get(
        "/",
        summary="Queues: all for admins, the caller's own for everyone else",
        guards=[requires(Permission.QUEUES_READ)],
    )
    async def index(self, caller: NamedDependency[Caller]) -> QueuePage:
        async with principal_context(caller.claims) as (principal, session):
            member = None if principal.role in ("admin", "integration") else principal.user_id
            return QueuePage(items=await list_queues(session, member=member))

    @post("/", summary="Create a queue (within the plan's limit)", status_code=201,
          guards=[requires(Permission.QUEUES_MANAGE)])  # fmt: skip
    async def create(self, request: Request[Any, Any, Any], caller: NamedDependency[Caller],
                     data: JSONBody[QueueIn]) -> QueueOut:  # fmt: skip
        async with principal_context(caller.claims) as (principal, session):
            return await create_queue(session, data, actor_id=principal.user_id, origin=client_address(request))

    @get("/{queue_id:int}", summary="One queue", guards=[requires(Permission.QUEUES_MANAGE)])
    async def detail(self, caller: NamedDependency[Caller], queue_id: Id) -> QueueOut:
        async with principal_context(caller.claims) as (_principal, session):
            return await get_queue(session, queue_id)

    @patch("/{queue_id:int}", summary="Change name, color, greeting, members, connections, distribution or hours "
           "(waiting tickets are distributed again)", guards=[requires(Permission.QUEUES_MANAGE)])  # fmt: skip
    async def update(self, request: Request[Any, Any, Any], caller: NamedDependency[Caller],
                     runtime: NamedDependency[Runtime], queue_id: Id, data: JSONBody[QueueUpdate]) -> QueueOut:  # fmt: skip
        async def change(session: TenantSession, principal: Principal) -> tuple[QueueOut, Effects]:
            queue = await update_queue(
                session, queue_id, data, actor_id=principal.user_id, origin=client_address(request)
            )
            return queue, await distribute_now(session, [queue_id], now=utcnow())

        return await act(caller, runtime, change)

    @delete("/{queue_id:int}", summary="Delete a queue (its tickets lose their queue)", status_code=204,
            guards=[requires(Permission.QUEUES_MANAGE)])  # fmt: skip
    async def remove(self, request: Request[Any, Any, Any], caller: NamedDependency[Caller], queue_id: Id) -> None:
        async with principal_context(caller.claims) as (principal, session):
            await delete_queue(session, queue_id, actor_id=principal.user_id, origin=client_address(request))
