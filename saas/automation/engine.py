"""What happens to a conversation before and around the agents: the router's automation, inside the batch's
tenant transaction.

1. **Opening** (:meth:`Automation.open_conversations`): a customer writes on a (contact, connection) that has no
   active ticket. Under a per-pair advisory lock the router re-checks, then: a rating answering a waiting
   satisfaction survey is stored on the closed ticket (which stays closed) and thanked; otherwise the tenant's
   reopen rule (:func:`saas.tickets.rules.reopen_decision`) reopens the last ticket — with its agent if still
   active and not offline, else waiting in its queue — or opens a new one.
2. **Routing** (:meth:`Automation.route`), after the messages are stored: a new conversation gets the connection's
   greeting and chatbot menu (:mod:`saas.automation.menu`; without an explicit menu, a menu of the connection's
   queues; with one queue, straight into it); answers move through the menu until a queue is chosen, the menu
   gives up or times out (a timer); entering a queue sends its greeting. Closed hours (:mod:`saas.queues.calendar`)
   send the out-of-hours message at most once per closed window per contact. Tickets entering automatic queues
   are distributed (:mod:`saas.queues.assign`).

Automated messages are stored like agents' replies (with an outbox entry, flagged ``bot``) *after* the inbound
messages of the batch, so the conversation reads in order. Nothing is published here: the caller gets the
events, outbox ids and timers and acts on them around its commit.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import msgspec

from saas.automation import menu
from saas.automation.csat import parse_rating
from saas.queues.assign import distribute_queues
from saas.queues.calendar import is_open, window_key
from saas.tickets.lifecycle import (
    Calendars,
    fetch_tickets,
    insert_outgoing,
    lock_distribution,
    log_event,
    message_event,
    ticket_event,
)
from saas.tickets.rules import reopen_decision
from saas.workspace.schemas import WorkspaceSettings
from supervisor.realtime import RealtimeEvent
from supervisor.wire import InboundMessage

__all__ = ["Automation", "Outgoing", "Routing"]

Pair = tuple[int, int]  # (contact id, connection id)
_bot_decoder = msgspec.json.Decoder(menu.Bot)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """An automated message to store (after the batch's inbound messages) and send."""

    ticket_id: int
    connection_id: int
    text: str


@dataclass(frozen=True, slots=True)
class Routing:
    """How a connection routes new conversations: an explicit or generated menu, one queue, or nothing."""

    greeting: str
    bot: menu.Bot | None
    queue_id: int | None  # the only linked queue, when there is no menu


@dataclass(slots=True)
class _Ticket:
    id: int
    contact_id: int
    connection_id: int
    status: str
    queue_id: int | None
    user_id: int | None
    bot_state: str | None
    bot_path: list[str]
    bot_invalid: int
    is_group: bool = False  # groups get no automated messages (see :meth:`Automation._start`)


@dataclass(slots=True)
class Automation:
    """One batch's automation state for one tenant (create one per batch)."""

    conn: asyncpg.Connection
    tenant_id: int
    settings: WorkspaceSettings
    now: datetime
    calendars: Calendars = field(init=False)
    outgoing: list[Outgoing] = field(default_factory=list)
    changed: set[int] = field(default_factory=set)  # tickets whose state changed (full ticket.updated events)
    created: set[int] = field(default_factory=set)
    reopened: set[int] = field(default_factory=set)
    timers: list[tuple[str, str, datetime]] = field(default_factory=list)
    survey_answers: dict[int, Any] = field(default_factory=dict)  # survey id -> the rating message's key
    _distribute: set[int] = field(default_factory=set)
    _routing: dict[int, Routing] = field(default_factory=dict)
    _queues: dict[int, asyncpg.Record | None] = field(default_factory=dict)
    _back_to_agent: set[int] = field(default_factory=set)  # reopened to their agent, who was online when we looked
    _was: dict[int, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.calendars = Calendars(self.conn, self.settings)

    # -- 1. opening ---------------------------------------------------------------------------------------------

    async def open_conversations(self, pending: dict[Pair, list[tuple[Any, InboundMessage]]]) -> dict[Any, int]:
        """The ticket of each message of pairs without an active ticket (``pair -> [(key, message)]`` in order)."""
        conn = self.conn
        pairs = sorted(pending)
        # In sorted order (two routers never wait on each other in a cycle), in one round trip.
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest($1::text[]) WITH ORDINALITY AS u(k, n)"
            " ORDER BY n",
            [f"atende.pair.{self.tenant_id}.{contact_id}.{connection_id}" for contact_id, connection_id in pairs],
        )
        contact_ids = [p[0] for p in pairs]
        connection_ids = [p[1] for p in pairs]
        rows = await conn.fetch(
            """
            SELECT DISTINCT ON (t.contact_id, t.connection_id) t.id, t.contact_id, t.connection_id, t.status,
                   t.closed_at
            FROM tickets t JOIN unnest($1::bigint[], $2::bigint[]) AS u(contact_id, connection_id)
              ON t.contact_id = u.contact_id AND t.connection_id = u.connection_id
            ORDER BY t.contact_id, t.connection_id, (t.status <> 'closed') DESC, t.id DESC
            """,
            contact_ids, connection_ids,
        )  # fmt: skip
        latest = {(r["contact_id"], r["connection_id"]): r for r in rows}
        surveys = {
            (r["contact_id"], r["connection_id"]): r
            for r in await conn.fetch(
                """
                SELECT s.id, s.ticket_id, s.contact_id, s.connection_id, s.expires_at FROM csat_surveys s
                JOIN unnest($1::bigint[], $2::bigint[]) AS u(contact_id, connection_id)
                  ON s.contact_id = u.contact_id AND s.connection_id = u.connection_id
                WHERE s.state = 'asked'
                """,
                contact_ids,
                connection_ids,
            )
        }
        ticket_of: dict[Any, int] = {}
        for pair in pairs:
            last = latest.get(pair)
            active = last["id"] if last is not None and last["status"] != "closed" else None
            for key, message in pending[pair]:
                if active is not None:
                    ticket_of[key] = active
                    continue
                if message.from_me and last is not None:  # written on the business's phone: history, not a new chat
                    ticket_of[key] = last["id"]
                    continue
                survey = surveys.pop(pair, None)
                if survey is not None and not message.from_me:
                    rating = parse_rating(message.text) if survey["expires_at"] > self.now else None
                    if rating is not None:
                        await self._answer_survey(survey, rating, key)
                        ticket_of[key] = survey["ticket_id"]
                        continue
                    await conn.execute("UPDATE csat_surveys SET state = 'expired' WHERE id = $1", survey["id"])
                closed_at = last["closed_at"] if last is not None else None
                decision = reopen_decision(self.settings.reopen_mode, self.settings.reopen_window_s, closed_at,
                                           self.now)  # fmt: skip
                if decision == "reopen" and last is not None and not message.from_me:
                    active = await self._reopen(last["id"], pair)
                else:
                    active = await self._create(pair)
                ticket_of[key] = active
        return ticket_of

    async def _create(self, pair: Pair) -> int:
        """A new ticket for the pair. Staff do not take the pair locks, so an agent's reopen (or a transfer onto
        this connection) may have made a ticket active since we looked: then the message joins that one."""
        ticket_id: int | None = await self.conn.fetchval(
            "INSERT INTO tickets (contact_id, connection_id) VALUES ($1, $2)"
            " ON CONFLICT (contact_id, connection_id) WHERE status <> 'closed' DO NOTHING RETURNING id",
            pair[0], pair[1],
        )  # fmt: skip
        if ticket_id is None:
            active: int = await self.conn.fetchval(
                "SELECT id FROM tickets WHERE contact_id = $1 AND connection_id = $2 AND status <> 'closed'",
                pair[0], pair[1],
            )  # fmt: skip
            return active
        self.created.add(ticket_id)
        self.changed.add(ticket_id)
        return ticket_id

    async def _reopen(self, ticket_id: int, pair: Pair) -> int:
        """The customer came back within the reopen window: the ticket goes back to its agent if they are online
        — continuity before capacity, the agent knows the conversation, so their limit does not apply — else to
        its queue to be distributed again (away counts as not there: the customer should not wait on a break).

        Only a closed ticket is reopened: if staff reopened it since we looked it is simply the active one (or,
        when another of the pair's tickets became active meanwhile, the message joins that one)."""
        row = await self.conn.fetchrow(
            """
            UPDATE tickets t SET
                status = CASE WHEN u.id IS NOT NULL THEN 'open' ELSE 'pending' END,
                user_id = u.id, closed_at = NULL, closed_by = NULL, reopened_at = $2,
                reopened_count = t.reopened_count + 1, bot_state = NULL, snoozed_until = NULL, updated_at = now()
            FROM tickets old LEFT JOIN users u ON u.id = old.user_id AND u.active AND u.presence = 'online'
            WHERE t.id = $1 AND old.id = t.id AND t.status = 'closed'
              AND NOT EXISTS (SELECT 1 FROM tickets a WHERE a.contact_id = t.contact_id
                              AND a.connection_id = t.connection_id AND a.status <> 'closed')
            RETURNING t.id, t.queue_id, t.user_id, old.user_id AS previous_user_id
            """,
            ticket_id, self.now,
        )  # fmt: skip
        if row is None:
            return await self._create(pair)  # staff made a ticket of the pair active meanwhile: join it
        self.reopened.add(ticket_id)
        if row["user_id"] is not None:
            self._back_to_agent.add(ticket_id)
        self.changed.add(ticket_id)
        self._was[ticket_id] = {"user_id": row["previous_user_id"], "queue_id": row["queue_id"]}
        await log_event(self.conn, ticket_id, "reopened", details={"by": "customer", "user_id": row["user_id"]})
        if row["user_id"] is None and row["queue_id"] is not None:
            self._distribute.add(row["queue_id"])
        return ticket_id

    async def _recheck_agents(self) -> None:
        """Under the distribution lock (presence changes commit under it), look again at the agents reopened
        tickets went back to: one who went offline meanwhile returned their open tickets without seeing these
        (not committed yet), so these go to their queue now. The rows are ours already; nothing waits on them."""
        await lock_distribution(self.conn, self.tenant_id)
        rows = await self.conn.fetch(
            """
            UPDATE tickets t SET user_id = NULL, status = 'pending', updated_at = now()
            FROM users u WHERE t.id = ANY($1::bigint[]) AND u.id = t.user_id AND u.presence <> 'online'
            RETURNING t.id, t.queue_id, u.id AS user_id
            """,
            sorted(self._back_to_agent),
        )  # fmt: skip
        for row in rows:
            await log_event(self.conn, row["id"], "returned", details={"user_id": row["user_id"], "reason": "offline"})
            if row["queue_id"] is not None:
                self._distribute.add(row["queue_id"])

    async def _answer_survey(self, survey: asyncpg.Record, rating: int, key: Any) -> None:
        await self.conn.execute(
            "UPDATE csat_surveys SET state = 'answered', rating = $2, answered_at = $3 WHERE id = $1",
            survey["id"], rating, self.now,
        )  # fmt: skip
        self.survey_answers[survey["id"]] = key
        await log_event(self.conn, survey["ticket_id"], "rated", details={"rating": rating})
        if self.settings.csat_thanks:
            self.outgoing.append(Outgoing(survey["ticket_id"], survey["connection_id"], self.settings.csat_thanks))
        self.changed.add(survey["ticket_id"])

    # -- 2. routing ---------------------------------------------------------------------------------------------

    async def route(self, inbound: dict[int, list[InboundMessage]], *, woken: Collection[int] = ()) -> None:
        """Run the menu, queue entry and out-of-hours rules for tickets that received customer messages.

        A conversation starts (greeting, menu or queue) when the customer is first heard on the ticket — also on a
        ticket the business opened from its phone — or comes back to a reopened ticket that has no queue.
        ``woken``: snoozed tickets these messages woke up, distributed again if they wait in a queue."""
        if not inbound:
            return
        rows = await self.conn.fetch(
            """
            SELECT t.id, t.contact_id, t.connection_id, t.status, t.queue_id, t.user_id, t.bot_state, t.bot_path,
                   t.bot_invalid, c.is_group,
                   CASE WHEN t.queue_id IS NULL AND t.bot_state IS NULL
                        THEN (SELECT count(*) FROM messages m WHERE m.ticket_id = t.id AND NOT m.from_me) END AS heard
            FROM tickets t JOIN contacts c ON c.id = t.contact_id WHERE t.id = ANY($1::bigint[]) ORDER BY t.id
            """,
            list(inbound),
        )
        for row in rows:
            fields = dict(row)
            heard = fields.pop("heard")
            ticket = _Ticket(**{**fields, "bot_path": list(row["bot_path"])})
            messages = inbound[ticket.id]
            if ticket.status == "closed":
                continue
            if heard == len(messages) or (ticket.id in self.reopened and ticket.queue_id is None):
                messages = await self._start(ticket, messages)
            if ticket.bot_state == "menu" and messages:
                await self._answer_menu(ticket, messages)
            elif messages and ticket.bot_state is None:
                await self._out_of_hours(ticket)
            if (
                ticket.id in woken
                and ticket.user_id is None
                and ticket.queue_id is not None
                and ticket.bot_state is None
            ):
                self._distribute.add(ticket.queue_id)

    async def _start(self, ticket: _Ticket, messages: list[InboundMessage]) -> list[InboundMessage]:
        """A new conversation: greeting and menu, or straight into the only queue. Returns the messages left to
        read as answers to the menu (the first one opened the conversation).

        A group gets none of it — no greeting, menu, queue greeting or out-of-hours notice, which would go to
        every member — and enters the connection's only queue silently (or waits in no queue)."""
        routing = await self._routing_of(ticket.connection_id)
        if ticket.is_group:
            if routing.queue_id is not None:
                await self._enter_queue(ticket, routing.queue_id, via="connection")
            return []
        if routing.bot is not None:
            for text in menu.start(routing.bot):
                self._say(ticket, text)
            await self._set_menu(ticket, [], 0)
            return messages[1:]
        if routing.greeting:
            self._say(ticket, routing.greeting)
        if routing.queue_id is not None:
            await self._enter_queue(ticket, routing.queue_id, via="connection")
        else:
            await self._out_of_hours(ticket)
        return []

    async def _answer_menu(self, ticket: _Ticket, messages: list[InboundMessage]) -> None:
        routing = await self._routing_of(ticket.connection_id)
        bot = routing.bot
        if bot is None:  # the menu was removed while this customer was in it
            await self._leave_menu(ticket, None)
            return
        path, invalid = ticket.bot_path, ticket.bot_invalid
        for message in messages:
            try:
                step = menu.navigate(bot, path, invalid, message.text)
            except ValueError:  # the menu changed under the customer: start over
                step = menu.MenuStep(action="back", path=(), invalid_count=0, queue_id=None,
                                     messages=(menu.prompt_text(bot, []),))  # fmt: skip
            for text in step.messages:
                self._say(ticket, text)
            if step.action in ("route", "give_up"):
                await self._leave_menu(ticket, step.queue_id, via="menu" if step.action == "route" else "menu_gave_up")
                return
            path, invalid = list(step.path), step.invalid_count
        await self._set_menu(ticket, path, invalid)

    async def _set_menu(self, ticket: _Ticket, path: Sequence[str], invalid: int) -> None:
        ticket.bot_state, ticket.bot_path, ticket.bot_invalid = "menu", list(path), invalid
        await self.conn.execute(
            "UPDATE tickets SET bot_state = 'menu', bot_path = $2, bot_invalid = $3, bot_prompted_at = $4,"
            " updated_at = now() WHERE id = $1",
            ticket.id, list(path), invalid, self.now,
        )  # fmt: skip
        routing = await self._routing_of(ticket.connection_id)
        if routing.bot is not None and routing.bot.timeout_s > 0:
            self.timers.append(("menu", str(ticket.id), self.now + timedelta(seconds=routing.bot.timeout_s)))
        self.changed.add(ticket.id)

    async def _leave_menu(self, ticket: _Ticket, queue_id: int | None, via: str = "menu") -> None:
        ticket.bot_state = None
        await self.conn.execute(
            "UPDATE tickets SET bot_state = NULL, bot_path = '{}', bot_invalid = 0, updated_at = now() WHERE id = $1",
            ticket.id,
        )
        self.changed.add(ticket.id)
        if queue_id is not None:
            await self._enter_queue(ticket, queue_id, via=via)
        else:
            await log_event(self.conn, ticket.id, "routed", details={"queue_id": None, "via": via})
            await self._out_of_hours(ticket)

    async def on_menu_timeout(self, ticket_id: int) -> bool:
        """The menu timer fired: route the ticket to the fallback queue if the customer never chose. Returns
        False when it is too early (the caller schedules again)."""
        row = await self.conn.fetchrow(
            "SELECT id, contact_id, connection_id, status, queue_id, user_id, bot_state, bot_path, bot_invalid,"
            " bot_prompted_at FROM tickets WHERE id = $1 FOR UPDATE",
            ticket_id,
        )
        if row is None or row["bot_state"] != "menu" or row["status"] == "closed":
            return True
        routing = await self._routing_of(row["connection_id"])
        ticket = _Ticket(**{k: v for k, v in dict(row).items() if k != "bot_prompted_at"} | {
            "bot_path": list(row["bot_path"])})  # fmt: skip
        if routing.bot is None:
            await self._leave_menu(ticket, None)
            return True
        if not menu.timed_out(routing.bot, row["bot_prompted_at"], self.now):
            due = row["bot_prompted_at"] + timedelta(seconds=routing.bot.timeout_s)
            self.timers.append(("menu", str(ticket_id), due))
            return False
        step = menu.on_timeout(routing.bot)
        for text in step.messages:
            self._say(ticket, text)
        await self._leave_menu(ticket, step.queue_id, via="menu_timeout")
        return True

    async def _enter_queue(self, ticket: _Ticket, queue_id: int, *, via: str) -> None:
        queue = await self._queue(queue_id)
        if queue is None:  # deleted meanwhile: the ticket waits without a queue
            await self._out_of_hours(ticket)
            return
        self._was.setdefault(ticket.id, {"user_id": ticket.user_id, "queue_id": ticket.queue_id})
        ticket.queue_id = queue_id
        await self.conn.execute(
            "UPDATE tickets SET queue_id = $2, queue_entered_at = $3, updated_at = now() WHERE id = $1",
            ticket.id, queue_id, self.now,
        )  # fmt: skip
        await log_event(self.conn, ticket.id, "routed", details={"queue_id": queue_id, "via": via})
        self.changed.add(ticket.id)
        if queue["greeting"]:
            self._say(ticket, queue["greeting"])
        await self._out_of_hours(ticket)
        if ticket.user_id is None:
            self._distribute.add(queue_id)

    async def _out_of_hours(self, ticket: _Ticket) -> None:
        """If the ticket's hours are closed now, tell the customer once per closed window (never a group)."""
        if ticket.is_group:
            return
        calendar = await self.calendars.for_queue(ticket.queue_id)
        if calendar is None or is_open(calendar, self.now):
            return
        text, scope = self.settings.out_of_hours_message, "tenant"
        if ticket.queue_id is not None:
            queue = await self._queue(ticket.queue_id)
            if queue is not None:
                text = queue["out_of_hours_message"] or text
                scope = f"queue:{ticket.queue_id}" if queue["own"] else scope
        if not text:
            return
        sent = await self.conn.fetchval(
            "INSERT INTO out_of_hours_notices (contact_id, scope, window_key) VALUES ($1, $2, $3)"
            " ON CONFLICT DO NOTHING RETURNING 1",
            ticket.contact_id, scope, window_key(calendar, self.now),
        )  # fmt: skip
        if sent:
            self._say(ticket, text)

    async def _queue(self, queue_id: int) -> asyncpg.Record | None:
        """The queue's routing fields, read once per batch."""
        if queue_id not in self._queues:
            self._queues[queue_id] = await self.conn.fetchrow(
                "SELECT id, greeting, hours IS NOT NULL AS own, out_of_hours_message FROM queues WHERE id = $1",
                queue_id,
            )
        return self._queues[queue_id]

    def _say(self, ticket: _Ticket, text: str) -> None:
        if text and not ticket.is_group:
            self.outgoing.append(Outgoing(ticket.id, ticket.connection_id, text))

    async def _routing_of(self, connection_id: int) -> Routing:
        if connection_id not in self._routing:
            row = await self.conn.fetchrow(
                """
                SELECT c.greeting, c.bot::text AS bot,
                       coalesce(array_agg(q.id ORDER BY q.id) FILTER (WHERE q.id IS NOT NULL), '{}') AS queue_ids,
                       coalesce(array_agg(q.name ORDER BY q.id) FILTER (WHERE q.id IS NOT NULL), '{}') AS queue_names
                FROM connections c
                LEFT JOIN queue_connections qc ON qc.connection_id = c.id LEFT JOIN queues q ON q.id = qc.queue_id
                WHERE c.id = $1 GROUP BY c.id
                """,
                connection_id,
            )
            if row is None:
                routing = Routing(greeting="", bot=None, queue_id=None)
            elif row["bot"] is not None:
                routing = Routing(greeting="", bot=_bot_decoder.decode(row["bot"]), queue_id=None)
            else:
                queues = list(zip(row["queue_ids"], row["queue_names"], strict=True))
                bot = menu.auto_bot(queues, greeting=row["greeting"])
                routing = Routing(greeting=row["greeting"], bot=bot,
                                  queue_id=queues[0][0] if bot is None and len(queues) == 1 else None)  # fmt: skip
            self._routing[connection_id] = routing
        return self._routing[connection_id]

    # -- 3. after routing ---------------------------------------------------------------------------------------

    async def finish(self) -> tuple[list[RealtimeEvent], list[int]]:
        """Store the automated messages, distribute, and build the events; returns (events, outbox message ids).

        Messages first: they update ticket rows, and after the distribution lock no ticket row may be waited on."""
        events: list[RealtimeEvent] = []
        outbox: list[int] = []
        summaries: dict[int, str] = {}
        for item in self.outgoing:
            message = await insert_outgoing(self.conn, ticket_id=item.ticket_id, connection_id=item.connection_id,
                                            text=item.text, bot=True)  # fmt: skip
            outbox.append(message.id)
            summaries[item.ticket_id] = item.text
            events.append(message_event(message))
        if summaries:
            ids = list(summaries)
            await self.conn.execute(
                """
                UPDATE tickets t SET last_message_at = now(), last_message_preview = left(u.text, 120), updated_at = now()
                FROM unnest($1::bigint[], $2::text[]) AS u(id, text) WHERE t.id = u.id
                """,
                ids, [summaries[i] for i in ids],
            )  # fmt: skip
            self.changed.update(ids)
        if self._back_to_agent:
            await self._recheck_agents()
        if self._distribute:
            done = await distribute_queues(self.conn, self.tenant_id, self._distribute, now=self.now,
                                           calendars=self.calendars)  # fmt: skip
            self.timers += done.retries(self.now)
            for ticket_id, before in done.was().items():
                self._was.setdefault(ticket_id, before)
                self.changed.add(ticket_id)
        for ticket in await fetch_tickets(self.conn, self.changed):
            event = ticket_event(ticket, was=self._was.get(ticket.id))
            if ticket.id in self.created:
                event = RealtimeEvent(type="ticket.created", ticket_id=ticket.id, data=event.data)
            events.append(event)
        return events, outbox
