"""The ``atende simulator`` and ``atende sim ...`` verbs.

``saas.cli`` mounts them with :func:`add_simulator_verbs` and calls ``args.simulator_handler(args, simulator_url)``
with the URL from its settings (``ATENDE_SIMULATOR_URL``). ``python -m supervisor.simulator.cli --url URL ...``
runs the same verbs without the rest of the product. Output is one JSON object per line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import mimetypes
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args
from urllib.parse import urlsplit

import msgspec

from supervisor.simulator.client import SimulatorClient, SimulatorError
from supervisor.simulator.network import FAULT_KINDS, Addressing, InboxMessage, MediaSpec
from supervisor.wire import MEDIA_KINDS, MessageKind

__all__ = ["DEFAULT_URL", "add_simulator_verbs", "main"]

DEFAULT_URL = "http://127.0.0.1:8010"
Handler = Callable[[argparse.Namespace, str], int]

_ENV_NOTE = "The simulator URL comes from ATENDE_SIMULATOR_URL (default http://127.0.0.1:8010)."
_KIND_BY_MIME_TYPE: dict[str, MessageKind] = {"image": "image", "video": "video", "audio": "audio"}


def _print(value: Any) -> None:
    print(msgspec.json.encode(value).decode(), flush=True)


def _call(url: str, work: Callable[[SimulatorClient], Awaitable[int]]) -> int:
    """Run ``work`` with a control client; simulator errors become a message on stderr and exit code 2 (or 1)."""

    async def run() -> int:
        async with SimulatorClient(url) as sim:
            return await work(sim)

    try:
        return asyncio.run(run())
    except SimulatorError as exc:
        print(f"atende sim: error [{exc.code}]: {exc.message}", file=sys.stderr)
        return 2 if exc.status is not None and exc.status < 500 else 1


def _bad_input(message: str) -> int:
    """Refuse a command line the simulator would refuse anyway, in the same words; exit code 2."""
    print(f"atende sim: error [invalid_input]: {message}", file=sys.stderr)
    return 2


# -- verbs ----------------------------------------------------------------------------------------------------


def cmd_simulator(args: argparse.Namespace, simulator_url: str) -> int:
    """Serve the simulator until Ctrl-C or SIGTERM."""
    from supervisor.simulator.server import SimulatorServer

    parts = urlsplit(simulator_url)
    host = args.sim_host or parts.hostname or "127.0.0.1"
    port = args.sim_port if args.sim_port is not None else (parts.port if parts.port is not None else 8010)

    async def run() -> int:
        server = SimulatorServer(auto_pair=True if args.auto_pair else None)
        url = await server.start(host, port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        handled: list[signal.Signals] = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread
                loop.add_signal_handler(sig, stop.set)
                handled.append(sig)
        print(f"simulator listening on {url}" + (" (auto-pair)" if args.auto_pair else ""), flush=True)
        try:
            await stop.wait()
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)
            await server.stop()
        return 0

    try:
        return asyncio.run(run())
    except KeyboardInterrupt:
        return 0


def _kind_of(mime: str) -> MessageKind:
    """The message kind a file of this MIME type is sent as, unless ``--kind`` says otherwise."""
    return _KIND_BY_MIME_TYPE.get(mime.partition("/")[0], "document")


def cmd_send(args: argparse.Namespace, simulator_url: str) -> int:
    text: str | None = args.text
    media: MediaSpec | None = None
    kind: MessageKind = "text"
    if args.media is None:
        extra = [flag for flag, value in (("--caption", args.caption), ("--mime", args.mime), ("--kind", args.kind))
                 if value is not None]  # fmt: skip
        if extra:
            return _bad_input(f"{', '.join(extra)} only go with --media")
        if text is None:
            return _bad_input("--text is required (or --media)")
    else:
        path = Path(args.media)
        try:
            data = path.read_bytes()
        except OSError as exc:
            return _bad_input(f"cannot read {args.media}: {exc.strerror or exc}")
        mime = args.mime or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        media = MediaSpec(mime=mime, filename=path.name, data=data)  # the real bytes: the sha256 is the file's
        kind = args.kind or _kind_of(mime)
        text = args.caption if args.caption is not None else text

    async def work(sim: SimulatorClient) -> int:
        sent = await sim.send(args.from_phone, args.to, text, kind=kind, name=args.name, media=media,
                              count=args.count, addressing=args.addressing)  # fmt: skip
        for message_id, media_id in itertools.zip_longest(sent.ids, sent.media):
            _print({"id": message_id, "media": media_id} if media_id else {"id": message_id})
        return 0

    return _call(simulator_url, work)


def _inbox_line(message: InboxMessage) -> dict[str, Any]:
    return {"id": message.id, "from": message.sender, "chat": message.chat, "text": message.text,
            "kind": message.kind, "media": message.media, "status": message.status,
            "timestamp": datetime.fromtimestamp(message.timestamp / 1000, UTC).isoformat()}  # fmt: skip


def cmd_inbox(args: argparse.Namespace, simulator_url: str) -> int:
    async def work(sim: SimulatorClient) -> int:
        after = 0
        deadline = time.monotonic() + args.timeout if args.timeout else None
        while True:  # bounded by pages when not following, by Ctrl-C or --timeout when following
            page = await sim.inbox(args.phone, after=after, limit=1000)
            for message in page.messages:
                _print(_inbox_line(message))
            after = page.last_seq
            if len(page.messages) == 1000:
                continue
            if not args.follow or (deadline is not None and time.monotonic() >= deadline):
                return 0
            await asyncio.sleep(args.interval)

    return _call(simulator_url, work)


def cmd_pair(args: argparse.Namespace, simulator_url: str) -> int:
    async def work(sim: SimulatorClient) -> int:
        _print(await sim.pair(args.number, code=args.code))
        return 0

    return _call(simulator_url, work)


def cmd_fault(args: argparse.Namespace, simulator_url: str) -> int:
    async def work(sim: SimulatorClient) -> int:
        _print(await sim.fault(args.number, args.kind, seconds=args.seconds))
        return 0

    return _call(simulator_url, work)


def cmd_status(args: argparse.Namespace, simulator_url: str) -> int:
    async def work(sim: SimulatorClient) -> int:
        for state in [await sim.number(args.number)] if args.number else await sim.numbers():
            _print(state)
        return 0

    return _call(simulator_url, work)


def cmd_bulk(args: argparse.Namespace, simulator_url: str) -> int:
    async def work(sim: SimulatorClient) -> int:
        job = await sim.bulk(args.to, phones=args.phones, messages=args.messages, rate=args.rate,
                             addressing=args.addressing)  # fmt: skip
        _print(job)
        for _ in range(86_400 * 10 if args.wait else 0):  # bounded: a day of polling at most
            await asyncio.sleep(0.1)
            job = await sim.bulk_job(job.id)
            if job.done:
                _print(job)
                break
        return 0

    return _call(simulator_url, work)


def cmd_config(args: argparse.Namespace, simulator_url: str) -> int:
    changes: dict[str, Any] = {}
    for item in args.changes:
        key, sep, value = item.partition("=")
        if not sep:
            return _bad_input(f"expected KEY=VALUE, got {item!r}")
        try:
            changes[key] = json.loads(value)
        except ValueError:
            changes[key] = value

    async def work(sim: SimulatorClient) -> int:
        _print(await (sim.configure(**changes) if changes else sim.config()))
        return 0

    return _call(simulator_url, work)


# -- parser ------------------------------------------------------------------------------------------------


def add_simulator_verbs(subparsers: Any, *, epilog: str | None = None) -> None:
    """Add ``simulator`` and ``sim`` to an argparse subparsers object; handlers go in ``simulator_handler``."""
    epilog = f"{epilog}\n\n{_ENV_NOTE}" if epilog else _ENV_NOTE

    def parser(into: Any, name: str, help_: str, handler: Handler) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = into.add_parser(name, help=help_, description=help_, epilog=epilog,
                                                       formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
        sub.set_defaults(simulator_handler=handler)
        return sub

    serve = parser(subparsers, "simulator", "Run the WhatsApp simulator (WebSocket + control API) until Ctrl-C.",
                   cmd_simulator)  # fmt: skip
    serve.add_argument("--host", dest="sim_host", help="address to bind (default: the host of the simulator URL)")
    serve.add_argument("--port", dest="sim_port", type=int, help="port (default: the port of the simulator URL, 8010)")
    serve.add_argument("--auto-pair", action="store_true", help="pair every number as soon as it shows a QR code")

    sim = parser(subparsers, "sim", "Act on a running simulator: phones send and read, pair, inject faults.",
                 lambda args, url: 2)  # fmt: skip
    actions = sim.add_subparsers(dest="sim_action", metavar="ACTION", required=True)

    send = parser(actions, "send", "A phone sends text or media messages to a business number; prints their ids.",
                  cmd_send)  # fmt: skip
    send.add_argument(
        "--to", required=True, metavar="BUSINESS_NUMBER", help="E.164 business number, e.g. +5511900000000"
    )
    send.add_argument("--from", dest="from_phone", required=True, metavar="PHONE", help="the customer's phone (E.164)")
    send.add_argument("--text", help="message text (required without --media; with it, the caption)")
    send.add_argument("--name", help="the customer's push name")
    send.add_argument("--count", type=int, default=1, help="send the message this many times (default 1)")
    send.add_argument("--media", metavar="PATH", help="send this file (its real bytes) as a media message")
    send.add_argument("--mime", help="MIME type of --media (default: guessed from the file name)")
    send.add_argument("--kind", choices=MEDIA_KINDS, help="message kind of --media (default: from the MIME type)")
    send.add_argument("--caption", help="the text of a media message")
    send.add_argument("--addressing", choices=get_args(Addressing), default="pn",
                      help="name the phone by phone number (pn, default) or by LID (lid)")  # fmt: skip

    inbox = parser(actions, "inbox", "Print what a phone received: id, from, text, kind, media, status, timestamp.",
                   cmd_inbox)  # fmt: skip
    inbox.add_argument("--phone", required=True, help="the customer's phone (E.164)")
    inbox.add_argument("--follow", action="store_true", help="keep printing new messages until Ctrl-C")
    inbox.add_argument("--interval", type=float, default=0.5, help="seconds between polls with --follow (default 0.5)")
    inbox.add_argument("--timeout", type=float, help="stop following after this many seconds")

    pair = parser(actions, "pair", "Pair a number: its newest connection's QR is 'scanned'.", cmd_pair)
    pair.add_argument("--number", required=True, help="the business number being paired")
    pair.add_argument("--code", help="the 8-character pair code shown to the connection (pair-code pairing)")

    fault = parser(actions, "fault", "Inject a fault into a number's connection.", cmd_fault)
    fault.add_argument("--number", required=True, help="the business number")
    fault.add_argument("--kind", required=True, choices=FAULT_KINDS, help="what happens; 'clear' lifts bans/refusal")
    fault.add_argument("--seconds", type=float, help="temp_banned duration (3600) or refuse duration (10)")

    status = parser(actions, "status", "Print the state of one number, or of every number.", cmd_status)
    status.add_argument("--number", help="only this business number")

    bulk = parser(actions, "bulk", "Generate load inside the simulator: P phones send M messages each.", cmd_bulk)
    bulk.add_argument("--to", required=True, metavar="BUSINESS_NUMBER", help="the business number receiving the load")
    bulk.add_argument("--phones", type=int, required=True, help="number of phones")
    bulk.add_argument("--messages", type=int, required=True, help="messages per phone")
    bulk.add_argument("--rate", type=float, help="target msg/s overall (default: as fast as possible)")
    bulk.add_argument("--wait", action="store_true", help="wait until every message was generated")
    bulk.add_argument("--addressing", choices=get_args(Addressing), default="pn",
                      help="name the phones by phone number (pn, default) or by LID (lid)")  # fmt: skip

    config = parser(
        actions, "config", "Print the configuration, or change it: sim config ack_read_s=0.5 ...", cmd_config
    )
    config.add_argument("changes", nargs="*", metavar="KEY=VALUE", help="settings to change (values are JSON)")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m supervisor.simulator.cli [--url URL] VERB ...`` (without the rest of ``atende``)."""
    root = argparse.ArgumentParser(prog="python -m supervisor.simulator.cli", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    root.add_argument("--url", default=DEFAULT_URL, help=f"simulator base URL (default {DEFAULT_URL})")
    add_simulator_verbs(root.add_subparsers(dest="verb", metavar="VERB", required=True))
    args = root.parse_args(argv)
    handler: Handler = args.simulator_handler
    try:
        return handler(args, args.url)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
