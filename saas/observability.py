"""Request observation (request id, one log line, Prometheus metrics) and Sentry set-up.

:class:`RequestObserver` wraps Litestar's whole ASGI handler, so it sees every request — also 404s and
errors that never reach a route. Metrics are labelled by route *template* (``/api/v1/tickets/{id}``),
never by raw path, and unmatched paths share one label, so cardinality stays bounded.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

import sentry_sdk
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import Counter, Histogram
from sentry_sdk.integrations.logging import LoggingIntegration

from saas.logs import bind, log_context
from saas.settings import Settings

__all__ = ["HTTP_LATENCY", "HTTP_REQUESTS", "RequestObserver", "init_sentry"]

logger = logging.getLogger("atende.http")

HTTP_REQUESTS = Counter(
    "atende_http_requests_total",
    "HTTP requests by route template, method and status.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "atende_http_request_duration_seconds",
    "HTTP request latency by route template and method.",
    ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
UNMATCHED_ROUTE = "<unmatched>"
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._-]{8,64}\Z")
# On every response unless a more specific layer (the UI pages) already set them.
_SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
)
# Probes and scrapes would drown the log; they are still counted.
_QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})


class RequestObserver:
    """ASGI wrapper: request id in and out, log context, one log line and metrics per HTTP request."""

    __slots__ = ("app",)

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Litestar hands lifespan events to its router itself; only HTTP and WebSocket scopes arrive here.
        incoming = dict(scope.get("headers") or ()).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        api = str(scope.get("path", "")).startswith("/api/")
        status = 500
        started = time.perf_counter()

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.append((b"x-request-id", request_id.encode()))
                headers.extend(h for h in _SECURITY_HEADERS if h[0] not in present)
                if api and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))  # tenant data never sits in shared caches
                message["headers"] = headers
            await send(message)

        with bind(request_id=request_id):
            try:
                await self.app(scope, receive, observed_send)
            finally:
                if scope["type"] == ScopeType.HTTP:
                    self._record(scope, status, time.perf_counter() - started)

    @staticmethod
    def _record(scope: Scope, status: int, elapsed: float) -> None:
        route = scope.get("path_template") or UNMATCHED_ROUTE
        method = scope.get("method", "GET")
        HTTP_REQUESTS.labels(method, route, str(status)).inc()
        HTTP_LATENCY.labels(method, route).observe(elapsed)
        if route in _QUIET_ROUTES and status < 400:
            return
        # WARNING, not ERROR: the error mapper already logged (and reported) the cause once.
        level = logging.WARNING if status >= 500 else logging.INFO
        fields = {"method": method, "path": scope.get("path"), "route": route, "status": status,
                  "duration_ms": round(elapsed * 1000, 2)}  # fmt: skip
        logger.log(level, "%s %s %s", method, scope.get("path"), status, extra={"fields": fields})


def _tag_event(event: Any, hint: Any) -> Any:
    context = log_context()
    tags = event.setdefault("tags", {})
    for key in ("tenant", "request_id", "user"):
        if context.get(key) is not None:
            tags[key] = str(context[key])
    return event


def init_sentry(settings: Settings) -> bool:
    """Initialise Sentry when ``SENTRY_DSN`` is set; silent (and off) otherwise."""
    if not settings.sentry_dsn:
        return False
    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        release=settings.release,
        environment=settings.sentry_environment or settings.env,
        # Error-level log records become events: the error mapper logs every 5xx exactly once.
        integrations=[LoggingIntegration(level=logging.INFO, event_level=logging.ERROR)],
        auto_enabling_integrations=False,
        before_send=_tag_event,
    )
    return True
