"""Contacts: list and search, add by hand, edit (name, e-mail, custom fields, tags), notes, merge, block, and a
contact's whole history across tickets. Callers pass an open tenant session.

Contacts are tenant-wide for staff. A contact's *history* (tickets and messages) follows the ticket visibility
rule one step further: admins see every contact's, agents and supervisors the history of contacts they have at
least one visible ticket with — then all of it, so the agent answering today sees what was said before.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec

from saas.audit.service import record
from saas.auth.guards import PermissionDenied
from saas.auth.principal import Principal
from saas.contacts.merge import merge_contacts
from saas.contacts.phones import normalize_phone, phone_key
from saas.contacts.schemas import ContactDetail, ContactIn, ContactNoteOut, ContactPage, ContactUpdate
from saas.effects import Effects
from saas.links import replace_links
from saas.search import contact_clause
from saas.tickets.lifecycle import (
    MESSAGE_COLUMNS,
    TICKET_COLUMNS,
    fetch_tickets,
    message_from_row,
    one_active_ticket,
    ticket_event,
    ticket_from_row,
)
from saas.tickets.schemas import MessagePage, TagOut, TicketPage
from saas.tickets.service import encode_cursor, int_cursor, visibility, visible_sql
from supervisor.realtime import RealtimeEvent
from tenants.context import TenantSession
from tenants.errors import Conflict, InvalidInput, NotFound

__all__ = [
    "ContactNotFound",
    "add_note",
    "can_see_history",
    "contact_history",
    "contact_tickets",
    "create_contact",
    "delete_note",
    "get_contact",
    "list_contacts",
    "list_notes",
    "merge",
    "set_blocked",
    "set_tags",
    "update_contact",
]


class NoteNotFound(NotFound):
    code = "note_not_found"
    title = "Note not found"


class ContactNotFound(NotFound):
    code = "contact_not_found"
    title = "Contact not found"


class ContactExists(Conflict):
    code = "contact_exists"
    title = "Contact exists"


_COLUMNS = """
    c.id, c.name, c.push_name, c.phone, c.wa_id, c.lid, c.email, c.is_group, c.custom_fields::text AS custom_fields,
    c.blocked_at IS NOT NULL AS blocked, c.blocked_at, c.created_at, c.updated_at,
    (SELECT coalesce(json_agg(json_build_object('id', g.id, 'name', g.name, 'color', g.color) ORDER BY g.name), '[]')
       FROM contact_tags ct JOIN tags g ON g.id = ct.tag_id WHERE ct.contact_id = c.id)::text AS tags
"""
_tags = msgspec.json.Decoder(list[TagOut])
_fields = msgspec.json.Decoder(dict[str, str])


def _contact(row: asyncpg.Record) -> ContactDetail:
    return ContactDetail(**{**dict(row), "tags": _tags.decode(row["tags"]),
                            "custom_fields": _fields.decode(row["custom_fields"])})  # fmt: skip


def contact_event(contact: ContactDetail) -> RealtimeEvent:
    return RealtimeEvent(type="contact.updated", data=msgspec.to_builtins(contact))


async def get_contact(session: TenantSession, contact_id: int) -> ContactDetail:
    row = await session.conn.fetchrow(f"SELECT {_COLUMNS} FROM contacts c WHERE c.id = $1", contact_id)
    if row is None:
        raise ContactNotFound(f"contact {contact_id} does not exist", contact_id=contact_id)
    return _contact(row)


async def list_contacts(session: TenantSession, *, q: str | None, tag_id: int | None, blocked: bool | None,
                        limit: int, cursor: str | None) -> ContactPage:  # fmt: skip
    """Newest first; ``q`` matches name words (as prefixes) or digits of the phone."""
    where, params = ["NOT c.is_group"], []

    def arg(value: Any) -> str:
        params.append(value)
        return f"${len(params)}"

    if q:
        where.append(contact_clause(q, arg))
    if tag_id is not None:
        where.append(f"EXISTS (SELECT 1 FROM contact_tags ct WHERE ct.contact_id = c.id AND ct.tag_id = {arg(tag_id)})")
    if blocked is not None:
        where.append("c.blocked_at IS NOT NULL" if blocked else "c.blocked_at IS NULL")
    before = int_cursor(cursor)
    if before is not None:
        where.append(f"c.id < {arg(before)}")
    rows = await session.conn.fetch(
        f"SELECT {_COLUMNS} FROM contacts c WHERE {' AND '.join(where)} ORDER BY c.id DESC LIMIT {arg(limit + 1)}",
        *params,
    )
    items = [_contact(r) for r in rows[:limit]]
    return ContactPage(items=items, next_cursor=encode_cursor(items[-1].id) if len(rows) > limit else None)


async def create_contact(
    session: TenantSession, data: ContactIn, *, actor_id: int, origin: str | None
) -> ContactDetail:
    try:
        phone = normalize_phone(data.phone)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="phone") from exc
    key = phone_key(phone)
    existing = await session.conn.fetchval("SELECT id FROM contacts WHERE phone_key = $1", key)
    if existing is not None:
        raise ContactExists(f"a contact with {phone} exists (id {existing})", field="phone", contact_id=existing)
    contact_id = await session.conn.fetchval(
        "INSERT INTO contacts (wa_id, phone, phone_key, name, email, custom_fields)"
        " VALUES ($1, $2, $3, $4, $5, $6::jsonb) ON CONFLICT DO NOTHING RETURNING id",
        f"{phone[1:]}@s.whatsapp.net", phone, key, data.name, data.email, msgspec.json.encode(data.custom_fields).decode(),
    )  # fmt: skip
    if contact_id is None:
        raise ContactExists(f"a contact with {phone} exists", field="phone")
    await record(session, actor_id=actor_id, action="contact.created", target=f"contact:{contact_id}", origin=origin)
    return await get_contact(session, contact_id)


async def update_contact(session: TenantSession, contact_id: int, data: ContactUpdate) -> tuple[ContactDetail, Effects]:
    await get_contact(session, contact_id)
    changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
    if "custom_fields" in changes:
        changes["custom_fields"] = msgspec.json.encode(changes["custom_fields"]).decode()
    if changes:
        sets = ", ".join(f"{k} = ${i + 2}" + ("::jsonb" if k == "custom_fields" else "") for i, k in enumerate(changes))
        await session.conn.execute(f"UPDATE contacts SET {sets}, updated_at = now() WHERE id = $1", contact_id,
                                   *changes.values())  # fmt: skip
    return await _changed(session, contact_id)


async def _changed(
    session: TenantSession, contact_id: int, tickets: list[int] | None = None
) -> tuple[ContactDetail, Effects]:
    """The contact and the events that tell the inbox: the contact, and its active tickets (their names changed)."""
    contact = await get_contact(session, contact_id)
    if tickets is None:
        tickets = [r["id"] for r in await session.conn.fetch(
            "SELECT id FROM tickets WHERE contact_id = $1 AND status <> 'closed'", contact_id)]  # fmt: skip
    effects = Effects(events=[contact_event(contact)])
    effects.events += [ticket_event(t) for t in await fetch_tickets(session.conn, tickets)]
    return contact, effects


async def set_tags(session: TenantSession, contact_id: int, tag_ids: list[int]) -> tuple[ContactDetail, Effects]:
    await get_contact(session, contact_id)
    await replace_links(session.conn, "contact_tags", ("contact_id", contact_id), ("tag_id", "tags"), tag_ids,
                        field="tag_ids")  # fmt: skip
    return await _changed(session, contact_id, [])


async def set_blocked(session: TenantSession, contact_id: int, blocked: bool, *, actor_id: int,
                      origin: str | None) -> tuple[ContactDetail, Effects]:  # fmt: skip
    """A blocked contact's messages are dropped by the router and nobody can write to them."""
    await get_contact(session, contact_id)
    await session.conn.execute(
        "UPDATE contacts SET blocked_at = CASE WHEN $2 THEN coalesce(blocked_at, now()) END, updated_at = now()"
        " WHERE id = $1",
        contact_id, blocked,
    )  # fmt: skip
    await record(session, actor_id=actor_id, action="contact.blocked" if blocked else "contact.unblocked",
                 target=f"contact:{contact_id}", origin=origin)  # fmt: skip
    return await _changed(session, contact_id)


async def merge(session: TenantSession, contact_id: int, other_id: int, *, actor_id: int,
                origin: str | None) -> tuple[ContactDetail, Effects]:  # fmt: skip
    if other_id == contact_id:
        raise InvalidInput("a contact cannot be merged into itself", field="other_id")
    await get_contact(session, contact_id)
    other = await get_contact(session, other_id)
    if other.is_group != (await get_contact(session, contact_id)).is_group:
        raise InvalidInput("a group and a person cannot be merged", field="other_id")
    async with one_active_ticket("a conversation opened on one of the contacts while merging; try again"):
        tickets = await merge_contacts(session.conn, contact_id, [other_id], reason="merged by staff",
                                       actor_id=actor_id)  # fmt: skip
    await record(session, actor_id=actor_id, action="contact.merged", target=f"contact:{contact_id}",
                 details={"merged": other_id}, origin=origin)  # fmt: skip
    contact, effects = await _changed(session, contact_id, tickets)
    effects.events.append(RealtimeEvent(type="contact.deleted", data={"id": other_id, "merged_into": contact_id}))
    return contact, effects


async def can_see_history(session: TenantSession, contact_id: int, viewer: Principal) -> None:
    """A contact's history is open to whoever can see one of its tickets (404 otherwise); within it, private
    notes show only on the tickets the viewer can see (:func:`contact_history`)."""
    await get_contact(session, contact_id)
    scope, user = visibility(viewer)
    if scope == "all":
        return
    visible = await session.conn.fetchval(
        f"SELECT 1 FROM tickets t WHERE t.contact_id = $1 AND {visible_sql(2, 3)} LIMIT 1", contact_id, scope, user
    )
    if not visible:
        raise ContactNotFound(f"contact {contact_id} has no conversation you can see", contact_id=contact_id)


async def contact_tickets(session: TenantSession, contact_id: int, viewer: Principal, *, limit: int,
                          cursor: str | None) -> TicketPage:  # fmt: skip
    """Every ticket of the contact, newest first."""
    await can_see_history(session, contact_id, viewer)
    before = int_cursor(cursor)
    rows = await session.conn.fetch(
        f"SELECT {TICKET_COLUMNS} FROM tickets t JOIN contacts c ON c.id = t.contact_id WHERE t.contact_id = $1"
        " AND ($2::bigint IS NULL OR t.id < $2) ORDER BY t.id DESC LIMIT $3",
        contact_id, before, limit + 1,
    )  # fmt: skip
    items = [ticket_from_row(r) for r in rows[:limit]]
    return TicketPage(items=items, next_cursor=encode_cursor(items[-1].id) if len(rows) > limit else None)


async def contact_history(session: TenantSession, contact_id: int, viewer: Principal, *, limit: int,
                          cursor: str | None) -> MessagePage:  # fmt: skip
    """Every message with the contact across tickets: the latest page, oldest first (like one ticket's)."""
    await can_see_history(session, contact_id, viewer)
    before = int_cursor(cursor)
    scope, user = visibility(viewer)
    rows = await session.conn.fetch(
        f"""
        SELECT {MESSAGE_COLUMNS} FROM messages m JOIN tickets t ON t.id = m.ticket_id
        WHERE t.contact_id = $1 AND ($2::bigint IS NULL OR m.id < $2) AND (NOT m.private OR {visible_sql(4, 5)})
        ORDER BY m.id DESC LIMIT $3
        """,
        contact_id, before, limit + 1, scope, user,
    )  # fmt: skip
    page = rows[:limit]
    return MessagePage(items=[message_from_row(r) for r in reversed(page)],
                       next_cursor=encode_cursor(page[-1]["id"]) if len(rows) > limit else None)  # fmt: skip


async def list_notes(session: TenantSession, contact_id: int) -> list[ContactNoteOut]:
    await get_contact(session, contact_id)
    rows = await session.conn.fetch(
        "SELECT id, contact_id, user_id, body AS text, created_at FROM contact_notes WHERE contact_id = $1"
        " ORDER BY id DESC LIMIT 200",
        contact_id,
    )
    return [ContactNoteOut(**dict(r)) for r in rows]


async def add_note(session: TenantSession, contact_id: int, text: str, *, user_id: int) -> ContactNoteOut:
    await get_contact(session, contact_id)
    row = await session.conn.fetchrow(
        "INSERT INTO contact_notes (contact_id, user_id, body) VALUES ($1, $2, $3)"
        " RETURNING id, contact_id, user_id, body AS text, created_at",
        contact_id, user_id, text,
    )  # fmt: skip
    assert row is not None
    return ContactNoteOut(**dict(row))


async def delete_note(session: TenantSession, contact_id: int, note_id: int, viewer: Principal) -> None:
    """Authors delete their own notes; admins and supervisors any."""
    row = await session.conn.fetchrow("SELECT user_id FROM contact_notes WHERE id = $1 AND contact_id = $2", note_id,
                                      contact_id)  # fmt: skip
    if row is None:
        raise NoteNotFound(f"note {note_id} does not exist", note_id=note_id)
    if row["user_id"] != viewer.user_id and viewer.role not in ("admin", "supervisor"):
        raise PermissionDenied("only the author, a supervisor or an admin deletes a note")
    await session.conn.execute("DELETE FROM contact_notes WHERE id = $1", note_id)
