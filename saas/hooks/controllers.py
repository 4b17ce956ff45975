"""``/hooks/{provider}/{connection_key}``: where HTTP-based WhatsApp providers (Cloud API, WAHA, Evolution API)
deliver a connection's events.

Order of checks, cheapest and safest first: the connection key must name a connection of that provider in an
active tenant (else 404, whatever the reason), looked up through a short in-process cache (:func:`_target`); the
delivery must be authentic (:mod:`supervisor.drivers.webhooks`, with the connection's secrets opened from their
sealed form: else 401 and nothing is kept), and a connection's failed proofs have a small budget of their own
(:data:`FAILED_PROOFS`, beyond it 429 with ``Retry-After``), so a flood of forgeries costs one Redis round trip each
and no database query; only an authentic delivery counts against the connection's delivery rate (atomic in Redis,
shared by every API worker: 429 with ``Retry-After``, which providers honour by retrying later), so a sender without
the secret cannot use up the provider's budget; only then is the payload parsed, its events appended to the inbound
streams, and the provider answered 200 — after the append, so nothing acknowledged is ever lost (a redelivery is
stored once).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Final

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

__all__ = ["FAILED_PROOFS", "TARGET_CACHE_SIZE", "TARGET_TTL_S", "WebhookController", "clear_target_cache"]

MAX_BODY = 1024 * 1024
Provider = Annotated[str, PathParameter(max_length=20, description="cloud, waha or evolution")]
ConnectionKey = Annotated[str, PathParameter(max_length=64, description="the connection's key (its webhook address)")]

FAILED_PROOFS: Final = ratelimit.Limit("webhook-proof", 30, 60)
"""Deliveries (and handshakes) per connection and minute whose signature or key did not verify, before 429."""
TARGET_TTL_S: Final = 30.0
TARGET_CACHE_SIZE: Final = 1024


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

    @property
    def subject(self) -> str:
        """Whose rate budgets a request to this target counts against."""
        return f"{self.tenant_id}:{self.connection_id}"


class _TargetCache:
    """Webhook address -> its connection (or None: no such webhook) for ``ttl_s`` seconds, at most ``size``
    addresses (the least recently used are dropped first). One per process; every API worker has its own."""

    __slots__ = ("clock", "entries", "size", "ttl_s")

    def __init__(self, ttl_s: float, size: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.size = size
        self.clock = clock
        self.entries: OrderedDict[tuple[str, str], tuple[float, _Target | None]] = OrderedDict()

    def get(self, address: tuple[str, str]) -> tuple[float, _Target | None] | None:
        """The live entry ``(expires_at, target)`` of ``address``, or None when there is none (or it expired)."""
        entry = self.entries.get(address)
        if entry is None:
            return None
        if entry[0] <= self.clock():
            del self.entries[address]
            return None
        self.entries.move_to_end(address)
        return entry

    def put(self, address: tuple[str, str], target: _Target | None) -> None:
        self.entries[address] = (self.clock() + self.ttl_s, target)
        self.entries.move_to_end(address)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)


_targets = _TargetCache(TARGET_TTL_S, TARGET_CACHE_SIZE)


def clear_target_cache() -> None:
    """Forget every cached webhook address of this process (tests, tools that change secrets in place)."""
    _targets.entries.clear()


async def _load_target(runtime: Runtime, provider: str, connection_key: str) -> _Target | None:
    row = await pool().fetchrow(
        "SELECT r.tenant_id, r.connection_id FROM public.session_registry r JOIN public.tenants t ON t.id = r.tenant_id"
        " WHERE r.connection_key = $1 AND r.provider = $2 AND t.status = 'active'",
        connection_key, provider,
    )  # fmt: skip
    if row is None:
        return None
    async with tenant_context(tenant_id=row["tenant_id"]) as session:
        sealed = await session.conn.fetchrow(
            "SELECT webhook_secret, webhook_verify_token FROM connections WHERE id = $1", row["connection_id"]
        )
        if sealed is None:
            return None
        values: list[str | None] = [None, None]
        if sealed["webhook_secret"] is not None or sealed["webhook_verify_token"] is not None:
            cipher = await tenant_cipher(session.conn, row["tenant_id"], runtime.masters)
            values = [None if blob is None else cipher.decrypt(blob).decode() for blob in sealed]
    return _Target(row["tenant_id"], row["connection_id"], WebhookSecrets(values[0], values[1]))


async def _target(runtime: Runtime, provider: str, connection_key: str, *, fresh: bool = False) -> tuple[_Target, bool]:
    """The connection a webhook address names and whether it came from the cache; 404 if there is none.

    Answers are cached for :data:`TARGET_TTL_S` seconds (unknown addresses too), so a flood does not reach
    PostgreSQL. A changed secret is therefore picked up within that TTL at the latest — at once by a request that
    proves the new secret, because a failed proof against a cached answer looks the connection up again
    (``fresh``) before refusing, while the old secret may keep working for up to the TTL. A deleted connection or
    a suspended tenant likewise stops receiving within the TTL.
    """
    if provider not in PROVIDERS or not 16 <= len(connection_key) <= 64:
        raise WebhookNotFound("no such webhook")
    address = (provider, connection_key)
    entry = None if fresh else _targets.get(address)
    if entry is None:
        target = await _load_target(runtime, provider, connection_key)
        _targets.put(address, target)
    else:
        target = entry[1]
    if target is None:
        raise WebhookNotFound("no such webhook")
    return target, entry is not None


async def _proven(runtime: Runtime, provider: str, connection_key: str, found: tuple[_Target, bool],
                  proves: Callable[[WebhookSecrets], bool], refusal: str) -> _Target:  # fmt: skip
    """The connection a request is addressed to (``found`` by :func:`_target`), once ``proves`` accepted the
    request against its secrets, else 401 with ``refusal``.

    A failed proof counts against the connection's :data:`FAILED_PROOFS` budget (429 beyond it, before any
    database query); one against a cached answer is then checked once more against the stored secrets.
    """
    target, cached = found
    if proves(target.secrets):
        return target
    await ratelimit.hit(runtime.redis_client, runtime.keys.prefix, FAILED_PROOFS, target.subject)
    if cached:  # the secret may have changed since it was cached
        target, _ = await _target(runtime, provider, connection_key, fresh=True)
        if proves(target.secrets):
            return target
    raise InvalidSignature(refusal)


async def _limit(runtime: Runtime, target: _Target) -> None:
    limit = ratelimit.Limit("webhook", runtime.settings.webhook_rate_per_min, 60)
    await ratelimit.hit(runtime.redis_client, runtime.keys.prefix, limit, target.subject)


class WebhookController(Controller):
    path = "/hooks"
    tags = ["webhooks"]

    @post("/{provider:str}/{connection_key:str}", summary="A provider delivers a connection's events",
          status_code=200, request_max_body_size=MAX_BODY)  # fmt: skip
    async def deliver(self, request: Request[Any, Any, Any], runtime: NamedDependency[Runtime], provider: Provider,
                      connection_key: ConnectionKey) -> dict[str, int]:  # fmt: skip
        found = await _target(runtime, provider, connection_key)
        hook = PROVIDERS[provider]
        body = await request.body()
        target = await _proven(runtime, provider, connection_key, found,
                               lambda secrets: hook.verify(request.headers, body, secrets),
                               "the delivery's signature or key does not match this connection's secret")  # fmt: skip
        await _limit(runtime, target)
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
        return {"accepted": len(envelopes), "skipped": parsed.skipped}  # skipped: malformed items (logged)

    @get("/{provider:str}/{connection_key:str}", summary="The Cloud API's subscription handshake (echoes "
         "hub.challenge)", media_type="text/plain")  # fmt: skip
    async def subscribe(self, request: Request[Any, Any, Any], runtime: NamedDependency[Runtime], provider: Provider,
                        connection_key: ConnectionKey) -> Response[str]:  # fmt: skip
        if provider != "cloud":
            raise WebhookNotFound("only the Cloud API subscribes with a handshake")
        found = await _target(runtime, provider, connection_key)
        params = dict(request.query_params)
        target = await _proven(runtime, provider, connection_key, found,
                               lambda secrets: cloud_challenge(params, secrets) is not None,
                               "hub.verify_token does not match this connection's verify token")  # fmt: skip
        await _limit(runtime, target)
        challenge = cloud_challenge(params, target.secrets)
        assert challenge is not None  # proven above
        return Response(challenge, media_type="text/plain")
