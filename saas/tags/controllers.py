"""``/api/v1/tags``."""

from __future__ import annotations

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from saas.auth.guards import Caller, requires
from saas.auth.permissions import Permission
from saas.auth.principal import principal_context
from saas.params import Id
from saas.tags.service import TagIn, TagUpdate, create_tag, delete_tag, list_tags, update_tag
from saas.tickets.schemas import TagOut

__all__ = ["TagController"]


class TagController(Controller):
    path = "/api/v1/tags"
    tags = ["tags"]

    @get("/", summary="Every tag", guards=[requires(Permission.TICKETS_READ)])
    async def index(self, caller: NamedDependency[Caller]) -> list[TagOut]:
        async with principal_context(caller.claims) as (_principal, session):
            return await list_tags(session)

    @post("/", summary="Create a tag", status_code=201, guards=[requires(Permission.TAGS_MANAGE)])
    async def create(self, caller: NamedDependency[Caller], data: JSONBody[TagIn]) -> TagOut:
        async with principal_context(caller.claims) as (_principal, session):
            return await create_tag(session, data)

    @patch("/{tag_id:int}", summary="Rename or recolor a tag", guards=[requires(Permission.TAGS_MANAGE)])
    async def update(self, caller: NamedDependency[Caller], tag_id: Id, data: JSONBody[TagUpdate]) -> TagOut:
        async with principal_context(caller.claims) as (_principal, session):
            return await update_tag(session, tag_id, data)

    @delete("/{tag_id:int}", summary="Delete a tag (it comes off every ticket and contact)", status_code=204,
            guards=[requires(Permission.TAGS_MANAGE)])  # fmt: skip
    async def remove(self, caller: NamedDependency[Caller], tag_id: Id) -> None:
        async with principal_context(caller.claims) as (_principal, session):
            await delete_tag(session, tag_id)
