"""The simulator's I/O: one WebSocket endpoint for business numbers and a JSON control API, on one port.

Litestar served by uvicorn. Everything the network *does* lives in :class:`~supervisor.simulator.network.Network`;
this module only moves frames: per WebSocket a reader task (client frames -> ``Network.receive``) and a writer
task (``Network.drain`` -> socket, woken by the connection's ``notify``), plus one ticker task that fires the
network's timers (QR rotation, receipts, bulk generation). :class:`SimulatorServer` runs inside the caller's event
loop on a port of its choice (0 = any free port), so tests and ``atende dev`` can embed it.

Routes (see docs/simulator.md): ``/ws``, ``/media`` (business uploads), ``/media/{id}``, ``/healthz`` and
``/control/...``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any
from urllib.parse import quote, unquote

import msgspec
import uvicorn
from litestar import Litestar, Request, Response, get, patch, post, websocket
from litestar.connection import WebSocket
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException, ValidationException, WebSocketDisconnect
from litestar.params import FromPath, FromQuery, JSONBody

from supervisor.simulator.network import (
    MEDIA_MAX_BYTES,
    BulkJob,
    BulkRequest,
    ClientFrame,
    Connection,
    Error,
    FaultRequest,
    GroupRequest,
    GroupView,
    Hello,
    InboxPage,
    MediaFailRequest,
    MediaItem,
    Network,
    NumberState,
    PairRequest,
    PhoneMessage,
    SentIds,
    SimConfig,
    SimError,
)

__all__ = ["SimulatorServer", "create_app"]

log = logging.getLogger("atende.simulator")

_encoder = msgspec.json.Encoder()
_client_decoder = msgspec.json.Decoder(ClientFrame)
_MIN_TICK_S = 0.002  # the ticker never spins faster than this when the next timer is in the future
_IDLE_TICK_S = 1.0
# A phone message carries its media as base64 inside JSON: room for a 64 MiB item plus the rest of the document.
_PHONE_MESSAGE_MAX_BYTES = MEDIA_MAX_BYTES * 4 // 3 + 1024 * 1024


# -- control API handlers (thin: decode, one Network call, return a schema) --------------------------------------


@get("/healthz", sync_to_thread=False)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/control/config", sync_to_thread=False)
def read_config(sim: NamedDependency[Network]) -> SimConfig:
    return sim.config


@patch("/control/config", sync_to_thread=False)
def change_config(sim: NamedDependency[Network], data: JSONBody[dict[str, Any]]) -> SimConfig:
    return sim.configure(data)


@get("/control/numbers", sync_to_thread=False)
def list_numbers(sim: NamedDependency[Network]) -> list[NumberState]:
    return sim.numbers()


@get("/control/numbers/{number:str}", sync_to_thread=False)
def read_number(sim: NamedDependency[Network], number: FromPath[str]) -> NumberState:
    return sim.number_state(number)


@post("/control/numbers/{number:str}/pair", status_code=200, sync_to_thread=False)
def pair_number(sim: NamedDependency[Network], number: FromPath[str], data: JSONBody[PairRequest]) -> NumberState:
    return sim.pair(number, data)


@post("/control/numbers/{number:str}/fault", status_code=200, sync_to_thread=False)
def inject_fault(sim: NamedDependency[Network], number: FromPath[str], data: JSONBody[FaultRequest]) -> NumberState:
    return sim.fault(number, data)


@post("/control/phones/{phone:str}/messages", status_code=201, sync_to_thread=False,
      request_max_body_size=_PHONE_MESSAGE_MAX_BYTES)  # fmt: skip
def phone_sends(sim: NamedDependency[Network], phone: FromPath[str], data: JSONBody[PhoneMessage]) -> SentIds:
    return sim.phone_send(phone, data)


@get("/control/phones/{phone:str}/inbox", sync_to_thread=False)
def phone_inbox(
    sim: NamedDependency[Network], phone: FromPath[str], after: FromQuery[int] = 0, limit: FromQuery[int] = 1000
) -> InboxPage:
    return sim.inbox(phone, after=after, limit=limit)


@post("/control/groups", status_code=201, sync_to_thread=False)
def create_group(sim: NamedDependency[Network], data: JSONBody[GroupRequest]) -> GroupView:
    return sim.create_group(data)


@post("/control/bulk", status_code=201, sync_to_thread=False)
def start_bulk(sim: NamedDependency[Network], data: JSONBody[BulkRequest]) -> BulkJob:
    return sim.bulk(data)


@get("/control/bulk/{job_id:str}", sync_to_thread=False)
def read_bulk(sim: NamedDependency[Network], job_id: FromPath[str]) -> BulkJob:
    return sim.bulk_job(job_id)


@post("/control/media/{media_id:str}/fail", status_code=200, sync_to_thread=False)
def fail_media(sim: NamedDependency[Network], media_id: FromPath[str], data: JSONBody[MediaFailRequest]) -> MediaItem:
    return sim.fail_media(media_id, data)


@post("/control/reset", status_code=200, sync_to_thread=False)
def reset(sim: NamedDependency[Network]) -> dict[str, str]:
    sim.reset()
    return {"status": "reset"}


@post("/media", status_code=201, request_max_body_size=MEDIA_MAX_BYTES)
async def upload_media(sim: NamedDependency[Network], request: Request[Any, Any, Any]) -> MediaItem:
    """The raw body is the item; ``Content-Type`` its mime, ``X-Filename`` (percent-encoded) its file name."""
    filename = request.headers.get("x-filename")
    mime = request.headers.get("content-type") or "application/octet-stream"
    return sim.upload_media(await request.body(), mime, unquote(filename) if filename else None)


@get("/media/{media_id:str}", sync_to_thread=False)
def download_media(sim: NamedDependency[Network], media_id: FromPath[str]) -> Response[bytes]:
    item, data = sim.media(media_id)
    headers = {"content-disposition": _attachment(item.filename)} if item.filename else {}
    return Response(content=data, media_type=item.mime, headers=headers)


def _attachment(filename: str) -> str:
    """A Content-Disposition any file name survives (RFC 6266): an ASCII fallback plus the UTF-8 name."""
    fallback = "".join(ch if " " <= ch <= "~" and ch not in '"\\' else "_" for ch in filename)
    if fallback == filename:
        return f'attachment; filename="{filename}"'
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


@websocket("/ws")
async def business_socket(socket: WebSocket[Any, Any, Any], hub: NamedDependency[SimulatorServer]) -> None:
    await hub.serve_socket(socket)


# -- errors: one mapper, one shape {"code", "message"} -----------------------------------------------------------


def _error(code: str, message: str, status: int, **extra: Any) -> Response[dict[str, Any]]:
    return Response(content={"code": code, "message": message, **extra}, status_code=status)


def _sim_error(request: Request[Any, Any, Any], exc: SimError) -> Response[dict[str, Any]]:
    extra = {"retry_after": exc.retry_after} if exc.retry_after is not None else {}
    return _error(exc.code, exc.message, exc.status, **extra)


def _validation_error(request: Request[Any, Any, Any], exc: ValidationException) -> Response[dict[str, Any]]:
    return _error("invalid_input", exc.detail, 400, errors=exc.extra or [])


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    return _error(_HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}"), exc.detail, exc.status_code)


def _internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.exception("simulator control request failed", exc_info=exc)
    return _error("internal_error", "internal error", 500)


_ROUTES = [healthz, read_config, change_config, list_numbers, read_number, pair_number, inject_fault, phone_sends,
           phone_inbox, create_group, start_bulk, read_bulk, fail_media, reset, upload_media, download_media,
           business_socket]  # fmt: skip
_EXCEPTION_HANDLERS: Any = {SimError: _sim_error, ValidationException: _validation_error, HTTPException: _http_error,
                            500: _internal_error}  # fmt: skip


def create_app(hub: NamedDependency[SimulatorServer]) -> Litestar:
    """The ASGI app of one simulator; ``hub`` provides the network and serves WebSockets."""

    def provide_network() -> Network:
        return hub.network

    def provide_hub() -> SimulatorServer:
        return hub

    return Litestar(
        route_handlers=_ROUTES,
        dependencies={
            "sim": Provide(provide_network, sync_to_thread=False),
            "hub": Provide(provide_hub, sync_to_thread=False),
        },
        exception_handlers=_EXCEPTION_HANDLERS,
        openapi_config=None,
        logging_config=None,  # never touch the host process's logging
        debug=False,
    )


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn without its signal handlers: the embedding program (test, CLI, atende dev) owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Any:
        yield


class SimulatorServer:
    """A simulator on one port: ``url = await server.start()``, then ``await server.stop()``.

    Also an async context manager. ``network`` is the live model (tests may inspect it directly).
    """

    def __init__(
        self,
        network: Network | None = None,
        *,
        config: SimConfig | None = None,
        auto_pair: bool | None = None,
        hello_timeout_s: float = 10.0,
    ) -> None:
        self.network = network if network is not None else Network(config, auto_pair=auto_pair)
        self.hello_timeout_s = hello_timeout_s
        self._uvicorn: _EmbeddedUvicorn | None = None
        self._serving: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._tick_wake = asyncio.Event()
        self._socket: socket.socket | None = None
        self._open_sockets = 0
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the simulator is not started")
        return self._url

    async def __aenter__(self) -> SimulatorServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on ``host:port`` (0: a free port) and return the base URL ``http://host:port``."""
        if self._serving is not None:
            raise RuntimeError("the simulator is already started")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        app = create_app(self)
        sock = socket.create_server((host, port), family=family, backlog=4096)
        self._socket = sock
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            log_level=None,  # leave the process-wide uvicorn loggers alone (atende dev embeds this)
            lifespan="off",
            ws="websockets-sansio",
            ws_per_message_deflate=False,  # CPU matters more than bytes on a local network
            server_header=False,
            date_header=False,
            timeout_graceful_shutdown=2,
            backlog=4096,
        )
        self._uvicorn = _EmbeddedUvicorn(config)
        self._serving = asyncio.create_task(self._uvicorn.serve(sockets=[sock]), name="simulator-uvicorn")
        for _ in range(1000):  # bounded: ~10 s
            if self._uvicorn.started or self._serving.done():
                break
            await asyncio.sleep(0.01)
        if not self._uvicorn.started:
            await self.stop()
            raise RuntimeError("the simulator did not start")
        bound_port = sock.getsockname()[1]
        self._url = f"http://[{host}]:{bound_port}" if family == socket.AF_INET6 else f"http://{host}:{bound_port}"
        self.network.on_schedule = self._tick_wake.set
        self._ticker = asyncio.create_task(self._tick_loop(), name="simulator-ticker")
        return self._url

    async def stop(self) -> None:
        """Say goodbye to every connection (reason ``server_error``), then stop serving. Idempotent."""
        self.network.close_all()
        for _ in range(200):  # bounded: ~2 s for writers to flush their goodbyes
            if self._open_sockets == 0:
                break
            await asyncio.sleep(0.01)
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        if self._serving is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._serving, timeout=10)
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self._socket is not None:
            self._socket.close()
        self._serving = self._ticker = self._uvicorn = self._socket = None
        self._url = None

    async def _tick_loop(self) -> None:
        """Fire due timers forever; never dies (a failing step is logged and the loop goes on)."""
        network, wake = self.network, self._tick_wake
        while True:
            try:
                network.tick()
                due = network.next_due()
            except Exception:
                log.exception("simulator tick failed")
                due = None
            wake.clear()
            delay = _IDLE_TICK_S if due is None else min(_IDLE_TICK_S, due - network.now())
            if delay <= 0:
                await asyncio.sleep(0)
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(delay, _MIN_TICK_S)):
                    await wake.wait()

    # -- one business connection -----------------------------------------------------------------------------

    async def serve_socket(self, ws: WebSocket[Any, Any, Any]) -> None:
        """Hello, then a reader and a writer until either side ends; the backlog survives in the network."""
        self._open_sockets += 1
        try:
            await ws.accept()
            try:
                async with asyncio.timeout(self.hello_timeout_s):
                    hello = _client_decoder.decode(await self._receive(ws))
            except (TimeoutError, msgspec.ValidationError, msgspec.DecodeError) as exc:
                await self._refuse(
                    ws,
                    "invalid_input",
                    f"expected a hello frame: {exc if not isinstance(exc, TimeoutError) else 'timed out'}",
                )
                return
            if not isinstance(hello, Hello):
                await self._refuse(ws, "invalid_input", "the first frame must be a hello")
                return
            try:
                conn = self.network.connect(hello)
            except SimError as exc:
                await self._refuse(ws, exc.code, exc.message)
                return
            await self._run_connection(ws, conn)
        except WebSocketDisconnect:
            pass
        finally:
            self._open_sockets -= 1

    async def _run_connection(self, ws: WebSocket[Any, Any, Any], conn: Connection) -> None:
        wake = asyncio.Event()
        conn.notify = wake.set
        wake.set()
        reader = asyncio.create_task(self._read(ws, conn))
        writer = asyncio.create_task(self._write(ws, conn, wake))
        try:
            await asyncio.wait((reader, writer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.network.drop(conn)
            for task in (reader, writer):
                task.cancel()
            for task in (reader, writer):
                try:
                    await task
                except (asyncio.CancelledError, WebSocketDisconnect, OSError):
                    pass  # the client went away: normal
                except Exception:
                    log.exception("simulator connection %s failed", conn.id)

    async def _read(self, ws: WebSocket[Any, Any, Any], conn: Connection) -> None:
        network = self.network
        while True:
            data = await self._receive(ws)
            try:
                frame = _client_decoder.decode(data)
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                await self._send(ws, Error(code="invalid_input", message=f"bad frame: {exc}"))
                continue
            network.receive(conn, frame)

    async def _write(self, ws: WebSocket[Any, Any, Any], conn: Connection, wake: asyncio.Event) -> None:
        network = self.network
        while True:
            await wake.wait()
            wake.clear()
            drained = network.drain(conn)
            for frame in drained.frames:
                await self._send(ws, frame)
            if drained.close:
                # 1011 without a goodbye frame is how a "network loss" looks to the client
                await ws.close(code=1011 if drained.abort else 1000)
                return

    @staticmethod
    async def _receive(ws: WebSocket[Any, Any, Any]) -> str | bytes:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(detail="client went away", code=message.get("code", 1000))
        data = message.get("bytes") or message.get("text")
        return data if isinstance(data, str | bytes) else b""

    @staticmethod
    async def _send(ws: WebSocket[Any, Any, Any], frame: msgspec.Struct) -> None:
        await ws.send_data(_encoder.encode(frame), mode="binary")

    async def _refuse(self, ws: WebSocket[Any, Any, Any], code: str, message: str) -> None:
        with contextlib.suppress(WebSocketDisconnect, OSError):
            await self._send(ws, Error(code=code, message=message))
            await ws.close(code=1008)
