"""A session host: many WhatsApp sessions as asyncio tasks in one process (a Ray actor in production).

Each session is a :class:`SessionRunner`: take the lease, load credentials, start the driver, pump its
events, and when the connection ends let :func:`supervisor.policy.decide` say what happens next. Inbound
events of all sessions go through one :class:`Appender` that batches ``XADD``s and acknowledges each event
to its driver only after the append returned. Outbound commands of all sessions are read by one
multiplexed ``XREADGROUP`` and handed to each session's send loop, which paces sends with a token bucket,
sends idempotently (a Redis marker per message id) and reports the result as an inbound ``MessageStatus``; a
command that fails, even unexpectedly, is reported FAILED with a stable code and the loop goes on with the next.

The host never dies of a session: each runner catches its own errors, and a crash is just a restart reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from supervisor.drivers.base import Driver, DriverConfig, DriverError, RateLimited, SendFailed
from supervisor.drivers.factory import make_driver
from supervisor.media import (
    MAX_BYTES,
    MediaError,
    MediaNotFound,
    MediaStore,
    base_mime,
    store_content,
    store_from_settings,
)
from supervisor.metrics import MetricsSink
from supervisor.policy import Action, DisconnectReason, RestartPolicy, SessionHistory, decide, reason_from
from supervisor.realtime import RealtimeEvent, publish
from supervisor.registry import (
    TERMINAL_STATES,
    ConnectionDetails,
    SessionSpec,
    claim_session,
    record_state,
    release_lease,
    renew_lease,
)
from supervisor.streams import FETCH_FIELD, FIELD, StreamKeys, append_events
from supervisor.wire import (
    Envelope,
    FetchMedia,
    InboundMessage,
    MediaResult,
    MessageStatus,
    OutboundMessage,
    SessionState,
    SessionStatus,
    decode_fetch,
    decode_outbound,
    utcnow,
)
from tenants import db
from tenants.secrets import MasterKeys

__all__ = ["HostConfig", "SessionHostCore", "SessionRunner", "TokenBucket"]

logger = logging.getLogger("atende.host")
OUT_GROUP = "hosts"
SENT_MARKER_TTL_S = 24 * 3600
STARTING_WRITE_DELAY_S = 1.0


@dataclass(frozen=True, slots=True)
class HostConfig:
    name: str
    database_url: str
    redis_url: str
    redis_prefix: str = "atende"
    stream_shards: int = 4
    simulator_url: str = "http://127.0.0.1:8010"
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    lease_ttl_s: float = 15.0
    send_rate_per_s: float = 20.0
    send_burst: int = 20
    db_pool_size: int = 10
    master_key: str = ""  # wraps tenant data keys (credentials at rest); plain strings travel to Ray actors
    previous_master_keys: tuple[str, ...] = ()
    media_store: str = "file"  # where inbound media is downloaded to and agents' uploads are read from
    media_dir: str = ".atende/media"
    s3_endpoint: str | None = None
    s3_bucket: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_region: str = "us-east-1"
    media_max_bytes: int = 100 * 1024 * 1024
    media_fetch_concurrency: int = 8


def tune_gc() -> None:
    """Fewer, later garbage collections for the message pipeline's long-lived processes.

    The pipeline allocates many short-lived objects per event; CPython's default generation-0 threshold (700)
    makes the collector run thousands of times a second and its older-generation passes show up as latency
    spikes. Objects alive at start-up are frozen out of collection entirely.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


class TokenBucket:
    """Per-number send pacing: ``rate`` tokens a second, at most ``burst`` saved up."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    async def take(self) -> None:
        while True:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1:
                self.tokens -= 1
                return
            await asyncio.sleep((1 - self.tokens) / self.rate)


AckFn = Callable[[], Awaitable[None]]


class Appender:
    """Batches inbound events of every session into pipelined XADDs; acks each to its driver afterwards."""

    def __init__(self, redis: Redis, keys: StreamKeys, metrics: MetricsSink) -> None:
        self.redis = redis
        self.keys = keys
        self.metrics = metrics
        self.queue: asyncio.Queue[tuple[Envelope, AckFn | None]] = asyncio.Queue()

    async def put(self, envelope: Envelope, ack: AckFn | None) -> None:
        await self.queue.put((envelope, ack))

    async def run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while len(batch) < 500 and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            delay = 0.1
            while True:
                try:
                    await append_events(self.redis, self.keys, [envelope for envelope, _ in batch])
                    break
                except (RedisError, OSError):
                    logger.exception("appending %s events failed; retrying", len(batch))
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
            for envelope, ack in batch:
                if isinstance(envelope.event, InboundMessage):
                    labels = (str(envelope.tenant_id), str(envelope.connection_id))
                    self.metrics.inc("atende_session_messages_in_total", labels)
                if ack is not None:
                    try:
                        await ack()
                    except Exception:  # the provider will redeliver; storage is idempotent
                        logger.warning("ack to driver failed", exc_info=True)


class SessionRunner:
    """Supervises one session: lease, driver, restarts by policy, sends."""

    def __init__(self, host: SessionHostCore, spec: SessionSpec) -> None:
        self.host = host
        self.spec = spec
        self.state = SessionState.STOPPED
        self.token: int | None = None
        self.driver: Driver | None = None
        self.history = SessionHistory()
        self.send_queue: asyncio.Queue[tuple[str, bytes, OutboundMessage | FetchMedia]] = asyncio.Queue()
        self.bucket = TokenBucket(host.config.send_rate_per_s, host.config.send_burst)
        self.connected = asyncio.Event()
        self.stopping = False
        self.restarts = 0
        self.labels = (str(spec.tenant_id), str(spec.connection_id))
        self.task: asyncio.Task[None] | None = None
        self._deferred: asyncio.Task[None] | None = None

    @property
    def out_key(self) -> str:
        return self.host.keys.outbound(self.spec.tenant_id, self.spec.connection_id)

    async def run(self) -> None:
        policy = self.host.config.policy
        while not self.stopping:
            try:
                claim = await claim_session(self.spec, self.host.config.name, self.host.config.lease_ttl_s,
                                            self.host.masters)  # fmt: skip
            except Exception:
                logger.exception("lease of session %s failed", self.spec.registry_id)
                await asyncio.sleep(1.0)
                continue
            if claim.token is None or claim.connection is None:
                if claim.state is None or claim.state in TERMINAL_STATES or claim.connection is None:
                    return  # parked, deleted or its tenant suspended: nothing to run
                await asyncio.sleep(self.host.config.lease_ttl_s / 3)  # another host holds it: wait for expiry
                continue
            token = self.token = claim.token
            started = time.monotonic()
            reason, ban_until, connected_at = await self._connect_once(claim.connection)
            if self.stop_requested():
                reason = DisconnectReason.STOPPED
            now = time.monotonic()
            decision = decide(
                policy, reason, self.history, now=now,
                connected_for_s=(now - connected_at) if connected_at is not None else 0.0,
                jitter_draw=random.random(),  # noqa: S311 - jitter, not security
                ban_until=ban_until,
            )  # fmt: skip
            self.history = decision.history
            if decision.alert:
                logger.warning("session %s: %s", self.spec.registry_id, decision.why,
                               extra={"fields": {"tenant_id": self.spec.tenant_id, "connection_id": self.spec.connection_id,
                                                 "alert": True, "reason": str(reason)}})  # fmt: skip
            await self._set_state(decision.state, reason=decision.why)
            if decision.action is not Action.RESTART:
                await release_lease(self.spec.registry_id, self.host.config.name, token)
                return
            self.restarts += 1
            self.host.metrics.inc("atende_session_restarts_total", self.labels)
            logger.info("session %s restarts in %.2fs (%s, up %.1fs)", self.spec.registry_id, decision.delay_s,
                        reason, time.monotonic() - started)  # fmt: skip
            await asyncio.sleep(decision.delay_s)

    async def _connect_once(self, details: ConnectionDetails) -> tuple[DisconnectReason, float | None, float | None]:
        """One connection, start to end; returns (why it ended, monotonic ban expiry, when it connected)."""
        connected_at: float | None = None
        sender: asyncio.Task[None] | None = None
        renewer = asyncio.create_task(self._renew_lease())
        try:
            config = DriverConfig(
                connection_id=self.spec.connection_id, tenant_id=self.spec.tenant_id,
                business_number=details.business_number, provider=self.spec.provider,
                endpoint=details.endpoint or self.host.config.simulator_url, credentials=details.credentials,
            )  # fmt: skip
            driver = self.driver = make_driver(config)
            await self._set_state(SessionState.STARTING)
            await driver.start()
            async for event in driver.events():
                if renewer.done():  # fenced off: another host owns this session now
                    await driver.stop()
                    return DisconnectReason.REPLACED, None, connected_at
                if isinstance(event, SessionStatus):
                    if event.reason is not None and event.state is not SessionState.CONNECTED:
                        until = event.until
                        ban_until = (time.monotonic() + max(0.0, (until - utcnow()).total_seconds())) if until else None
                        return reason_from(event.reason), ban_until, connected_at
                    # "paired": keep the new credentials, but this connection is about to be replaced (restart
                    # required), so it is not the usable CONNECTED one yet.
                    paired = event.state is SessionState.CONNECTED and event.code == "paired"
                    await self._set_state(SessionState.RECONNECTING if paired else event.state, qr=event.qr,
                                          qr_expires_at=event.qr_expires_at, credentials=event.credentials)  # fmt: skip
                    if event.state is SessionState.CONNECTED and sender is None and not paired:
                        connected_at = time.monotonic()
                        self.connected.set()
                        await self._claim_outbound()
                        sender = asyncio.create_task(self._send_loop(driver))
                    continue
                if isinstance(event, MediaResult):  # only hosts make these; a driver has no business sending one
                    continue
                await self.host.appender.put(self._envelope(event), _acker(driver, event))
            return DisconnectReason.NETWORK, None, connected_at  # stream ended without a reason
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("session %s crashed", self.spec.registry_id)
            return DisconnectReason.CRASHED, None, connected_at
        finally:
            self.connected.clear()
            for task in (sender, renewer):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
            if self.driver is not None:
                with contextlib.suppress(Exception):
                    await self.driver.stop()
            self.driver = None

    def _envelope(self, event: InboundMessage | MessageStatus | MediaResult) -> Envelope:
        if isinstance(event, InboundMessage):
            event_id = f"{self.spec.provider}:{self.spec.connection_id}:{event.provider_message_id}"
        elif isinstance(event, MediaResult):
            event_id = f"{self.spec.provider}:{self.spec.connection_id}:media:{event.message_id}:{event.state}"
        else:
            event_id = (f"{self.spec.provider}:{self.spec.connection_id}:{event.provider_message_id}:{event.status}:"
                        f"{event.participant or ''}:{event.client_message_id or ''}")  # fmt: skip
        return Envelope(event_id=event_id, tenant_id=self.spec.tenant_id, connection_id=self.spec.connection_id,
                        provider=self.spec.provider, received_at=utcnow(), event=event)  # fmt: skip

    async def _renew_lease(self) -> None:
        ttl = self.host.config.lease_ttl_s
        while True:
            await asyncio.sleep(ttl / 3)
            assert self.token is not None
            try:
                if not await renew_lease(self.spec.registry_id, self.host.config.name, self.token, ttl):
                    logger.error("session %s lost its lease", self.spec.registry_id)
                    return
            except Exception:
                logger.warning("lease renewal of session %s failed", self.spec.registry_id, exc_info=True)

    async def _set_state(self, state: SessionState, *, reason: str | None = None, qr: str | None = None,
                         qr_expires_at: Any = None, credentials: bytes | None = None) -> None:  # fmt: skip
        """Persist and publish a state change (fenced by the lease).

        STARTING is written only if the session is still starting a moment later: a resumed session usually
        reaches CONNECTED within tens of milliseconds, and after a host restart hundreds of sessions resume at
        once, so the transient write would double the database work on the recovery path for nothing.
        """
        self.state = state
        self.host.metrics.set_state("atende_session_state", self.labels, state.value)
        if self._deferred is not None:
            self._deferred.cancel()
            self._deferred = None
        if self.token is None:
            return
        if state is SessionState.STARTING and credentials is None:
            self._deferred = asyncio.create_task(self._write_later(state, STARTING_WRITE_DELAY_S))
            return
        await self._write_state(state, reason=reason, qr=qr, qr_expires_at=qr_expires_at, credentials=credentials)

    async def _write_later(self, state: SessionState, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        self._deferred = None
        await self._write_state(state)

    async def _write_state(self, state: SessionState, *, reason: str | None = None, qr: str | None = None,
                           qr_expires_at: Any = None, credentials: bytes | None = None) -> None:  # fmt: skip
        assert self.token is not None
        try:
            if await record_state(self.spec, self.token, state, masters=self.host.masters, reason=reason, qr=qr,
                                  qr_expires_at=qr_expires_at, credentials=credentials):  # fmt: skip
                data = {"connection_id": self.spec.connection_id, "state": state.value, "reason": reason, "qr": qr,
                        "qr_expires_at": qr_expires_at.isoformat() if qr_expires_at else None}  # fmt: skip
                await publish(self.host.redis, self.host.keys, self.spec.tenant_id,
                              [RealtimeEvent(type="session.updated", data=data)])  # fmt: skip
        except Exception:
            logger.exception("persisting state %s of session %s failed", state, self.spec.registry_id)

    async def _claim_outbound(self) -> None:
        """On (re)connect, take over every pending send of this session, whoever read it before."""
        redis, key = self.host.redis, self.out_key
        await self.host.ensure_out_group(key)
        start = "0-0"
        while True:
            response: Any = await redis.xautoclaim(key, OUT_GROUP, self.host.config.name, 0, start_id=start, count=500)
            next_start, claimed = response[0], response[1]
            for entry_id, fields in claimed:
                command = await readable_command(redis, key, entry_id, fields) if fields else None
                if command is not None:
                    await self.send_queue.put((key, entry_id, command))
            if not claimed or next_start in (b"0-0", "0-0"):
                return
            start = next_start

    async def _send_loop(self, driver: Driver) -> None:
        fetches: set[asyncio.Task[None]] = set()
        try:
            while True:
                key, entry_id, command = await self.send_queue.get()
                if isinstance(command, FetchMedia):  # downloads do not wait for the send pacing, nor sends for them
                    task = asyncio.create_task(self._fetch_and_ack(driver, key, entry_id, command))
                    fetches.add(task)
                    task.add_done_callback(fetches.discard)
                    continue
                await self.bucket.take()
                await self._send_and_ack(driver, key, entry_id, command)
        finally:
            for task in fetches:
                task.cancel()

    def _stream_ack(self, key: str, entry_id: bytes, what: str) -> AckFn:
        """The XACK of an outbound entry, run by the appender once the command's outcome is on the inbound stream:
        a host dying in between leaves the entry pending, and the next one reports it again (the sent marker
        stops a resend), so no outcome is ever lost."""

        async def ack() -> None:
            try:
                await self.host.redis.xack(key, OUT_GROUP, entry_id)
            except Exception:  # left pending: taken over on the next connection, reported again
                logger.warning("ack of %s failed", what, exc_info=True)

        return ack

    async def _send_and_ack(self, driver: Driver, key: str, entry_id: bytes, command: OutboundMessage) -> None:
        """One send, from the marker to the stream ack. Whatever goes wrong is this command's failure, reported
        FAILED (``internal_error`` when unexpected), never the send loop's: the next command is sent regardless."""
        try:
            outcome = await self._send(driver, command)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("send of message %s failed unexpectedly", command.message_id)
            self.host.metrics.inc("atende_session_send_errors_total", self.labels)
            with contextlib.suppress(Exception):  # best effort: the command is acked below, never retried
                await self.host.redis.delete(self._marker(command))
            outcome = self._report(command, "FAILED", None, code="internal_error",
                                   title="the session host could not send this message")  # fmt: skip
        await self.host.appender.put(outcome, self._stream_ack(key, entry_id, f"send {command.message_id}"))

    async def _fetch_and_ack(self, driver: Driver, key: str, entry_id: bytes, command: FetchMedia) -> None:
        try:
            async with self.host.fetch_gate:
                outcome = await self._fetch(driver, command)
        except asyncio.CancelledError:
            raise
        except Exception:  # left pending: taken over again on the next connection
            logger.exception("media fetch of message %s failed", command.message_id)
            return
        await self.host.appender.put(outcome, self._stream_ack(key, entry_id, f"fetch {command.message_id}"))

    async def _fetch(self, driver: Driver, command: FetchMedia) -> Envelope:
        """Download an inbound message's media through the driver into the media store; report the outcome.

        Inbound media is stored whatever its type (WhatsApp already accepted it; the API serves unknown types as
        downloads), but never beyond the size limit of its kind. A failure that may pass is retried three times.
        """
        media = command.media
        limit = min(MAX_BYTES.get(command.kind, MAX_BYTES["document"]), self.host.config.media_max_bytes)
        if media.size is not None and media.size > limit:
            return self._media_result(command, "rejected", error="media_too_large")
        data: bytes | None = None
        for attempt in range(3):
            try:
                data = await driver.download_media(media)
                break
            except DriverError as exc:
                if not exc.retryable or attempt == 2:
                    # The code only: the driver's text names provider URLs and ids, which agents have no use for.
                    logger.warning("download of the media of message %s failed: %s", command.message_id, exc)
                    return self._media_result(command, "failed", error=exc.code or "download_failed")
                await asyncio.sleep(0.5 * 2**attempt)
        assert data is not None
        if len(data) > limit:
            return self._media_result(command, "rejected", error="media_too_large")
        mime = base_mime(media.mime) or "application/octet-stream"
        # A store outage raises: the command stays pending.
        stored_key, digest = await store_content(self.host.media, command.tenant_id, data, mime)
        self.host.metrics.inc("atende_session_media_fetched_total", self.labels)
        return self._media_result(command, "stored", key=stored_key, size=len(data), sha256=digest, mime=mime)

    def _media_result(self, command: FetchMedia, state: str, **fields: Any) -> Envelope:
        event = MediaResult(message_id=command.message_id, chat_id=command.chat_id, state=state,  # type: ignore[arg-type]
                            occurred_at=utcnow(), **fields)  # fmt: skip
        return self._envelope(event)

    def _marker(self, command: OutboundMessage) -> str:
        """The Redis key that remembers a send (``pending``, then the provider's id): a redelivery sends nothing."""
        return f"{self.host.keys.prefix}:sent:{{t{command.tenant_id}}}:{command.message_id}"

    async def _read_media(self, command: OutboundMessage) -> bytes | MediaError:
        """The bytes of an agent's upload, or the error that ends its send (the store retries what may pass)."""
        assert command.media is not None
        try:
            return await self.host.media.get(command.media.ref)
        except MediaError as exc:
            logger.error("reading the media of message %s failed: %s", command.message_id, exc)
            return exc

    async def _send(self, driver: Driver, command: OutboundMessage) -> Envelope:
        """Send the command (at most once, whatever redeliveries come); returns its outcome to report."""
        redis = self.host.redis
        marker = self._marker(command)
        existing = await redis.get(marker)
        if existing and existing != b"pending":
            # sent before a crash: report, don't resend
            return self._report(command, "SENT", existing.decode() if isinstance(existing, bytes) else str(existing))
        await redis.set(marker, "pending", ex=SENT_MARKER_TTL_S)
        started = time.monotonic()
        data: bytes | None = None
        if command.media is not None:
            read = await self._read_media(command)
            if isinstance(read, MediaError):
                self.host.metrics.inc("atende_session_send_errors_total", self.labels)
                await redis.delete(marker)
                # A fixed title: the error's own text names keys and server paths, which agents have no use for.
                title = "the file is gone" if isinstance(read, MediaNotFound) else "the file could not be read"
                return self._report(command, "FAILED", None, code=read.code, title=title)
            data = read
        for attempt in range(5):
            try:
                idempotency_key = f"atende-{command.tenant_id}-{command.message_id}"
                if command.media is not None:
                    provider_id = await driver.send_media(command.chat_id, command.media, caption=command.text,
                                                          idempotency_key=idempotency_key, data=data,
                                                          kind=command.kind)  # fmt: skip
                else:
                    provider_id = await driver.send_text(command.chat_id, command.text or "",
                                                         idempotency_key=idempotency_key,
                                                         reply_to_id=command.reply_to_id)  # fmt: skip
            except RateLimited as exc:
                await asyncio.sleep(exc.retry_after_s)
                continue
            except SendFailed as exc:
                self.host.metrics.inc("atende_session_send_errors_total", self.labels)
                await redis.delete(marker)
                return self._report(command, "FAILED", None, code=exc.code, title=str(exc))
            except DriverError as exc:
                self.host.metrics.inc("atende_session_send_errors_total", self.labels)
                if not exc.retryable or attempt == 4:
                    await redis.delete(marker)
                    return self._report(command, "FAILED", None, code=exc.code, title=str(exc))
                await asyncio.sleep(0.2 * (attempt + 1))
                continue
            await redis.set(marker, provider_id, ex=SENT_MARKER_TTL_S)
            self.host.metrics.observe("atende_session_send_latency_seconds", self.labels, time.monotonic() - started)
            self.host.metrics.inc("atende_session_messages_out_total", self.labels)
            return self._report(command, "SENT", provider_id)
        await redis.delete(marker)
        return self._report(command, "FAILED", None, code="rate_limited", title="rate limited too many times")

    def _report(self, command: OutboundMessage, status: str, provider_id: str | None, *,
                code: str | None = None, title: str | None = None) -> Envelope:  # fmt: skip
        event = MessageStatus(provider_message_id=provider_id, status=status, chat_id=command.chat_id,  # type: ignore[arg-type]
                              client_message_id=command.message_id, error_code=code, error_title=title,
                              occurred_at=utcnow())  # fmt: skip
        return self._envelope(event)

    def stop_requested(self) -> bool:
        return self.stopping

    async def stop(self) -> None:
        self.stopping = True
        if self._deferred is not None:
            self._deferred.cancel()
        if self.driver is not None:
            with contextlib.suppress(Exception):
                await self.driver.stop()


def decode_command(fields: dict[bytes, bytes]) -> OutboundMessage | FetchMedia:
    """An outbound stream entry: a send (field ``e``) or a media download (field ``f``)."""
    if FETCH_FIELD in fields:
        return decode_fetch(fields[FETCH_FIELD])
    return decode_outbound(fields[FIELD])


async def readable_command(redis: Redis, key: str, entry_id: bytes, fields: dict[bytes, bytes]
                           ) -> OutboundMessage | FetchMedia | None:  # fmt: skip
    """The entry's command, or None for an entry no host can read (written by a newer or broken writer): it is
    logged and acknowledged, so it neither stops the other commands of its read nor comes back on every
    reconnect. Its message stays QUEUED in the database, where the inbox shows it unsent."""
    try:
        return decode_command(fields)
    except (msgspec.DecodeError, msgspec.ValidationError, KeyError) as exc:
        logger.error("dropping unreadable outbound entry %s of %s: %s", entry_id, key, exc)
        await redis.xack(key, OUT_GROUP, entry_id)
        return None


def _acker(driver: Driver, event: InboundMessage | MessageStatus) -> AckFn:
    async def ack() -> None:
        await driver.ack(event)

    return ack


class SessionHostCore:
    """Everything a session host does, without Ray (the actor in ``supervisor.actors`` wraps it)."""

    def __init__(self, config: HostConfig) -> None:
        self.config = config
        self.keys = StreamKeys(config.redis_prefix, config.stream_shards)
        self.masters = MasterKeys.from_strings(config.master_key, config.previous_master_keys)
        self.metrics = MetricsSink(config.redis_prefix)
        self.runners: dict[int, SessionRunner] = {}
        self._redis: Redis | None = None
        self._appender: Appender | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._out_groups: set[str] = set()
        self._started = False
        self._owns_pool = False
        self._start_lock = asyncio.Lock()
        self._media: MediaStore | None = None
        self.fetch_gate = asyncio.Semaphore(config.media_fetch_concurrency)

    @property
    def media(self) -> MediaStore:
        if self._media is None:
            config = self.config
            self._media = store_from_settings(config.media_store, root=Path(config.media_dir),
                                              s3_endpoint=config.s3_endpoint, s3_bucket=config.s3_bucket,
                                              s3_access_key=config.s3_access_key, s3_secret_key=config.s3_secret_key,
                                              s3_region=config.s3_region)  # fmt: skip
        return self._media

    @property
    def redis(self) -> Redis:
        assert self._redis is not None, "host not started"
        return self._redis

    @property
    def appender(self) -> Appender:
        assert self._appender is not None, "host not started"
        return self._appender

    async def start(self) -> None:
        async with self._start_lock:
            if self._started:
                return
            tune_gc()
            self._owns_pool = db.DB.pool is None  # embedded in a process that has one (tests, tools): share it
            if self._owns_pool:
                await db.start(self.config.database_url, max_size=self.config.db_pool_size)
            self._redis = Redis.from_url(self.config.redis_url, socket_connect_timeout=2.0)
            self._appender = Appender(self._redis, self.keys, self.metrics)
            self._tasks = [asyncio.create_task(self._appender.run()), asyncio.create_task(self._outbound_loop()),
                           asyncio.create_task(self._flush_metrics())]  # fmt: skip
            self._started = True

    async def ensure(self, specs: list[SessionSpec]) -> dict[str, int]:
        """Run exactly ``specs`` (idempotent): start the missing sessions, stop the ones no longer placed here."""
        await self.start()
        wanted = {spec.registry_id: spec for spec in specs}
        started = stopped = 0
        for registry_id in list(self.runners):
            runner = self.runners[registry_id]
            if registry_id not in wanted:
                await runner.stop()
                self.runners.pop(registry_id)
                stopped += 1
            elif runner.task is not None and runner.task.done():
                self.runners.pop(registry_id)  # finished (parked); started again below only if still wanted
        for registry_id, spec in wanted.items():
            if registry_id not in self.runners:
                runner = SessionRunner(self, spec)
                runner.task = asyncio.create_task(runner.run(), name=f"session-{registry_id}")
                self.runners[registry_id] = runner
                started += 1
        return {"running": len(self.runners), "started": started, "stopped": stopped}

    def status(self) -> list[dict[str, Any]]:
        return [{"registry_id": r.spec.registry_id, "tenant_id": r.spec.tenant_id,
                 "connection_id": r.spec.connection_id, "state": r.state.value, "restarts": r.restarts}
                for r in self.runners.values()]  # fmt: skip

    async def ensure_out_group(self, key: str) -> None:
        if key in self._out_groups:
            return
        try:
            await self.redis.xgroup_create(key, OUT_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._out_groups.add(key)

    async def _outbound_loop(self) -> None:
        while True:
            try:
                by_key = {r.out_key: r for r in self.runners.values() if r.connected.is_set()}
                if not by_key:
                    await asyncio.sleep(0.2)
                    continue
                for key in by_key:
                    await self.ensure_out_group(key)
                response: Any = await self.redis.xreadgroup(OUT_GROUP, self.config.name, dict.fromkeys(by_key, ">"),
                                                            count=100, block=500)  # fmt: skip
                for key, items in response or []:
                    name = key.decode() if isinstance(key, bytes) else key
                    runner = by_key.get(name)
                    for entry_id, fields in items:
                        command = await readable_command(self.redis, name, entry_id, fields) if fields else None
                        if runner is not None and command is not None:
                            await runner.send_queue.put((name, entry_id, command))
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("outbound loop step failed")
                await asyncio.sleep(1.0)

    async def _flush_metrics(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                await self.metrics.flush(self.redis)
            except Exception:
                logger.warning("metrics flush failed", exc_info=True)

    async def shutdown(self) -> None:
        for runner in self.runners.values():
            await runner.stop()
        tasks = [r.task for r in self.runners.values() if r.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        for task in [*tasks, *self._tasks]:
            task.cancel()
        for task in [*tasks, *self._tasks]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await self.metrics.flush(self.redis)
        if self._redis is not None:
            await self._redis.aclose()
        if self._media is not None:
            await self._media.aclose()
            self._media = None
        if self._owns_pool:
            await db.stop()
        self._started = False
