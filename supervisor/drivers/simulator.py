"""The driver for ``atende simulator``: one WebSocket per business number, the protocol in docs/simulator.md.

Lifecycle as the session host sees it (:meth:`SimulatorDriver.events`):

1. ``SessionStatus(STARTING)`` as soon as :meth:`~SimulatorDriver.start` is called.
2. Pairing (no stored credentials): ``AWAITING_QR`` (``qr``, ``qr_expires_at``) once per rotated code, or
   ``AWAITING_PAIR_CODE`` (``pair_code``) with ``options={"pairing": "code"}``. When the phone pairs:
   ``SessionStatus(CONNECTED, code="paired", credentials=...)``, then the stream ends with
   ``reason="restart_required"`` (the same ``credentials`` again): store them and start a new driver with them.
3. Resume (stored credentials): ``SessionStatus(CONNECTED)``, then ``InboundMessage`` / ``MessageStatus`` events,
   the offline backlog first.
4. The stream always ends with exactly one final ``SessionStatus`` whose ``reason`` is a
   ``supervisor.policy.DisconnectReason`` value and ``retryable`` says whether a restart makes sense. Connection
   failures are reported there (``network``), never raised by :meth:`~SimulatorDriver.start`; an unexpected
   exception inside the driver ends the stream with ``crashed``.

Every ``InboundMessage`` and ``MessageStatus`` must be passed to :meth:`~SimulatorDriver.ack` once stored, or the
simulator redelivers it on the next connection and, after ``window`` unacked events, stops sending more.
The driver never reconnects by itself and runs no threads: one reader task per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from supervisor.drivers.base import DriverConfig, DriverError, RateLimited, SendFailed
from supervisor.policy import DisconnectReason, reason_from
from supervisor.simulator.network import (
    Ack,
    Connected,
    Disconnect,
    Error,
    Events,
    Hello,
    InMsg,
    InReceipt,
    Logout,
    MediaItem,
    OutMedia,
    PairCode,
    Paired,
    Qr,
    Read,
    Send,
    SendOk,
    ServerFrame,
)
from supervisor.wire import (
    DriverEvent,
    InboundMessage,
    MediaRef,
    MessageKind,
    MessageStatus,
    SessionState,
    SessionStatus,
    bounded_raw,
    normalize_chat_id,
    utcnow,
)

__all__ = ["SimulatorDriver", "media_kind"]

log = logging.getLogger("atende.drivers.simulator")

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(ServerFrame)

# What each way of ending means for the host: the session state to show and whether restarting makes sense.
_OUTCOMES: dict[DisconnectReason, tuple[SessionState, bool]] = {
    DisconnectReason.NETWORK: (SessionState.RECONNECTING, True),
    DisconnectReason.SERVER_ERROR: (SessionState.RECONNECTING, True),
    DisconnectReason.RESTART_REQUIRED: (SessionState.RECONNECTING, True),
    DisconnectReason.CRASHED: (SessionState.RECONNECTING, True),
    DisconnectReason.TEMP_BANNED: (SessionState.QUARANTINED, True),
    DisconnectReason.LOGGED_OUT: (SessionState.LOGGED_OUT, False),
    DisconnectReason.BANNED: (SessionState.QUARANTINED, False),
    DisconnectReason.OUTDATED: (SessionState.QUARANTINED, False),
    DisconnectReason.REPLACED: (SessionState.QUARANTINED, False),
    DisconnectReason.STOPPED: (SessionState.STOPPED, False),
}
_PERMANENT_SEND_ERRORS = frozenset({"invalid_input", "invalid_recipient", "unknown_chat"})
_HTTP_TIMEOUT_S = 30.0  # media uploads and downloads


@functools.lru_cache(maxsize=65_536)
def _chat_id(raw: str) -> str:
    """``normalize_chat_id`` with a cache: the same few thousand chats come back all the time."""
    return normalize_chat_id(raw)


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def media_kind(mime: str) -> MessageKind:
    """The WhatsApp message kind for a MIME type (voice notes are ``audio/ogg``, stickers ``image/webp``)."""
    if mime == "image/webp":
        return "sticker"
    if mime.startswith("audio/ogg"):
        return "voice"
    major = mime.partition("/")[0]
    if major == "image":
        return "image"
    if major == "video":
        return "video"
    if major == "audio":
        return "audio"
    return "document"


class SimulatorDriver:
    """A :class:`~supervisor.drivers.base.Driver` for one business number on the simulator.

    ``config.endpoint`` is the simulator's base URL (``http://127.0.0.1:8010``). Options (all strings):
    ``pairing`` (``qr`` or ``code``), ``connect_timeout_s`` (10), ``send_timeout_s`` (30), ``keep_raw`` (``1`` keeps
    the simulator's event in ``raw``).
    """

    provider: ClassVar[str] = "simulator"

    def __init__(self, config: DriverConfig) -> None:
        if not config.endpoint or not config.endpoint.startswith(("http://", "https://")):
            raise DriverError("the simulator driver needs config.endpoint = http://host:port", code="invalid_config")
        self.config = config
        self._base = config.endpoint.rstrip("/")
        self._ws_url = "ws" + self._base.removeprefix("http") + "/ws"
        options = config.options
        self._pair_with_code = options.get("pairing", "qr") == "code"
        try:
            self._connect_timeout = float(options.get("connect_timeout_s", "10"))
            self._send_timeout = float(options.get("send_timeout_s", "30"))
        except ValueError as exc:
            raise DriverError(f"bad simulator driver option: {exc}", code="invalid_config") from None
        self._keep_raw = options.get("keep_raw", "") in ("1", "true", "yes")
        self._state = SessionState.STOPPED
        self._queue: asyncio.Queue[list[DriverEvent] | None] = asyncio.Queue()
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[str]] = {}
        self._refs = itertools.count(1)
        self._acks: list[str] = []
        self._ack_task: asyncio.Task[None] | None = None
        self._goodbye: Disconnect | None = None
        self._refusal: Error | None = None
        self._issued: bytes | None = None  # credentials the simulator issued on this connection
        self._started = False
        # Uploads by idempotency key, so a send retried after a rate limit or a dropped socket does not upload
        # the same file again; bounded (a send that never succeeds must not keep its file's id forever).
        self._uploads: OrderedDict[str, tuple[str, int | None]] = OrderedDict()
        self._finished = False

    # -- lifecycle --------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and say hello. Failures end the event stream (reason ``network``) instead of raising."""
        if self._started:
            raise DriverError("the driver was already started", code="already_started")
        self._started = True
        self._state = SessionState.STARTING
        self._emit(self._status(SessionState.STARTING))
        try:
            self._ws = await connect(
                self._ws_url,
                proxy=None,  # the simulator is local: never go through an environment proxy
                compression=None,
                open_timeout=self._connect_timeout,
                close_timeout=2,
                max_size=16 * 1024 * 1024,
                user_agent_header=None,
            )
            if self._finished:  # stopped while connecting
                await self._ws.close()
                return
            hello = Hello(number=self.config.business_number, credentials=self.config.credentials,
                          pair_code=self._pair_with_code)  # fmt: skip
            await self._ws.send(_encoder.encode(hello))
        except InvalidStatus as exc:
            await self._finish(DisconnectReason.NETWORK, code=f"http_{exc.response.status_code}")
            return
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI, ConnectionClosed) as exc:
            await self._finish(DisconnectReason.NETWORK, code=type(exc).__name__)
            return
        except Exception:
            log.exception("simulator driver for %s failed to start", self.config.business_number)
            await self._finish(DisconnectReason.CRASHED, code="start_failed")
            return
        self._reader = asyncio.create_task(self._read_loop(self._ws), name=f"simulator:{self.config.business_number}")

    async def stop(self) -> None:
        """Disconnect keeping the credentials; the stream ends with ``stopped``. Pending acks are sent first."""
        if self._finished:
            return
        await self._flush_acks()
        await self._finish(DisconnectReason.STOPPED)

    async def logout(self) -> None:
        """Unpair: the simulator invalidates the credentials and the stream ends with ``logged_out``."""
        if self._finished:
            return
        ws, reader = self._ws, self._reader
        if ws is not None and reader is not None:
            with contextlib.suppress(ConnectionClosed):
                await ws.send(_encoder.encode(Logout()))
                with contextlib.suppress(TimeoutError):  # the simulator answers with a logged_out goodbye
                    await asyncio.wait_for(asyncio.shield(reader), timeout=5)
        await self._finish(DisconnectReason.LOGGED_OUT, code="401")

    def status(self) -> SessionState:
        return self._state

    def events(self) -> AsyncIterator[DriverEvent]:
        """The driver's events; iterate it from one task only. Ends after the final ``SessionStatus``."""
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[DriverEvent]:
        while True:
            batch = await self._queue.get()
            if batch is None:
                return
            for event in batch:
                yield event

    # -- delivery -------------------------------------------------------------------------------------------

    async def ack(self, event: DriverEvent) -> None:
        """Mark an inbound message or status as stored. Acks are batched into one frame per loop iteration."""
        if isinstance(event, InboundMessage):
            key = event.provider_message_id
        elif isinstance(event, MessageStatus) and event.provider_message_id is not None:
            participant = "/" + event.participant.partition("@")[0] if event.participant else ""
            key = f"{event.provider_message_id}/{event.status}{participant}"
        else:
            return  # session statuses need no ack
        self._acks.append(key)
        if self._ack_task is None:
            self._ack_task = asyncio.create_task(self._ack_soon())

    async def _ack_soon(self) -> None:
        await asyncio.sleep(0)  # let the rest of a burst of ack() calls join this frame
        self._ack_task = None
        await self._flush_acks()

    async def _flush_acks(self) -> None:
        if not self._acks:
            return
        ids, self._acks = self._acks, []
        ws = self._ws
        if ws is None or self._finished:
            return  # not stored on the simulator: it redelivers them, which is fine (storage is idempotent)
        with contextlib.suppress(ConnectionClosed):
            await ws.send(_encoder.encode(Ack(ids=ids)))

    async def send_text(self, chat_id: str, text: str, *, idempotency_key: str, reply_to_id: str | None = None) -> str:
        return await self._send(chat_id, "text", text=text, reply_to=reply_to_id, idempotency_key=idempotency_key)

    async def send_media(self, chat_id: str, media: MediaRef, *, caption: str | None, idempotency_key: str,
                         data: bytes | None = None, kind: MessageKind | None = None) -> str:  # fmt: skip
        """Send a media item; with ``data`` it is uploaded first (``POST /media``) and sent by its id.

        An upload failure raises ``DriverError(code="media_upload_failed")``, retryable for network errors and 5xx.
        A retry with the same ``idempotency_key`` reuses the upload; it still sends nothing twice.
        """
        ref, size = media.ref, media.size
        if data is not None:
            if idempotency_key in self._uploads:
                ref, size = self._uploads[idempotency_key]
            else:
                self._connected_socket()  # no upload for a send that cannot happen
                item = await self._upload(data, media.mime, media.filename)
                ref, size = item.id, item.size
                self._uploads[idempotency_key] = (ref, size)
                while len(self._uploads) > 256:
                    self._uploads.popitem(last=False)
        out = OutMedia(mime=media.mime, ref=ref, filename=media.filename, size=size)
        provider_id = await self._send(chat_id, kind or media_kind(media.mime), text=caption, media=out,
                                       idempotency_key=idempotency_key)  # fmt: skip
        self._uploads.pop(idempotency_key, None)
        return provider_id

    async def _upload(self, data: bytes, mime: str, filename: str | None) -> MediaItem:
        headers = {"content-type": mime}
        if filename:
            headers["x-filename"] = quote(filename, safe="")
        async with _http_client() as client:
            try:
                response = await client.post(f"{self._base}/media", content=data, headers=headers)
            except httpx.HTTPError as exc:
                raise DriverError(f"media upload failed: {exc}", code="media_upload_failed", retryable=True) from exc
        if not 200 <= response.status_code < 300:
            raise DriverError(f"media upload refused: HTTP {response.status_code} [{_answer_code(response)}]",
                              code="media_upload_failed", retryable=response.status_code >= 500)  # fmt: skip
        try:
            return msgspec.json.decode(response.content, type=MediaItem)
        except msgspec.DecodeError as exc:  # the simulator's fault, not the caller's
            raise DriverError(f"media upload answer unreadable: {exc}", code="media_upload_failed",
                              retryable=True) from exc  # fmt: skip

    async def _send(self, to: str, kind: MessageKind, *, text: str | None, idempotency_key: str,
                    media: OutMedia | None = None, reply_to: str | None = None) -> str:  # fmt: skip
        ws = self._connected_socket()
        ref = next(self._refs)
        frame = Send(ref=ref, to=to, kind=kind, text=text, media=media, reply_to=reply_to,
                     idempotency_key=idempotency_key)  # fmt: skip
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._pending[ref] = future
        try:
            await ws.send(_encoder.encode(frame))
            return await asyncio.wait_for(future, timeout=self._send_timeout)
        except ConnectionClosed as exc:
            raise DriverError("the connection closed during the send", code="disconnected", retryable=True) from exc
        except TimeoutError as exc:
            raise DriverError("the simulator did not answer the send", code="timeout", retryable=True) from exc
        finally:
            self._pending.pop(ref, None)

    async def mark_read(self, chat_id: str, provider_message_ids: list[str]) -> None:
        ws = self._connected_socket()
        with contextlib.suppress(ConnectionClosed):  # read receipts are best effort
            await ws.send(_encoder.encode(Read(chat=chat_id, ids=provider_message_ids)))

    async def download_media(self, media: MediaRef) -> bytes:
        """Fetch a media item from the simulator; an injected failure raises ``DriverError(code=...)``."""
        ref = media.ref
        if "://" not in ref:
            url = f"{self._base}/media/{ref}"
        elif ref.startswith(self._base + "/"):
            url = ref
        else:
            raise DriverError(f"media {ref!r} is not on this simulator", code="invalid_media_ref")
        async with _http_client() as client:
            try:
                response = await client.get(url)
            except httpx.HTTPError as exc:
                raise DriverError(f"media download failed: {exc}", code="network", retryable=True) from exc
        if response.status_code != 200:
            raise DriverError(f"media download failed: HTTP {response.status_code}", code=_answer_code(response),
                              retryable=response.status_code >= 500)  # fmt: skip
        return response.content

    def _connected_socket(self) -> ClientConnection:
        if self._state is not SessionState.CONNECTED or self._ws is None or self._finished:
            raise DriverError(f"not connected ({self._state})", code="not_connected", retryable=True)
        return self._ws

    # -- reading --------------------------------------------------------------------------------------------------

    async def _read_loop(self, ws: ClientConnection) -> None:
        reason, code = DisconnectReason.NETWORK, None
        try:
            async for data in ws:
                self._handle(_decoder.decode(data))
        except ConnectionClosed:
            pass
        except Exception as exc:
            log.exception("simulator driver for %s crashed", self.config.business_number)
            reason, code = DisconnectReason.CRASHED, type(exc).__name__
        if ws.close_code is not None and code is None:
            code = str(ws.close_code)
        goodbye = self._goodbye
        if goodbye is not None and reason is not DisconnectReason.CRASHED:
            reason, code = reason_from(goodbye.reason), goodbye.code
        elif goodbye is None and self._refusal is not None:
            reason, code = DisconnectReason.CRASHED, self._refusal.code
        await self._finish(reason, code=code, until=goodbye.until if goodbye else None)

    def _handle(self, frame: ServerFrame) -> None:
        if isinstance(frame, Events):
            self._emit([self._convert(event) for event in frame.events])
        elif isinstance(frame, SendOk):
            future = self._pending.get(frame.ref)
            if future is not None and not future.done():
                future.set_result(frame.id)
        elif isinstance(frame, Error):
            future = self._pending.get(frame.ref) if frame.ref is not None else None
            if future is not None and not future.done():
                future.set_exception(_send_error(frame))
            elif future is None:
                if self._state is not SessionState.CONNECTED:
                    self._refusal = frame  # the hello was refused: a configuration problem, not the network
                log.warning("simulator refused a frame from %s: %s %s", self.config.business_number, frame.code,
                            frame.message)  # fmt: skip
        elif isinstance(frame, Qr):
            self._state = SessionState.AWAITING_QR
            self._emit(self._status(SessionState.AWAITING_QR, qr=frame.code, qr_expires_at=_at(frame.expires_at)))
        elif isinstance(frame, PairCode):
            self._state = SessionState.AWAITING_PAIR_CODE
            self._emit(self._status(SessionState.AWAITING_PAIR_CODE, pair_code=frame.code))
        elif isinstance(frame, Paired):
            self._issued = frame.credentials
            self._emit(self._status(SessionState.CONNECTED, code="paired", credentials=frame.credentials))
        elif isinstance(frame, Connected):
            self._state = SessionState.CONNECTED
            self._emit(self._status(SessionState.CONNECTED))
        else:
            self._goodbye = frame

    def _convert(self, event: InMsg | InReceipt) -> DriverEvent:
        raw = bounded_raw(msgspec.to_builtins(event)) if self._keep_raw else None
        if isinstance(event, InReceipt):
            return MessageStatus(provider_message_id=event.msg_id, status=event.status, chat_id=_chat_id(event.chat),
                                 participant=_chat_id(event.participant) if event.participant else None,
                                 occurred_at=_at(event.ts), raw=raw)  # fmt: skip
        chat = event.chat
        media = event.media
        return InboundMessage(
            provider_message_id=event.id,
            chat_id=_chat_id(chat),
            chat_id_raw=chat,
            chat_type="group" if chat.endswith("@g.us") else "broadcast" if chat.endswith("@broadcast") else "direct",
            sender_id=_chat_id(event.sender),
            sender_alt_id=_chat_id(event.sender_pn) if event.sender_pn is not None else event.sender_lid,
            sender_name=event.name,
            from_me=event.from_me,
            kind=event.kind,
            text=event.text,
            media=None if media is None else self._media_ref(media),
            reply_to_id=event.reply_to,
            occurred_at=_at(event.ts),
            raw=raw,
        )

    def _media_ref(self, media: MediaItem) -> MediaRef:
        return MediaRef(mime=media.mime, size=media.size, filename=media.filename, ref=self._base + media.url,
                        sha256=media.sha256)  # fmt: skip

    # -- ending -------------------------------------------------------------------------------------------------

    def _status(self, state: SessionState, **fields: Any) -> list[DriverEvent]:
        return [SessionStatus(state=state, occurred_at=utcnow(), **fields)]

    def _emit(self, events: list[DriverEvent]) -> None:
        if not self._finished:
            self._queue.put_nowait(events)

    async def _finish(self, reason: DisconnectReason, *, code: str | None = None, until: int | None = None) -> None:
        """End the stream exactly once with a final status, then release the socket and the reader."""
        if self._finished:
            return
        state, retryable = _OUTCOMES[reason]
        self._emit(self._status(state, reason=reason.value, code=code, retryable=retryable,
                                until=_at(until) if until is not None else None,
                                credentials=self._issued if reason is DisconnectReason.RESTART_REQUIRED else None))  # fmt: skip
        self._finished = True
        self._state = state
        self._queue.put_nowait(None)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(DriverError("the connection ended", code="disconnected", retryable=True))
        ws, reader, acks = self._ws, self._reader, self._ack_task
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()
        current = asyncio.current_task()
        for task in (reader, acks):
            if task is not None and task is not current and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


def _http_client() -> httpx.AsyncClient:
    # A client per media call: they are rare, and 1,000 idle drivers must not each hold a pool.
    # trust_env=False: the simulator is local, never reach it through an environment proxy.
    return httpx.AsyncClient(timeout=_HTTP_TIMEOUT_S, trust_env=False)


def _answer_code(response: httpx.Response) -> str:
    """The simulator's stable error code in an error answer, ``http_<status>`` when there is none."""
    try:
        return str(response.json()["code"])
    except (ValueError, KeyError, TypeError):
        return f"http_{response.status_code}"


def _send_error(error: Error) -> DriverError:
    if error.code in ("rate_limited", "pair_rate_limited"):
        return RateLimited(error.message, retry_after_s=error.retry_after or 1.0, code=error.code)
    if error.code in _PERMANENT_SEND_ERRORS:
        return SendFailed(error.message, code=error.code)
    return DriverError(error.message, code=error.code, retryable=error.code == "not_connected")
