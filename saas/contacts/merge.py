"""Merging contacts that are one person (asked by an admin, or found by the router), inside the caller's tenant
transaction.

Everything of the dropped contacts moves to the kept one: tickets (with their whole history), notes, tags,
custom fields (the kept contact's values win), the identity keys it lacks, surveys and out-of-hours notices.
Where both have an active ticket on the same connection, the dropped ticket's messages move into the kept one's
and the dropped ticket is closed (``merged`` in its activity log), so "one active ticket per contact and
connection" still holds. The dropped rows are deleted.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import msgspec

from saas.tickets.lifecycle import log_event

__all__ = ["merge_contacts"]


async def merge_contacts(conn: asyncpg.Connection, keep_id: int, drop_ids: Sequence[int], *, reason: str,
                         actor_id: int | None = None) -> list[int]:  # fmt: skip
    """Fold ``drop_ids`` into ``keep_id``; returns the ids of the tickets that changed."""
    drops = sorted(set(drop_ids) - {keep_id})
    if not drops:
        return []
    rows = await conn.fetch(
        "SELECT id, name, phone, phone_key, lid, email, custom_fields, push_name, blocked_at FROM contacts"
        " WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE",
        [keep_id, *drops],
    )
    by_id = {r["id"]: r for r in rows}
    if keep_id not in by_id:
        raise LookupError(f"contact {keep_id} does not exist")
    drops = [d for d in drops if d in by_id]
    changed: list[int] = []

    # One dropped contact at a time, so two of them with active tickets on one connection fold in turn: the kept
    # contact's active ticket absorbs each clashing ticket's messages and the clashing ticket is closed.
    for drop in drops:
        changed += await _fold_tickets(conn, keep_id, drop, reason=reason, actor_id=actor_id)
    await conn.execute("UPDATE contact_notes SET contact_id = $1 WHERE contact_id = ANY($2::bigint[])", keep_id, drops)
    await conn.execute(
        "INSERT INTO contact_tags (contact_id, tag_id) SELECT $1, tag_id FROM contact_tags"
        " WHERE contact_id = ANY($2::bigint[]) ON CONFLICT DO NOTHING",
        keep_id, drops,
    )  # fmt: skip
    await conn.execute(
        "INSERT INTO out_of_hours_notices (contact_id, scope, window_key, sent_at)"
        " SELECT $1, scope, window_key, sent_at FROM out_of_hours_notices WHERE contact_id = ANY($2::bigint[])"
        " ON CONFLICT DO NOTHING",
        keep_id, drops,
    )  # fmt: skip
    # One survey at most waits per connection: the kept contact's, else the newest.
    await conn.execute(
        """
        UPDATE csat_surveys SET state = 'expired'
        WHERE contact_id = ANY($2::bigint[]) AND state = 'asked' AND id NOT IN (
            SELECT DISTINCT ON (connection_id) id FROM csat_surveys
            WHERE contact_id = ANY($2::bigint[]) AND state = 'asked'
            ORDER BY connection_id, (contact_id = $1) DESC, id DESC)
        """,
        keep_id, [keep_id, *drops],
    )  # fmt: skip
    await conn.execute("UPDATE csat_surveys SET contact_id = $1 WHERE contact_id = ANY($2::bigint[])", keep_id, drops)

    keep = by_id[keep_id]
    merged = {"name": keep["name"], "phone": keep["phone"], "phone_key": keep["phone_key"], "lid": keep["lid"],
              "email": keep["email"], "push_name": keep["push_name"]}  # fmt: skip
    fields: dict[str, object] = {}  # the dropped contacts' fields, the kept contact's own winning (in the UPDATE)
    # Blocked if any of them was: a block is a decision about the person (since the earliest one).
    blocks = [by_id[c]["blocked_at"] for c in (keep_id, *drops) if by_id[c]["blocked_at"] is not None]
    blocked_at = keep["blocked_at"] or (min(blocks) if blocks else None)
    for row in (by_id[d] for d in drops):
        for column in merged:
            merged[column] = merged[column] or row[column]
        fields.update(msgspec.json.decode(row["custom_fields"]))
    # The dropped rows go first: their keys are unique and move to the kept row.
    await conn.execute("DELETE FROM contacts WHERE id = ANY($1::bigint[])", drops)
    await conn.execute(
        """
        UPDATE contacts SET name = $2, phone = $3, phone_key = $4, lid = $5, email = $6, push_name = $7,
               custom_fields = $8::jsonb || custom_fields, blocked_at = $9, updated_at = now()
        WHERE id = $1
        """,
        keep_id, merged["name"], merged["phone"], merged["phone_key"], merged["lid"], merged["email"],
        merged["push_name"], msgspec.json.encode(fields).decode(), blocked_at,
    )  # fmt: skip
    return sorted(set(changed))


async def _fold_tickets(conn: asyncpg.Connection, keep_id: int, drop: int, *, reason: str,
                        actor_id: int | None) -> list[int]:  # fmt: skip
    changed: list[int] = []
    clashes = await conn.fetch(
        """
        SELECT d.id AS drop_ticket, k.id AS keep_ticket FROM tickets d
        JOIN tickets k ON k.contact_id = $1 AND k.connection_id = d.connection_id AND k.status <> 'closed'
        WHERE d.contact_id = $2 AND d.status <> 'closed'
        """,
        keep_id, drop,
    )  # fmt: skip
    for clash in clashes:
        await conn.execute("UPDATE messages SET ticket_id = $2 WHERE ticket_id = $1", clash["drop_ticket"],
                           clash["keep_ticket"])  # fmt: skip
        await conn.execute(
            """
            UPDATE tickets k SET unread_count = k.unread_count + d.unread_count,
                   last_message_at = GREATEST(k.last_message_at, d.last_message_at),
                   waiting_since = LEAST(k.waiting_since, d.waiting_since), updated_at = now()
            FROM tickets d WHERE k.id = $1 AND d.id = $2
            """,
            clash["keep_ticket"], clash["drop_ticket"],
        )  # fmt: skip
        await conn.execute(
            "UPDATE tickets SET status = 'closed', closed_at = now(), unread_count = 0, waiting_since = NULL,"
            " updated_at = now() WHERE id = $1",
            clash["drop_ticket"],
        )
        await log_event(conn, clash["drop_ticket"], "merged", actor_id=actor_id,
                        details={"into_ticket_id": clash["keep_ticket"], "reason": reason})  # fmt: skip
        changed += [clash["drop_ticket"], clash["keep_ticket"]]
    moved = await conn.fetch(
        "UPDATE tickets SET contact_id = $1, updated_at = now() WHERE contact_id = $2 RETURNING id", keep_id, drop
    )
    return changed + [r["id"] for r in moved]
