"""Tags (labels for tickets and contacts): admins and supervisors manage them, everyone applies them."""

from __future__ import annotations

from typing import Annotated

import asyncpg
import msgspec

from saas.tickets.schemas import TagOut
from tenants.context import TenantSession
from tenants.errors import Conflict, NotFound

__all__ = ["TagIn", "TagNotFound", "TagUpdate", "create_tag", "delete_tag", "list_tags", "update_tag"]

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=50, pattern=r"\S")]  # stored stripped: not blank
Color = Annotated[str, msgspec.Meta(pattern=r"^#[0-9a-fA-F]{6}$")]


class TagIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Name
    color: Color = "#78909c"


class TagUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Name | msgspec.UnsetType = msgspec.UNSET
    color: Color | msgspec.UnsetType = msgspec.UNSET


class TagNotFound(NotFound):
    code = "tag_not_found"
    title = "Tag not found"


async def list_tags(session: TenantSession) -> list[TagOut]:
    rows = await session.conn.fetch("SELECT id, name, color FROM tags ORDER BY lower(name)")
    return [TagOut(**dict(r)) for r in rows]


async def create_tag(session: TenantSession, data: TagIn) -> TagOut:
    try:
        row = await session.conn.fetchrow(
            "INSERT INTO tags (name, color) VALUES ($1, $2) RETURNING id, name, color", data.name.strip(), data.color
        )
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(f"a tag named {data.name!r} exists", field="name") from exc
    assert row is not None
    return TagOut(**dict(row))


async def update_tag(session: TenantSession, tag_id: int, data: TagUpdate) -> TagOut:
    name = None if data.name is msgspec.UNSET else data.name.strip()
    color = None if data.color is msgspec.UNSET else data.color
    try:
        row = await session.conn.fetchrow(
            "UPDATE tags SET name = coalesce($2, name), color = coalesce($3, color) WHERE id = $1"
            " RETURNING id, name, color",
            tag_id, name, color,
        )  # fmt: skip
    except asyncpg.UniqueViolationError as exc:
        raise Conflict("a tag with that name exists", field="name") from exc
    if row is None:
        raise TagNotFound(f"tag {tag_id} does not exist", tag_id=tag_id)
    return TagOut(**dict(row))


async def delete_tag(session: TenantSession, tag_id: int) -> None:
    """Delete a tag; it comes off every ticket and contact."""
    if await session.conn.fetchval("DELETE FROM tags WHERE id = $1 RETURNING id", tag_id) is None:
        raise TagNotFound(f"tag {tag_id} does not exist", tag_id=tag_id)
