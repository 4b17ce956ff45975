"""Reading tickets: the inbox list, one ticket, its messages and activity, and message search. Callers pass an
open tenant session (one transaction); every read goes through the one visibility rule, :func:`visible_sql`.

Queries are assembled from the filters actually given (placeholders only, never user text), so each shape gets
a plan that uses its index instead of one generic plan full of ``$n IS NULL OR ...``.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from saas.auth.principal import Principal
from saas.search import contact_clause, tsquery, word_frequency
from saas.tickets.lifecycle import (
    MESSAGE_COLUMNS,
    TICKET_COLUMNS,
    message_from_row,
    ticket_from_row,
)
from saas.tickets.rules import priority_rank
from saas.tickets.schemas import (
    ContactOut,
    MessagePage,
    SearchHit,
    SearchPage,
    TicketEventOut,
    TicketOut,
    TicketPage,
)
from tenants.context import TenantSession
from tenants.errors import InvalidInput, NotFound

__all__ = [
    "STATUSES",
    "TicketFilter",
    "TicketNotFound",
    "could_see",
    "decode_cursor",
    "encode_cursor",
    "get_ticket",
    "int_cursor",
    "list_events",
    "list_messages",
    "list_tickets",
    "search_messages",
    "visibility",
    "visible_sql",
    "visible_tickets",
]

STATUSES = ("pending", "open", "closed")


def visibility(viewer: Principal | None) -> tuple[str, int]:
    """(scope, user id) for :func:`visible_sql`: ``all`` for admins and integrations (and internal callers)."""
    if viewer is None or viewer.role not in ("agent", "supervisor"):
        return "all", 0
    return viewer.role, viewer.user_id


def visible_sql(scope: int, user: int, alias: str = "t") -> str:
    """THE ticket visibility rule, as SQL over ``alias`` with the scope and user id in parameters ``$scope``/``$user``.

    Admins see everything. Agents see tickets assigned to them, and unassigned ones that wait in one of their
    queues or in no queue yet. Supervisors see their queues, tickets in no queue, and their own.
    """
    mine = f"(SELECT queue_id FROM queue_members WHERE user_id = ${user}::bigint)"
    return (
        f"(${scope}::text = 'all' OR {alias}.user_id = ${user}::bigint"
        f" OR (${scope}::text = 'agent' AND {alias}.user_id IS NULL"
        f" AND ({alias}.queue_id IS NULL OR {alias}.queue_id IN {mine}))"
        f" OR (${scope}::text = 'supervisor' AND ({alias}.queue_id IS NULL OR {alias}.queue_id IN {mine})))"
    )


class TicketNotFound(NotFound):
    code = "ticket_not_found"
    title = "Ticket not found"


def encode_cursor(*parts: object) -> str:
    return base64.urlsafe_b64encode("|".join(str(p) for p in parts).encode()).decode()


def decode_cursor(cursor: str, count: int) -> list[str]:
    try:
        parts = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("invalid cursor", field="cursor") from exc
    if len(parts) != count:
        raise InvalidInput("invalid cursor", field="cursor")
    return parts


class _Query:
    """WHERE clauses and their parameters, numbered as they are added."""

    def __init__(self, *params: Any) -> None:
        self.params: list[Any] = list(params)
        self.where: list[str] = []

    def arg(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"

    def visible(self, viewer: Principal | None, alias: str = "t") -> None:
        scope, user = visibility(viewer)
        if scope == "all":
            return
        self.params += [scope, user]
        self.where.append(visible_sql(len(self.params) - 1, len(self.params), alias))

    def sql(self) -> str:
        return " AND ".join(self.where) if self.where else "true"


class TicketFilter:
    """The list's filters (all optional)."""

    __slots__ = ("priority", "q", "queue_id", "snoozed", "status", "tag_id", "unassigned", "user_id")

    def __init__(self, *, status: str | None = None, queue_id: int | None = None, user_id: int | None = None,
                 tag_id: int | None = None, priority: str | None = None, snoozed: bool = False, q: str | None = None,
                 unassigned: bool = False) -> None:  # fmt: skip
        if status is not None and status not in STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(STATUSES)}", field="status")
        if priority is not None:
            try:
                priority_rank(priority)
            except ValueError:
                raise InvalidInput("priority must be one of low, normal, high, urgent", field="priority") from None
        self.status, self.queue_id, self.user_id, self.tag_id = status, queue_id, user_id, tag_id
        self.priority, self.snoozed, self.q, self.unassigned = priority, snoozed, q, unassigned


_ACTIVITY = "coalesce(t.last_message_at, t.created_at)"
_ORDER = f"t.priority DESC, t.waiting_since ASC NULLS LAST, {_ACTIVITY} DESC, t.id DESC"


async def list_tickets(session: TenantSession, filters: TicketFilter, *, limit: int, cursor: str | None,
                       viewer: Principal | None = None) -> TicketPage:  # fmt: skip
    """The inbox order (saas.tickets.rules.inbox_sort_key): priority, then who waits longest, then activity;
    keyset-paginated. Snoozed tickets are listed only when asked for (``snoozed``)."""
    query = _Query()
    if filters.status is not None:
        query.where.append(f"t.status = {query.arg(filters.status)}")
    query.visible(viewer)
    if filters.queue_id is not None:
        query.where.append(f"t.queue_id = {query.arg(filters.queue_id)}")
    if filters.user_id is not None:
        query.where.append(f"t.user_id = {query.arg(filters.user_id)}")
    if filters.unassigned:
        query.where.append("t.user_id IS NULL")
    if filters.tag_id is not None:
        query.where.append(f"EXISTS (SELECT 1 FROM ticket_tags tt WHERE tt.ticket_id = t.id AND tt.tag_id = "
                           f"{query.arg(filters.tag_id)})")  # fmt: skip
    if filters.priority is not None:
        query.where.append(f"t.priority = {query.arg(priority_rank(filters.priority))}")
    if filters.snoozed:
        query.where.append("t.snoozed_until > now()")
    else:
        query.where.append("(t.snoozed_until IS NULL OR t.snoozed_until <= now())")
    if filters.q:
        query.where.append(contact_clause(filters.q, query.arg))
    if cursor:
        query.where.append(_after(query, cursor))
    rows = await session.conn.fetch(
        f"SELECT {TICKET_COLUMNS} FROM tickets t JOIN contacts c ON c.id = t.contact_id WHERE {query.sql()}"
        f" ORDER BY {_ORDER} LIMIT {query.arg(limit + 1)}",
        *query.params,
    )
    items = [ticket_from_row(r) for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        waiting = last["waiting_since"].isoformat() if last["waiting_since"] else ""
        activity = (last["last_message_at"] or last["created_at"]).isoformat()
        next_cursor = encode_cursor(last["priority"], waiting, activity, last["id"])
    return TicketPage(items=items, next_cursor=next_cursor)


def _after(query: _Query, cursor: str) -> str:
    """Rows after the cursor in the inbox order (mixed directions and NULLS LAST, so spelled out)."""
    priority, waiting, activity, ident = decode_cursor(cursor, 4)
    try:
        p, a, i = int(priority), datetime.fromisoformat(activity), int(ident)
        w = datetime.fromisoformat(waiting) if waiting else None
    except ValueError as exc:
        raise InvalidInput("invalid cursor", field="cursor") from exc
    cp, ca, ci = query.arg(p), query.arg(a), query.arg(i)
    later = f"({_ACTIVITY}, t.id) < ({ca}, {ci})"
    if w is None:
        same = f"t.waiting_since IS NULL AND {later}"
    else:
        cw = query.arg(w)
        same = f"(t.waiting_since IS NULL OR t.waiting_since > {cw} OR (t.waiting_since = {cw} AND {later}))"
    return f"(t.priority < {cp} OR (t.priority = {cp} AND {same}))"


async def get_ticket(session: TenantSession, ticket_id: int, viewer: Principal | None = None) -> TicketOut:
    query = _Query(ticket_id)
    query.visible(viewer)
    row = await session.conn.fetchrow(
        f"SELECT {TICKET_COLUMNS} FROM tickets t JOIN contacts c ON c.id = t.contact_id WHERE t.id = $1"
        f" AND {query.sql()}",
        *query.params,
    )
    if row is None:
        raise TicketNotFound(f"ticket {ticket_id} does not exist", ticket_id=ticket_id)
    return ticket_from_row(row)


async def list_messages(
    session: TenantSession, ticket_id: int, *, limit: int, cursor: str | None, viewer: Principal | None = None
) -> MessagePage:
    """The latest ``limit`` messages before the cursor, oldest first; ``next_cursor`` pages further back."""
    query = _Query(ticket_id)
    query.visible(viewer)
    before = int_cursor(cursor)
    page_filter = "" if before is None else f"AND m.id < {query.arg(before)}"
    # The visibility check and the page in one round trip (the inbox opens a ticket with exactly this call).
    rows = await session.conn.fetch(
        f"""
        SELECT {MESSAGE_COLUMNS} FROM tickets t
        LEFT JOIN LATERAL (
            SELECT * FROM messages m WHERE m.ticket_id = t.id {page_filter} ORDER BY m.id DESC LIMIT {query.arg(limit + 1)}
        ) m ON true
        WHERE t.id = $1 AND {query.sql()}
        """,
        *query.params,
    )
    if not rows:
        raise TicketNotFound(f"ticket {ticket_id} does not exist", ticket_id=ticket_id)
    page = [r for r in rows if r["id"] is not None][:limit]
    items = [message_from_row(r) for r in reversed(page)]
    more = sum(1 for r in rows if r["id"] is not None) > limit
    return MessagePage(items=items, next_cursor=encode_cursor(page[-1]["id"]) if more else None)


def int_cursor(cursor: str | None) -> int | None:
    """The id in a one-part cursor (None without a cursor); a malformed one is ``InvalidInput``."""
    if not cursor:
        return None
    try:
        return int(decode_cursor(cursor, 1)[0])
    except ValueError as exc:
        raise InvalidInput("invalid cursor", field="cursor") from exc


async def list_events(session: TenantSession, ticket_id: int, viewer: Principal | None = None) -> list[TicketEventOut]:
    """The ticket's activity log, oldest first."""
    await get_ticket(session, ticket_id, viewer)
    rows = await session.conn.fetch(
        "SELECT id, at, actor_id, action, details FROM ticket_events WHERE ticket_id = $1 ORDER BY id", ticket_id
    )
    return [TicketEventOut(**{**dict(r), "details": msgspec.json.decode(r["details"])}) for r in rows]


async def visible_tickets(session: TenantSession, ticket_ids: list[int], viewer: Principal | None) -> set[int]:
    """Which of ``ticket_ids`` the viewer may see (realtime events, search hits, media in a contact's history)."""
    query = _Query(ticket_ids)
    query.visible(viewer)
    rows = await session.conn.fetch(
        f"SELECT t.id FROM tickets t WHERE t.id = ANY($1::bigint[]) AND {query.sql()}", *query.params
    )
    return {r["id"] for r in rows}


async def could_see(
    session: TenantSession, owners: list[tuple[int | None, int | None]], viewer: Principal
) -> list[bool]:
    """For each (user id, queue id): would the viewer see a ticket so assigned (for ``ticket.hidden``)."""
    if not owners:
        return []
    query = _Query([o[0] for o in owners], [o[1] for o in owners])
    query.visible(viewer)
    rows = await session.conn.fetch(
        f"SELECT {query.sql()} AS seen FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY AS t(user_id, queue_id, n)"
        " ORDER BY t.n",
        *query.params,
    )
    return [bool(r["seen"]) for r in rows]


# Above these fractions of messages matching, the newest matches are found sooner by walking messages newest first
# than by collecting every match from the index: for everyone (admins) and for viewers who see a few percent of the
# tickets (agents, supervisors), whose walk passes many messages they may not see.
_WALK_FROM = {"all": 0.002, "agent": 0.02, "supervisor": 0.01}
_SEEN_SHARE = {"all": 1.0, "agent": 0.05, "supervisor": 0.2}  # a guess of the share of tickets a viewer sees
_MAX_COLLECTED = 20_000  # past this many matches, walking is cheaper after all

_HIT_COLUMNS = f"""{MESSAGE_COLUMNS}, t.number AS ticket_number, t.status AS ticket_status, c.id AS contact_id,
    coalesce(c.name, c.push_name) AS contact_name, c.phone, c.wa_id, c.blocked_at IS NOT NULL AS blocked"""


async def search_messages(session: TenantSession, text: str, *, limit: int, cursor: str | None,
                          viewer: Principal | None = None, ticket_id: int | None = None) -> SearchPage:  # fmt: skip
    """Messages whose text contains every word of ``text`` (as word prefixes), newest first, in visible tickets.

    PostgreSQL's planner picks badly here: it multiplies word frequencies (a phrase's words come together, so it
    underestimates) and has no frequency for an unknown word (so it may walk the whole table for a word that never
    occurs). So we choose from the lexeme statistics (:func:`saas.search.word_frequency`), with bounded costs:

    * common words: walk the newest messages (primary key, newest first) testing the stored document and the
      visibility, over a window sized to find a page ten times over; if the window runs dry, collect instead;
    * rare or unknown words: collect every match from the GIN index (few, by definition; the index intersects the
      words, so a phrase that never occurs costs nothing), keep the visible ones, newest first;
    * a collection that turns out huge (over 20,000 matches) falls back to walking, which then fills a page soon.
    """
    words = tsquery(text)
    if words is None:
        raise InvalidInput("search for at least one letter or digit", field="q")
    before = int_cursor(cursor)
    scope = visibility(viewer)[0]
    rows: list[asyncpg.Record] | None = None
    if ticket_id is not None:  # one conversation: its messages by the ticket index
        rows = await _walk(session, words, before, limit, viewer, ticket_id=ticket_id)
    else:
        frequency = await word_frequency(session.conn, session.tenant.schema, text)
        if frequency is not None and frequency >= _WALK_FROM[scope]:
            top = (
                before if before is not None else (await session.conn.fetchval("SELECT max(id) FROM messages") or 0) + 1
            )
            window = int(10 * (limit + 1) / (frequency * _SEEN_SHARE[scope]))
            rows = await _walk(session, words, before, limit, viewer, since=top - window)
            if len(rows) <= limit and top - window > 0:
                rows = None  # the window ran dry before the page filled
        if rows is None:
            rows = await _collect(session, words, before, limit, viewer)
        if rows is None:
            rows = await _walk(session, words, before, limit, viewer)
    assert rows is not None
    items = [
        SearchHit(
            message=message_from_row(r),
            ticket_number=r["ticket_number"],
            ticket_status=r["ticket_status"],
            contact=ContactOut(
                id=r["contact_id"], name=r["contact_name"], phone=r["phone"], wa_id=r["wa_id"], blocked=r["blocked"]
            ),
        )
        for r in rows[:limit]
    ]
    next_cursor = encode_cursor(rows[limit - 1]["id"]) if len(rows) > limit else None
    return SearchPage(items=items, next_cursor=next_cursor)


async def _walk(session: TenantSession, words: str, before: int | None, limit: int, viewer: Principal | None, *,
                ticket_id: int | None = None, since: int | None = None) -> list[asyncpg.Record]:  # fmt: skip
    """Newest first along the primary key (or within one ticket), above ``since`` when given."""
    query = _Query(words)
    query.where.append("m.search @@ to_tsquery('simple', $1)")
    query.visible(viewer)
    if ticket_id is not None:
        query.where.append(f"m.ticket_id = {query.arg(ticket_id)}")
    if before is not None:
        query.where.append(f"m.id < {query.arg(before)}")
    if since is not None:
        query.where.append(f"m.id > {query.arg(since)}")
    if ticket_id is None:  # walk the primary key instead of sorting the whole match set
        await session.conn.execute("SET LOCAL enable_bitmapscan = off")
    rows: list[asyncpg.Record] = await session.conn.fetch(
        f"""
        SELECT {_HIT_COLUMNS} FROM messages m JOIN tickets t ON t.id = m.ticket_id JOIN contacts c ON c.id = t.contact_id
        WHERE {query.sql()} ORDER BY m.id DESC LIMIT {query.arg(limit + 1)}
        """,
        *query.params,
    )
    await session.conn.execute("SET LOCAL enable_bitmapscan TO DEFAULT")
    return rows


async def _collect(session: TenantSession, words: str, before: int | None, limit: int,
                   viewer: Principal | None) -> list[asyncpg.Record] | None:  # fmt: skip
    """Every match from the index, the visible ones, newest first; None if there are too many to collect."""
    conn = session.conn
    await conn.execute("SET LOCAL enable_seqscan = off")  # the GIN index, whatever the planner thinks of the word
    hits = await conn.fetch(
        "SELECT id, ticket_id FROM messages m WHERE m.search @@ to_tsquery('simple', $1)"
        " AND ($2::bigint IS NULL OR m.id < $2) LIMIT $3",
        words, before, _MAX_COLLECTED + 1,
    )  # fmt: skip
    await conn.execute("SET LOCAL enable_seqscan TO DEFAULT")
    if len(hits) > _MAX_COLLECTED:
        return None
    if not hits:
        return []
    seen = await visible_tickets(session, sorted({h["ticket_id"] for h in hits}), viewer)
    newest = sorted((h["id"] for h in hits if h["ticket_id"] in seen), reverse=True)[: limit + 1]
    return list(await conn.fetch(
        f"SELECT {_HIT_COLUMNS} FROM messages m JOIN tickets t ON t.id = m.ticket_id JOIN contacts c ON c.id = t.contact_id"
        " WHERE m.id = ANY($1::bigint[]) ORDER BY m.id DESC",
        newest,
    ))  # fmt: skip
