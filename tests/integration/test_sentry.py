"""Sentry reports a server error with release, environment and tenant — sent to a local collector."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
import sentry_sdk
from litestar import Litestar, get

from saas.errors import exception_handlers
from saas.logs import update
from saas.observability import RequestObserver, init_sentry
from saas.settings import Settings
from tests.conftest import app_client


class _Collector(BaseHTTPRequestHandler):
    envelopes: list[bytes] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.envelopes.append(body)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, list[bytes]]]:
    server = HTTPServer(("127.0.0.1", 0), _Collector)
    _Collector.envelopes = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://public@127.0.0.1:{server.server_port}/1", _Collector.envelopes
    finally:
        server.shutdown()
        server.server_close()
        # Back to a client without a DSN, and without the integrations a bare init() would enable (its Litestar
        # integration parses request bodies, which would change other tests' answers).
        sentry_sdk.init(default_integrations=False, auto_enabling_integrations=False)


async def test_server_error_reaches_sentry_tagged(collector: tuple[str, list[bytes]]) -> None:
    dsn, envelopes = collector
    assert init_sentry(Settings(sentry_dsn=dsn, release="atende@test", env="test"))

    @get("/explode")
    async def explode() -> None:
        update(tenant="acme", user=42)  # what authentication does once it knows who is calling
        raise RuntimeError("kaboom")

    app = Litestar([explode], exception_handlers=exception_handlers(), logging_config=None)
    app.asgi_handler = RequestObserver(app.asgi_handler)
    async with app_client(app) as client:
        assert (await client.get("/explode")).status_code == 500
    sentry_sdk.flush(timeout=5)

    events = [
        json.loads(line)
        for envelope in envelopes
        for line in envelope.splitlines()
        if line.startswith(b"{") and b'"exception"' in line
    ]
    assert len(events) == 1, envelopes
    event = events[0]
    assert event["release"] == "atende@test"
    assert event["environment"] == "test"
    assert event["tags"]["request_id"]
    assert (event["tags"]["tenant"], event["tags"]["user"]) == ("acme", "42")
    assert event["exception"]["values"][-1]["value"] == "kaboom"
