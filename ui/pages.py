"""The agent inbox pages: server-rendered shells whose scripts talk to ``/api/v1`` with a Bearer token.

The HTML carries no tenant data, so there is no auth check here: the access token lives in the browser's
``sessionStorage`` and the scripts go to ``/login`` when it is missing or the API answers 401. Every page
forbids inline scripts and styles, framing and MIME sniffing, and may connect only to its own origin (HTTP and
the events WebSocket). Images and audio/video may also come from ``blob:`` URLs: conversation media is fetched
with the Bearer token and shown through ``URL.createObjectURL``.
"""

from __future__ import annotations

import re
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from litestar import Controller, Router, get
from litestar.datastructures import CacheControlHeader, MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig
from litestar.types import ASGIApp, ControllerRouterHandler, Message, Receive, Scope, Send

__all__ = [
    "STATIC_DIR",
    "TEMPLATES_DIR",
    "UI_HEADERS",
    "PageController",
    "SecurityHeadersMiddleware",
    "content_security_policy",
    "template_config",
    "ui_route_handlers",
]

UI_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = UI_DIR / "templates"
STATIC_DIR = UI_DIR / "static"

# A DNS name or a bracketed IPv6 literal, with an optional port: anything else in Host is not echoed into the CSP.
_HOST_RE = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
                      r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?\Z")  # fmt: skip

# Sent with every UI response (pages and static files), next to the per-request CSP.
UI_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


def content_security_policy(host: str | None) -> str:
    """The CSP of a page served to ``host`` (the request's Host header).

    ``'self'`` covers ws/wss of the same host only in CSP level 3 browsers, so the WebSocket origins are named
    too; a Host that is not a plain host[:port] is left out rather than echoed.
    """
    connect = ["'self'"]
    if host and _HOST_RE.match(host):
        connect += [f"ws://{host}", f"wss://{host}"]
    directives = {
        "default-src": "'none'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self' blob:",
        "media-src": "'self' blob:",
        "font-src": "'self'",
        "connect-src": " ".join(connect),
        "base-uri": "'none'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


class SecurityHeadersMiddleware(ASGIMiddleware):
    """Adds :data:`UI_HEADERS` and the CSP to every response of the UI router, whatever produced it.

    (A middleware rather than layered ``response_headers``: static files answer with a raw ASGI response,
    and the CSP depends on the request's Host.)
    """

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), None)
        headers = {**UI_HEADERS, "Content-Security-Policy": content_security_policy(host)}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                outgoing = MutableScopeHeaders.from_message(message)
                for name, value in headers.items():
                    outgoing[name] = value
            await send(message)

        await next_app(scope, receive, send_with_headers)


class PageController(Controller):
    """``/``, ``/login``, ``/inbox`` and ``/dashboard``: HTML shells; the data comes from the API."""

    path = "/"
    include_in_schema = False
    cache_control = CacheControlHeader(no_cache=True)

    @get("/", name="ui:root", status_code=302)
    async def root(self) -> Redirect:
        return Redirect("/inbox", status_code=302)

    @get("/login", name="ui:login")
    async def login(self) -> Template:
        return Template(template_name="login.html", context={"title": "Sign in"})

    @get("/inbox", name="ui:inbox")
    async def inbox(self) -> Template:
        return Template(template_name="inbox.html", context={"title": "Inbox"})

    @get("/dashboard", name="ui:dashboard")
    async def dashboard(self) -> Template:
        return Template(template_name="dashboard.html", context={"title": "Dashboard"})


def ui_route_handlers() -> list[ControllerRouterHandler]:
    """The page handlers and ``/static``; mount them next to the API in the app factory."""
    static = create_static_files_router(
        path="/static",
        directories=[STATIC_DIR],
        name="static",
        include_in_schema=False,
        # Revalidate on every load (cheap: ETag/Last-Modified) so a deploy never mixes old scripts with new pages.
        cache_control=CacheControlHeader(no_cache=True),
    )
    return [Router(path="/", route_handlers=[PageController, static], middleware=[SecurityHeadersMiddleware()],
                   include_in_schema=False)]  # fmt: skip


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    """Jinja over ``ui/templates`` with autoescaping on and undefined names as errors."""
    environment = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=True, undefined=StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True)  # fmt: skip
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(environment))
