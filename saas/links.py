"""Replace a row's links in a join table (a queue's members, a ticket's tags ...) in one place, so every such
write checks its ids the same way: each must be a row of this tenant, else 400 and nothing is written."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from tenants.errors import InvalidInput

__all__ = ["replace_links"]


async def replace_links(conn: asyncpg.Connection, table: str, owner: tuple[str, int], target: tuple[str, str],
                        ids: Iterable[int], *, field: str) -> list[int]:  # fmt: skip
    """Make ``table`` link the owner ``(column, id)`` to exactly ``ids`` of ``target`` ``(column, table)``;
    returns the ids, sorted. Names are the caller's constants (never input); rows that stay are left alone."""
    owner_column, owner_id = owner
    target_column, target_table = target
    wanted = sorted(set(ids))
    if await conn.fetchval(f"SELECT count(*) FROM {target_table} WHERE id = ANY($1::bigint[])", wanted) != len(wanted):
        raise InvalidInput(f"{field} must be {target_table} of this tenant", field=field)
    await conn.execute(f"DELETE FROM {table} WHERE {owner_column} = $1 AND NOT {target_column} = ANY($2::bigint[])",
                       owner_id, wanted)  # fmt: skip
    await conn.execute(
        f"INSERT INTO {table} ({owner_column}, {target_column}) SELECT $1, unnest($2::bigint[]) ON CONFLICT DO NOTHING",
        owner_id, wanted,
    )  # fmt: skip
    return wanted
