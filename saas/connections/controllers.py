"""``/api/v1/connections``: the tenant's WhatsApp numbers, their greeting and chatbot menu, and their queues."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, patch
from litestar.di import NamedDependency
from litestar.params import JSONBody

from saas.audit.service import record
from saas.auth.guards import Caller, requires
from saas.auth.permissions import Permission
from saas.auth.principal import principal_context
from saas.automation.menu import Bot, validate_bot
from saas.connections.service import ConnectionNotFound
from saas.links import replace_links
from saas.params import Id, RowId, client_address
from saas.runtime import Runtime
from supervisor.drivers.webhooks import PROVIDERS
from tenants.context import TenantSession
from tenants.errors import InvalidInput
from tenants.secrets import MasterKeys, tenant_cipher

__all__ = ["ConnectionController", "ConnectionOut", "ConnectionUpdate"]


class ConnectionOut(msgspec.Struct, frozen=True, kw_only=True):
    """``bot``: the explicit chatbot menu; null means a menu of ``queue_ids`` (or, with one queue, straight into
    it)."""

    id: int
    name: str
    provider: str
    business_number: str
    state: str
    state_reason: str | None
    greeting: str
    bot: Bot | None
    queue_ids: list[int]
    webhook_path: str | None  # where the provider delivers (webhook providers only); the key in it is the address
    has_webhook_secret: bool  # the secrets themselves are write-only
    has_webhook_verify_token: bool
    created_at: datetime


Secret = Annotated[str, msgspec.Meta(min_length=8, max_length=512)]


class ConnectionUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``webhook_secret``: the Cloud API app secret, the WAHA HMAC key or the Evolution API key that proves the
    provider's deliveries; ``webhook_verify_token``: the Cloud API handshake token. Both are sealed at rest and
    never returned; null removes one."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"\S")] | msgspec.UnsetType = msgspec.UNSET
    greeting: Annotated[str, msgspec.Meta(max_length=4096)] | msgspec.UnsetType = msgspec.UNSET
    bot: Bot | msgspec.UnsetType | None = msgspec.UNSET
    queue_ids: Annotated[list[RowId],
                         msgspec.Meta(max_length=100)] | msgspec.UnsetType = msgspec.UNSET  # fmt: skip
    webhook_secret: Secret | msgspec.UnsetType | None = msgspec.UNSET
    webhook_verify_token: Secret | msgspec.UnsetType | None = msgspec.UNSET


_bot = msgspec.json.Decoder(Bot)
_SELECT = """
SELECT c.id, c.name, c.provider, c.business_number, c.state, c.state_reason, c.greeting, c.bot::text AS bot, c.created_at,
       c.connection_key, c.webhook_secret IS NOT NULL AS has_webhook_secret,
       c.webhook_verify_token IS NOT NULL AS has_webhook_verify_token,
       coalesce(array_agg(qc.queue_id ORDER BY qc.queue_id) FILTER (WHERE qc.queue_id IS NOT NULL), '{}') AS queue_ids
FROM connections c LEFT JOIN queue_connections qc ON qc.connection_id = c.id
"""


def _connection(row: Any) -> ConnectionOut:
    values = {k: v for k, v in dict(row).items() if k != "connection_key"}
    path = f"/hooks/{row['provider']}/{row['connection_key']}" if row["provider"] in PROVIDERS else None
    return ConnectionOut(**{**values, "bot": None if row["bot"] is None else _bot.decode(row["bot"]),
                            "queue_ids": list(row["queue_ids"]), "webhook_path": path})  # fmt: skip


async def list_connections(session: TenantSession) -> list[ConnectionOut]:
    return [_connection(r) for r in await session.conn.fetch(_SELECT + " GROUP BY c.id ORDER BY c.id")]


async def get_connection(session: TenantSession, connection_id: int) -> ConnectionOut:
    row = await session.conn.fetchrow(_SELECT + " WHERE c.id = $1 GROUP BY c.id", connection_id)
    if row is None:
        raise ConnectionNotFound(f"connection {connection_id} does not exist", connection_id=connection_id)
    return _connection(row)


async def update_connection(session: TenantSession, connection_id: int, data: ConnectionUpdate, *, actor_id: int,
                            origin: str | None, masters: MasterKeys | None = None) -> ConnectionOut:  # fmt: skip
    conn = session.conn
    await get_connection(session, connection_id)
    if data.queue_ids is not msgspec.UNSET:
        await replace_links(conn, "queue_connections", ("connection_id", connection_id), ("queue_id", "queues"),
                            data.queue_ids, field="queue_ids")  # fmt: skip
    if data.bot is not msgspec.UNSET and data.bot is not None:
        queues = [r["id"] for r in await conn.fetch("SELECT id FROM queues")]
        try:
            validate_bot(data.bot, queues)
        except ValueError as exc:
            raise InvalidInput(f"bot: {exc}", field="bot") from exc
    changes: dict[str, Any] = {}
    if data.name is not msgspec.UNSET:
        changes["name"] = data.name.strip()
    if data.greeting is not msgspec.UNSET:
        changes["greeting"] = data.greeting
    if data.bot is not msgspec.UNSET:
        changes["bot"] = None if data.bot is None else msgspec.json.encode(data.bot).decode()
    secrets = {k: v for k, v in (("webhook_secret", data.webhook_secret), ("webhook_verify_token",
               data.webhook_verify_token)) if v is not msgspec.UNSET}  # fmt: skip
    if secrets:
        if masters is None:
            raise InvalidInput("webhook secrets need ATENDE_MASTER_KEY", field="webhook_secret")
        cipher = await tenant_cipher(conn, session.tenant.id, masters)
        changes.update({k: None if v is None else cipher.encrypt(v.encode()) for k, v in secrets.items()})
    if changes:
        sets = ", ".join(f"{k} = ${i + 2}" for i, k in enumerate(changes))
        await conn.execute(f"UPDATE connections SET {sets}, updated_at = now() WHERE id = $1", connection_id,
                           *changes.values())  # fmt: skip
    await record(session, actor_id=actor_id, action="connection.updated", target=f"connection:{connection_id}",
                 details={k: ("changed" if k in ("bot", "webhook_secret", "webhook_verify_token") else v)
                          for k, v in changes.items()}
                 | ({"queue_ids": sorted(set(data.queue_ids))} if data.queue_ids is not msgspec.UNSET else {}),
                 origin=origin)  # fmt: skip
    return await get_connection(session, connection_id)


class ConnectionController(Controller):
    path = "/api/v1/connections"
    tags = ["connections"]

    @get("/", summary="The tenant's WhatsApp connections", guards=[requires(Permission.CONNECTIONS_READ)])
    async def index(self, caller: NamedDependency[Caller]) -> list[ConnectionOut]:
        async with principal_context(caller.claims) as (_principal, session):
            return await list_connections(session)

    @get("/{connection_id:int}", summary="One connection", guards=[requires(Permission.CONNECTIONS_READ)])
    async def detail(self, caller: NamedDependency[Caller], connection_id: Id) -> ConnectionOut:
        async with principal_context(caller.claims) as (_principal, session):
            return await get_connection(session, connection_id)

    @patch("/{connection_id:int}", summary="Rename; set the greeting, the chatbot menu, the queues it serves and the "
           "webhook secrets",
           guards=[requires(Permission.CONNECTIONS_MANAGE)])  # fmt: skip
    async def update(self, request: Request[Any, Any, Any], caller: NamedDependency[Caller],
                     runtime: NamedDependency[Runtime], connection_id: Id, data: JSONBody[ConnectionUpdate]) -> ConnectionOut:  # fmt: skip
        masters = runtime.masters if runtime.settings.master_key else None
        async with principal_context(caller.claims) as (principal, session):
            return await update_connection(session, connection_id, data, actor_id=principal.user_id,
                                           origin=client_address(request),
                                           masters=masters)  # fmt: skip
