"""``/hooks/{provider}/{connection_key}``: where HTTP-based WhatsApp providers (Cloud API, WAHA, Evolution API)
deliver a connection's events.

Order of checks, cheapest and safest first: the connection key must name a connection of that provider in an
active tenant (else 404, whatever the reason); the connection's delivery rate is limited (atomic in Redis, shared
by every API worker: 429 with ``Retry-After``, which providers honour by retrying later); the delivery must be
authentic (:mod:`supervisor.drivers.webhooks`, with the connection's secrets opened from their sealed form: else
401 and nothing is kept); only then is the payload parsed, its events appended to the inbound streams, and the
provider answered 200 — after the append, so nothing acknowledged is ever lost (a redelivery is stored once).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import PathParameter

from saas.auth import ratelimit
from saas.runtime import Runtime
from supervisor.drivers.webhooks import PROVIDERS, WebhookSecrets, cloud_challenge
from supervisor.streams import append_events
from supervisor.wire import Envelope, utcnow
from tenants.context import tenant_context
from tenants.db import pool
from tenants.errors import AtendeError, InvalidInput, NotFound
from tenants.secrets import tenant_cipher

__all__ = ["WebhookController"]

MAX_BODY = 1024 * 1024
Provider = Annotated[str, PathParameter(max_length=20, description="cloud, waha or evolution")]
ConnectionKey = Annotated[str, PathParameter(max_length=64, description="the connection's key (its webhook address)")]


class WebhookNotFound(NotFound):
    code = "webhook_not_found"
    title = "No such webhook"


class InvalidSignature(AtendeError):
    code = "invalid_signature"
    status = 401
    title = "Delivery not authentic"


@dataclass(frozen=True, slots=True)
class _Target:
    tenant_id: int
    connection_id: int
    secrets: WebhookSecrets


async def _target(runtime: Runtime, provider: str, connection_key: str) -> _Target:
    if provider not in PROVIDERS or not 16 <= len(connection_key) <= 64:
        raise WebhookNotFound("no such webhook")
    row = await pool().fetchrow(
        "SELECT r.tenant_id, r.connection_id FROM public.session_registry r JOIN public.tenants t ON t.id = r.tenant_id"
        " WHERE r.connection_key = $1 AND r.provider = $2 AND t.status = 'active'",
        connection_key, provider,
    )  # fmt: skip
    if row is None:
        raise WebhookNotFound("no such webhook")
    async with tenant_context(tenant_id=row["tenant_id"]) as session:
        sealed = await session.conn.fetchrow(
            "SELECT webhook_secret, webhook_verify_token FROM connections WHERE id = $1", row["connection_id"]
        )
        if sealed is None:
            raise WebhookNotFound("no such webhook")
        values: list[str | None] = [None, None]
        if sealed["webhook_secret"] is not None or sealed["webhook_verify_token"] is not None:
            cipher = await tenant_cipher(session.conn, row["tenant_id"], runtime.masters)
            values = [None if blob is None else cipher.decrypt(blob).decode() for blob in sealed]
    return _Target(row["tenant_id"], row["connection_id"], WebhookSecrets(values[0], values[1]))


async def _limit(runtime: Runtime, target: _Target) -> None:
    limit = ratelimit.Limit("webhook", runtime.settings.webhook_rate_per_min, 60)
    await ratelimit.hit(runtime.redis_client, runtime.keys.prefix, limit, f"{target.tenant_id}:{target.connection_id}")


class WebhookController(Controller):
    path = "/hooks"
    tags = ["webhooks"]

    @post("/{provider:str}/{connection_key:str}", summary="A provider delivers a connection's events",
          status_code=200, request_max_body_size=MAX_BODY)  # fmt: skip
    async def deliver(self, request: Request[Any, Any, Any], runtime: NamedDependency[Runtime], provider: Provider,
                      connection_key: ConnectionKey) -> dict[str, int]:  # fmt: skip
        target = await _target(runtime, provider, connection_key)
        await _limit(runtime, target)
        body = await request.body()
        hook = PROVIDERS[provider]
        if not hook.verify(request.headers, body, target.secrets):
            raise InvalidSignature("the delivery's signature or key does not match this connection's secret")
        try:
            parsed = hook.parse(body)
        except ValueError as exc:
            raise InvalidInput(f"unreadable {provider} webhook: {exc}") from exc
        envelopes = [
            Envelope(
                event_id=f"{provider}:{target.connection_id}:{ident}",
                tenant_id=target.tenant_id,
                connection_id=target.connection_id,
                provider=provider,
                received_at=utcnow(),
                event=event,
            )
            for ident, event in parsed.events
        ]
        if envelopes:
            await append_events(runtime.redis_client, runtime.keys, envelopes)  # 200 only after the append
        return {"accepted": len(envelopes)}

    @get("/{provider:str}/{connection_key:str}", summary="The Cloud API's subscription handshake (echoes "
         "hub.challenge)", media_type="text/plain")  # fmt: skip
    async def subscribe(self, request: Request[Any, Any, Any], runtime: NamedDependency[Runtime], provider: Provider,
                        connection_key: ConnectionKey) -> Response[str]:  # fmt: skip
        if provider != "cloud":
            raise WebhookNotFound("only the Cloud API subscribes with a handshake")
        target = await _target(runtime, provider, connection_key)
        await _limit(runtime, target)
        challenge = cloud_challenge(dict(request.query_params), target.secrets)
        if challenge is None:
            raise InvalidSignature("hub.verify_token does not match this connection's verify token")
        return Response(challenge, media_type="text/plain")
