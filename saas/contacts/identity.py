"""Who wrote: the router's contact resolution, set-based, inside the batch's tenant transaction.

One person is one contact, whether WhatsApp shows them by phone number (with or without Brazil's 9th digit) or
by LID: a message's identity (:func:`saas.contacts.phones.identity_of`) matches an existing contact by canonical
phone key, by LID, or (groups) by chat id. Learning that a LID and a phone belong together fills in the missing
key; learning that two existing contacts are one person merges them (the older survives). A contact's ``wa_id``
follows the chat the person last wrote from, so replies go where WhatsApp expects them.

Unique indexes on ``phone_key``, ``lid`` and group ``wa_id`` make concurrent routers safe: a lost insert race is
re-read, and a lost update race fails the batch, whose retry then resolves against the winner's row.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import asyncpg

from saas.contacts.merge import merge_contacts
from saas.contacts.phones import Identity

__all__ = ["ResolvedContact", "resolve_contacts"]


K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class ResolvedContact:
    id: int
    name: str | None
    blocked: bool


@dataclass(slots=True)
class _Person:
    """Every message of one batch that belongs to one person (their identities joined)."""

    identity: Identity
    push_name: str | None
    members: list[Hashable] = field(default_factory=list)
    phone_keys: set[str] = field(default_factory=set)
    lids: set[str] = field(default_factory=set)


def _group(people: Mapping[K, tuple[Identity, str | None]]) -> list[_Person]:
    """Join messages whose identities share a key (a LID chat and a phone chat of one person in one batch)."""
    persons: list[_Person] = []
    by_key: dict[str, _Person] = {}
    for member, (identity, push_name) in people.items():
        keys = _keys(identity)
        found = {id(by_key[k]): by_key[k] for k in keys if k in by_key}
        if not found:
            person = _Person(identity, push_name)
            persons.append(person)
        else:
            person, *others = found.values()
            for other in others:  # this message links two groups: fold them into one
                person.members += other.members
                person.phone_keys |= other.phone_keys
                person.lids |= other.lids
                persons.remove(other)
            person.identity = _join(person.identity, identity)
            person.push_name = push_name or person.push_name
        person.members.append(member)
        person.phone_keys |= {identity.phone_key} if identity.phone_key else set()
        person.lids |= {identity.lid} if identity.lid else set()
        for key in _keys(person.identity) | {f"p:{k}" for k in person.phone_keys} | {f"l:{k}" for k in person.lids}:
            by_key[key] = person
    return persons


def _keys(identity: Identity) -> set[str]:
    if identity.kind == "group":
        return {f"g:{identity.wa_id}"}
    keys = set()
    if identity.phone_key:
        keys.add(f"p:{identity.phone_key}")
    if identity.lid:
        keys.add(f"l:{identity.lid}")
    return keys


def _join(old: Identity, new: Identity) -> Identity:
    """The newer message's chat, with whatever keys either message knew."""
    return Identity(kind=new.kind, wa_id=new.wa_id, phone=new.phone or old.phone,
                    phone_key=new.phone_key or old.phone_key, lid=new.lid or old.lid)  # fmt: skip


_COLUMNS = """id, wa_id, phone, phone_key, lid, push_name, is_group, coalesce(name, push_name) AS display,
              blocked_at IS NOT NULL AS blocked"""
_SELECT = f"""
SELECT {_COLUMNS} FROM contacts
WHERE phone_key = ANY($1::text[]) OR lid = ANY($2::text[]) OR (is_group AND wa_id = ANY($3::text[]))
ORDER BY id
"""
_BY_ID = f"SELECT {_COLUMNS} FROM contacts WHERE id = $1"


async def resolve_contacts(
    conn: asyncpg.Connection, people: Mapping[K, tuple[Identity, str | None]]
) -> dict[K, ResolvedContact]:
    """The contact of every message (``member -> (identity, push name)``), creating or merging contacts as needed."""
    persons = _group(people)
    resolved: dict[K, ResolvedContact] = {}
    for _attempt in range(3):
        matches = await _match(conn, persons)
        missing = [p for p in persons if not matches[id(p)]]
        if missing:
            await _create(conn, missing)
            matches.update(await _match(conn, missing))
        # In contact id order: two routers updating the same people (one person's LID chat and phone chat hash
        # to different shards) then lock their rows in one order and never deadlock.
        for person in sorted(persons, key=lambda p: matches[id(p)][0]["id"] if matches[id(p)] else 0):
            rows = matches[id(person)]
            if not rows:
                continue  # lost a race again; next attempt
            keep = rows[0]
            if len(rows) > 1:
                await merge_contacts(conn, keep["id"], [r["id"] for r in rows[1:]], reason="same person")
                merged = await conn.fetchrow(_BY_ID, keep["id"])
                assert merged is not None
                keep = merged
            display = await _update(conn, keep, person)
            contact = ResolvedContact(keep["id"], display, keep["blocked"])
            for member in person.members:
                resolved[member] = contact  # type: ignore[index]  # members are the caller's keys
        persons = [p for p in persons if p.members[0] not in resolved]
        if not persons:
            return resolved
    raise RuntimeError("could not resolve contacts after 3 attempts")


async def _match(conn: asyncpg.Connection, persons: list[_Person]) -> dict[int, list[asyncpg.Record]]:
    phone_keys = sorted({k for p in persons for k in p.phone_keys})
    lids = sorted({k for p in persons for k in p.lids})
    groups = sorted({p.identity.wa_id for p in persons if p.identity.kind == "group"})
    rows = await conn.fetch(_SELECT, phone_keys, lids, groups)
    matches: dict[int, list[asyncpg.Record]] = {}
    for person in persons:
        if person.identity.kind == "group":
            found = [r for r in rows if r["is_group"] and r["wa_id"] == person.identity.wa_id]
        else:
            found = [r for r in rows if r["phone_key"] in person.phone_keys or r["lid"] in person.lids]
        matches[id(person)] = found
    return matches


async def _create(conn: asyncpg.Connection, persons: list[_Person]) -> None:
    await conn.execute(
        """
        INSERT INTO contacts (wa_id, phone, phone_key, lid, push_name, is_group)
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bool[])
        ON CONFLICT DO NOTHING
        """,
        [p.identity.wa_id for p in persons],
        [p.identity.phone for p in persons],
        [p.identity.phone_key for p in persons],
        [p.identity.lid for p in persons],
        [p.push_name for p in persons],
        [p.identity.kind == "group" for p in persons],
    )


async def _update(conn: asyncpg.Connection, row: asyncpg.Record, person: _Person) -> str | None:
    """Fill in what the contact lacks and follow the chat the person used; returns the display name."""
    identity = person.identity
    wa_id = identity.wa_id if identity.kind == "person" else row["wa_id"]
    phone = identity.phone if identity.phone and identity.phone_key == (row["phone_key"] or identity.phone_key) \
        else row["phone"]  # fmt: skip
    phone_key = row["phone_key"] or identity.phone_key
    lid = row["lid"] or identity.lid
    push_name = person.push_name or row["push_name"]
    if (wa_id, phone, phone_key, lid, push_name) == (row["wa_id"], row["phone"], row["phone_key"], row["lid"],
                                                     row["push_name"]):  # fmt: skip
        return str(row["display"]) if row["display"] is not None else None
    display = await conn.fetchval(
        """
        UPDATE contacts SET wa_id = $2, phone = $3, phone_key = $4, lid = $5, push_name = $6, updated_at = now()
        WHERE id = $1 RETURNING coalesce(name, push_name)
        """,
        row["id"], wa_id, phone, phone_key, lid, push_name,
    )  # fmt: skip
    return str(display) if display is not None else None
