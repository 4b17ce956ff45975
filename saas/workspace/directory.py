"""``/api/v1/directory``: what every member of the team may know about the workspace to work a ticket — the queues,
the people (name, role, presence), the numbers, and what closing a ticket does by default — so an agent can
transfer to any queue, agent or number and see who holds a ticket, without the admin-only listings."""

from __future__ import annotations

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency

from saas.auth.guards import Caller, requires
from saas.auth.permissions import Permission
from saas.auth.principal import principal_context
from saas.workspace.service import load_settings
from tenants.context import TenantSession

__all__ = ["Directory", "DirectoryController", "directory"]


class QueueEntry(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    name: str
    color: str
    strategy: str
    member_ids: list[int]


class PersonEntry(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    name: str
    role: str
    presence: str


class NumberEntry(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    name: str
    business_number: str
    provider: str
    state: str


class CloseDefaults(msgspec.Struct, frozen=True, kw_only=True):
    farewell_message: str  # sent on close unless the agent gives another text ("" = none)
    csat_enabled: bool  # whether closing asks for a rating unless the agent says otherwise


class Directory(msgspec.Struct, frozen=True, kw_only=True):
    queues: list[QueueEntry]
    people: list[PersonEntry]  # active users who accepted their invitation
    connections: list[NumberEntry]
    close_defaults: CloseDefaults
    timezone: str


async def directory(session: TenantSession) -> Directory:
    conn = session.conn
    queues = [
        QueueEntry(**{**dict(r), "member_ids": list(r["member_ids"])})
        for r in await conn.fetch(
            "SELECT q.id, q.name, q.color, q.strategy, coalesce(array_agg(m.user_id ORDER BY m.user_id)"
            " FILTER (WHERE m.user_id IS NOT NULL), '{}') AS member_ids"
            " FROM queues q LEFT JOIN queue_members m ON m.queue_id = q.id GROUP BY q.id ORDER BY q.name, q.id"
        )
    ]
    people = [PersonEntry(**dict(r)) for r in await conn.fetch(
        "SELECT id, name, role, presence FROM users WHERE active AND password_hash IS NOT NULL ORDER BY name, id")]  # fmt: skip
    numbers = [NumberEntry(**dict(r)) for r in await conn.fetch(
        "SELECT id, name, business_number, provider, state FROM connections ORDER BY id")]  # fmt: skip
    settings = await load_settings(conn)
    return Directory(queues=queues, people=people, connections=numbers, timezone=settings.timezone,
                     close_defaults=CloseDefaults(farewell_message=settings.farewell_message,
                                                  csat_enabled=settings.csat_enabled))  # fmt: skip


class DirectoryController(Controller):
    path = "/api/v1/directory"
    tags = ["settings"]

    @get("/", summary="The team's queues, people and numbers, and the close defaults (for every staff member)",
         guards=[requires(Permission.TICKETS_READ)])  # fmt: skip
    async def read(self, caller: NamedDependency[Caller]) -> Directory:
        async with principal_context(caller.claims) as (_principal, session):
            return await directory(session)
