"""The agent inbox and dashboard UI: pages and assets as a browser receives them (headers, CSP, scripts), the
scripts' pure logic run in Node, and that same logic fed with what the real API and events socket send."""

from __future__ import annotations

import asyncio
import atexit
import base64
import functools
import json
import os
import random
import re
import shutil
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import websockets
from litestar import Litestar
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send
from redis.asyncio import Redis
from websockets.typing import Origin

from saas.app import create_app
from saas.connections.service import create_connection
from saas.router.worker import RouterWorker
from saas.settings import Settings
from saas.tickets.rules import PRIORITIES, inbox_sort_key
from supervisor.streams import StreamKeys, append_events
from supervisor.wire import DriverEvent, Envelope, InboundMessage, MessageStatus, utcnow
from tenants.context import tenant_context
from tenants.passwords import hash_password
from tenants.provisioning import TenantInfo
from tests.conftest import app_client, live_server
from tests.integration.test_media_flow import PNG
from ui.pages import STATIC_DIR, content_security_policy, template_config, ui_route_handlers

MakeTenant = Callable[..., Awaitable[TenantInfo]]
UI_PAGES = frozenset({"/", "/login", "/inbox", "/dashboard"})
PASSWORD = "correct horse"
NODE_TIMEOUT_S = 30
# The shared module and the page modules, as Node names them in ``_node`` (the pages import ./common.js).
SCRIPT_MODULES = ("common", "inbox", "login", "dashboard")
IMPORT_RE = re.compile(r"""^import\s[^;]*?\sfrom\s+"(\./[\w.-]+\.js)";""", re.MULTILINE)


def _ui_app() -> Litestar:
    return Litestar(route_handlers=ui_route_handlers(), template_config=template_config())


def _mounted(api: Litestar) -> ASGIApp:
    """``api`` with the UI beside it, as the app factory mounts it: the pages and /static to the UI, the rest to the API."""
    ui = _ui_app()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        to_ui = scope["type"] == ScopeType.HTTP and (scope["path"] in UI_PAGES or scope["path"].startswith("/static/"))
        await (ui if to_ui else api)(scope, receive, send)

    return app


class _Page(HTMLParser):
    """What a browser would load and run from a page, and anything a strict CSP would block."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.scripts: list[str] = []
        self.stylesheets: list[str] = []
        self.inputs: list[str] = []
        self.i18n: set[str] = set()
        self.blocked: list[str] = []  # inline scripts, style attributes, on* handlers, <style> blocks
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if attributes.get("id"):
            self.ids.add(attributes["id"] or "")
        for name in ("data-i18n", "data-i18n-placeholder", "data-i18n-label"):
            if attributes.get(name):
                self.i18n.add(attributes[name] or "")
        if tag == "script":
            if attributes.get("src"):
                self.scripts.append(attributes["src"] or "")
            else:
                self._in_script = True
        if tag == "link" and attributes.get("rel") == "stylesheet":
            self.stylesheets.append(attributes.get("href") or "")
        if tag == "input" and attributes.get("name"):
            self.inputs.append(attributes["name"] or "")
        if tag == "style":
            self.blocked.append("<style>")
        self.blocked += [f"{tag}[{name}]" for name, _ in attrs if name == "style" or name.startswith("on")]

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.blocked.append("inline <script>")


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def _csp(header: str) -> dict[str, list[str]]:
    directives = (part.split() for part in header.split(";") if part.strip())
    return {words[0]: words[1:] for words in directives}


@functools.cache
def _script_dir() -> Path:
    """The scripts as Node loads them: a copy of ``ui/static/*.js`` in a folder whose package.json says
    ``"type": "module"``. They are ES modules (the pages import ``./common.js``), and a Node older than 20.19
    reads a ``.js`` file outside such a folder as CommonJS."""
    folder = Path(tempfile.mkdtemp(prefix="atende-ui-scripts-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    for path in STATIC_DIR.glob("*.js"):
        shutil.copyfile(path, folder / path.name)
    (folder / "package.json").write_text('{"type": "module"}\n')
    return folder


async def _node(body: str, payload: object = None, *, tz: str | None = None) -> Any:
    """Run ``body`` in Node, as an ES module, with ``common``, ``inbox``, ``login`` and ``dashboard`` (the shared
    module's and the page scripts' exports), ``assert`` and ``input`` (``payload``) in scope, in the time zone
    ``tz`` if given; returns what the script assigns to ``result``, and fails with Node's error output."""
    node = shutil.which("node")
    assert node is not None, "Node.js (the `node` command) is required to check the UI scripts; install Node 20+"
    imports = "".join(
        f"import * as {name} from {json.dumps((_script_dir() / f'{name}.js').as_uri())};\n" for name in SCRIPT_MODULES
    )
    script = (
        'import assert from "node:assert/strict";\n'
        'import { readFileSync } from "node:fs";\n'
        f"{imports}"
        "const input = JSON.parse(readFileSync(0, 'utf8'));\n"
        "let result = null;\n"
        f"{body}\n"
        "process.stdout.write(JSON.stringify(result));\n"
    )
    process = await asyncio.create_subprocess_exec(
        node, "--input-type=module", "-e", script, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "TZ": tz} if tz else None,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(json.dumps(payload).encode()), NODE_TIMEOUT_S)
    assert process.returncode == 0, stderr.decode()
    return json.loads(stdout)


# --- pages and assets -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "root", "script", "elements"),
    [
        ("/login", "login-app", "/static/login.js", {"login-form", "login-tenant", "login-email", "login-password"}),
        ("/inbox", "inbox-app", "/static/inbox.js", {"ticket-tabs", "ticket-list", "conversation-pane", "message-list",
                                                    "composer", "composer-text", "connection-indicator",
                                                    "session-badges", "presence-select", "dashboard-link",
                                                    "search-text", "search-mode", "search-results", "ticket-filters",
                                                    "filter-queue", "action-accept", "action-transfer", "action-close",
                                                    "action-reopen", "action-priority", "action-snooze", "action-tags",
                                                    "composer-note", "composer-attach", "composer-file",
                                                    "quick-replies", "contact-panel", "custom-field-list",
                                                    "contact-notes", "contact-tickets", "transfer-dialog",
                                                    "transfer-queue", "transfer-user", "transfer-user-presence",
                                                    "transfer-connection", "close-dialog", "close-farewell",
                                                    "close-no-farewell", "close-survey", "close-hint",
                                                    "snooze-dialog", "tags-dialog"}),
        ("/dashboard", "dashboard-app", "/static/dashboard.js", {"period-form", "period-preset", "filter-queue",
                                                                "filter-user", "filter-connection", "dashboard-error",
                                                                "now-cards", "times-body", "by-agent", "by-queue",
                                                                "by-connection"}),
    ],
)  # fmt: skip
async def test_pages_render_their_shell_and_scripts(path: str, root: str, script: str, elements: set[str]) -> None:
    async with app_client(_ui_app()) as client:
        response = await client.get(path)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        page = _parse(response.text)
        assert {root, *elements} <= page.ids
        assert page.scripts == [script]
        assert page.stylesheets == ["/static/app.css"]
        assert page.blocked == []  # the CSP would block these: everything is in /static
        for asset in [*page.scripts, *page.stylesheets]:
            assert (await client.get(asset)).status_code == 200
        # The page script imports the shared module, which the browser loads from /static beside it ('self').
        imports = IMPORT_RE.findall((await client.get(script)).text)
        assert imports == ["./common.js"]
        assert IMPORT_RE.findall((STATIC_DIR / "common.js").read_text()) == []
        assert (await client.get("/static/common.js")).status_code == 200


async def test_root_redirects_to_the_inbox() -> None:
    async with app_client(_ui_app()) as client:
        response = await client.get("/")
        assert (response.status_code, response.headers["location"]) == (302, "/inbox")


@pytest.mark.parametrize(
    ("name", "content_types"),
    [
        ("inbox.js", ("text/javascript", "application/javascript")),
        ("login.js", ("text/javascript", "application/javascript")),
        ("dashboard.js", ("text/javascript", "application/javascript")),
        ("common.js", ("text/javascript", "application/javascript")),
        ("app.css", ("text/css",)),
    ],
)
async def test_static_assets_are_served_with_their_type(name: str, content_types: tuple[str, ...]) -> None:
    async with app_client(_ui_app()) as client:
        response = await client.get(f"/static/{name}")
        assert response.status_code == 200
        assert response.headers["content-type"].split(";")[0] in content_types
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.content == (STATIC_DIR / name).read_bytes()
        assert (await client.get("/static/missing.js")).status_code == 404
        assert (await client.get("/static/..%2fpages.py")).status_code == 404  # no way out of the folder


@pytest.mark.parametrize("path", ["/login", "/inbox", "/dashboard"])
async def test_pages_send_security_headers(path: str) -> None:
    async with app_client(_ui_app()) as client:
        response = await client.get(path, headers={"host": "atende.example:8443"})
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] in {"same-origin", "no-referrer", "strict-origin-when-cross-origin"}
    header = response.headers["content-security-policy"]
    assert "unsafe-inline" not in header and "unsafe-eval" not in header
    csp = _csp(header)
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"] == ["'self'"]
    assert csp["style-src"] == ["'self'"]
    # Conversation media is fetched with the token and shown through object URLs; nothing else from elsewhere.
    assert csp["img-src"] == ["'self'", "blob:"]
    assert csp["media-src"] == ["'self'", "blob:"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["connect-src"] == ["'self'", "ws://atende.example:8443", "wss://atende.example:8443"]


@pytest.mark.parametrize("host", ["evil.example; script-src *", "a b", "x'y", "", None])
def test_csp_never_echoes_a_malformed_host(host: str | None) -> None:
    csp = _csp(content_security_policy(host))
    assert csp["connect-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"]


async def test_pages_and_static_files_stay_out_of_the_api_schema() -> None:
    assert not _ui_app().openapi_schema.paths
    async with app_client(_ui_app()) as client:
        schema = (await client.get("/schema/openapi.json")).json()
    assert not schema.get("paths")


def test_templates_autoescape() -> None:
    engine = template_config().engine_instance
    assert engine.engine.autoescape is True
    rendered = engine.render_string("<title>{{ title }}</title>", {"title": "<script>alert('x')</script>"})
    assert rendered == "<title>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;</title>"


# --- the scripts ------------------------------------------------------------------------------------------------


async def test_scripts_parse_in_node() -> None:
    node = shutil.which("node")
    assert node is not None, "Node.js (the `node` command) is required to check the UI scripts; install Node 20+"
    scripts = sorted(_script_dir().glob("*.js"))
    assert {p.name for p in scripts} >= {f"{name}.js" for name in SCRIPT_MODULES}
    for path in scripts:
        process = await asyncio.create_subprocess_exec(node, "--check", str(path), stderr=asyncio.subprocess.PIPE)
        _, stderr = await asyncio.wait_for(process.communicate(), NODE_TIMEOUT_S)
        assert process.returncode == 0, f"{path.name}: {stderr.decode()}"


def test_scripts_never_build_html_from_strings() -> None:
    forbidden = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function"
                           r"|setAttribute\(\s*[\"'](?:style|on)|\.cssText|\.on[a-z]+\s*=[^=]")  # fmt: skip
    for path in STATIC_DIR.glob("*.js"):
        assert not forbidden.findall(path.read_text()), path.name


@pytest.mark.parametrize(("path", "module"), [("/login", "login"), ("/inbox", "inbox"), ("/dashboard", "dashboard")])
async def test_every_page_string_is_in_the_script_strings(path: str, module: str) -> None:
    async with app_client(_ui_app()) as client:  # the page as rendered: base.html's top bar and the macros' output
        keys = _parse((await client.get(path)).text).i18n
    assert keys
    assert not any("{" in key for key in keys)
    known = await _node(f"result = Object.keys({module}.STRINGS);")
    assert keys <= set(known)


def _ticket(ticket_id: int, at: str | None, **extra: Any) -> dict[str, Any]:
    contact = {"id": ticket_id, "name": None, "phone": f"+551190000{ticket_id:04d}",
               "wa_id": f"551190000{ticket_id:04d}@s.whatsapp.net"}  # fmt: skip
    return {"id": ticket_id, "number": ticket_id, "status": "pending", "priority": "normal", "contact": contact,
            "connection_id": 1, "queue_id": None, "user_id": None, "unread_count": 1, "last_message_at": at,
            "last_message_preview": f"hello {ticket_id}", "waiting_since": None, "snoozed_until": None,
            "bot_state": None, "tags": [], "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z",
            **extra}  # fmt: skip


async def test_ticket_list_follows_events() -> None:
    tickets = [_ticket(1, "2025-01-01T10:00:00Z"), _ticket(2, "2025-01-01T11:00:00.500000+00:00"), _ticket(3, None)]
    await _node(
        """
        const s = inbox.createState("pending");
        for (const t of input) inbox.upsertTicket(s, t, { snapshot: true });
        const order = () => inbox.orderedTickets(s).map((t) => t.id);
        assert.deepEqual(order(), [2, 1, 3]);

        // A new message moves ticket 1 to the top with its preview and unread count; the contact stays.
        let changes = inbox.applyEvent(s, { id: "5-0", type: "ticket.updated", ticket_id: 1, data: { id: 1,
          status: "pending", unread_count: 2, last_message_at: "2025-01-01T12:00:00+00:00", last_message_preview: "again" } });
        assert.ok(changes.tickets);
        assert.deepEqual(order(), [1, 2, 3]);
        assert.equal(s.lastEventId, "5-0");
        assert.equal(s.tickets.get(1).last_message_preview, "again");
        assert.equal(s.tickets.get(1).unread_count, 2);
        assert.equal(inbox.contactLabel(s.tickets.get(1).contact), "+5511900000001");

        // A list page fetched before that event does not undo it.
        inbox.upsertTicket(s, input[0], { snapshot: true });
        assert.equal(s.tickets.get(1).last_message_preview, "again");

        // Accepted: it leaves the Pending tab.
        inbox.applyEvent(s, { id: "6-0", type: "ticket.updated", ticket_id: 2, data: { id: 2, status: "open",
          unread_count: 0, last_message_at: "2025-01-01T12:01:00+00:00", last_message_preview: "ok" } });
        assert.deepEqual(order(), [1, 3]);

        // A new ticket of this tab is fetched whole (events lack the phone); other tabs' are not this list's.
        changes = inbox.applyEvent(s, { id: "7-0", type: "ticket.created", ticket_id: 9, data: { id: 9, number: 9,
          status: "pending", contact_id: 9, contact_name: "Ana", connection_id: 1, created_at: "2025-01-02T00:00:00Z" } });
        assert.deepEqual(changes.fetch, [9]);
        assert.ok(!s.tickets.has(9));
        assert.deepEqual(inbox.applyEvent(s, { type: "ticket.updated", data: { id: 10, status: "open" } }).fetch, []);

        // Pings change nothing; session states reach the header.
        assert.deepEqual(inbox.applyEvent(s, { type: "ping" }), { tickets: false, conversation: false,
          sessions: false, presence: false, contact: false, fetch: [], hidden: null, contactMerged: null });
        assert.equal(s.lastEventId, "7-0");
        changes = inbox.applyEvent(s, { id: "8-0", type: "session.updated", ticket_id: null, data: {
          connection_id: 1, state: "AWAITING_QR", reason: null, qr: "2@abc,def", qr_expires_at: null } });
        assert.ok(changes.sessions);
        assert.equal(s.sessions.get(1).qr, "2@abc,def");
        """,
        tickets,
    )


async def test_conversation_merges_replies_and_statuses() -> None:
    await _node(
        """
        const s = inbox.createState("pending");
        inbox.openTicket(s, 1);
        const at = "2025-01-01T10:00:00Z";
        const received = { id: 5, ticket_id: 1, from_me: false, kind: "text", text: "oi", status: "RECEIVED",
          sender_name: "Ana", occurred_at: at };
        inbox.addMessage(s, received);
        const view = () => inbox.orderedMessages(s).map((m) => [m.id ?? m.client_id, m.status, m.error ?? null]);

        // Another ticket's messages are not this conversation's.
        const other = inbox.applyEvent(s, { id: "1-0", type: "message.created", ticket_id: 2, data: { ...received,
          id: 6, ticket_id: 2 } });
        assert.ok(!other.conversation);

        // The reply shows at once; the send result and the echo may beat the POST answer: still one bubble.
        inbox.addOptimistic(s, "cid-1", "Olá!");
        assert.deepEqual(view(), [[5, "RECEIVED", null], ["cid-1", "QUEUED", null]]);
        inbox.applyEvent(s, { id: "2-0", type: "message.updated", ticket_id: 1, data: { id: 7, ticket_id: 1,
          status: "SENT", provider_message_id: "3EB0", error_code: null, error_title: null } });
        inbox.applyEvent(s, { id: "3-0", type: "message.created", ticket_id: 1, data: { id: 7, ticket_id: 1,
          from_me: true, kind: "text", text: "Olá!", sender_name: null, status: "QUEUED", occurred_at: at } });
        assert.deepEqual(view(), [[5, "RECEIVED", null], [7, "SENT", null]]);
        inbox.resolveOptimistic(s, "cid-1", { id: 7, ticket_id: 1, from_me: true, kind: "text", text: "Olá!",
          status: "QUEUED", occurred_at: at });
        assert.deepEqual(view(), [[5, "RECEIVED", null], [7, "SENT", null]]);

        // Statuses only move forward.
        for (const status of ["READ", "DELIVERED"]) {
          inbox.applyEvent(s, { type: "message.updated", data: { id: 7, ticket_id: 1, status } });
        }
        assert.equal(s.messages.get(7).status, "READ");

        // A send the API refused stays visible with its reason; a provider failure carries its error.
        inbox.addOptimistic(s, "cid-2", "teste");
        inbox.failOptimistic(s, "cid-2", "could not reach the server");
        inbox.applyEvent(s, { type: "message.created", data: { id: 8, ticket_id: 1, from_me: true, kind: "text",
          text: "other", status: "QUEUED", occurred_at: at } });
        inbox.applyEvent(s, { type: "message.updated", data: { id: 8, ticket_id: 1, status: "FAILED",
          error_code: "131026", error_title: "Receiver is incapable of receiving this message" } });
        assert.deepEqual(view(), [[5, "RECEIVED", null], [7, "READ", null], [8, "FAILED", null],
          ["cid-2", "QUEUED", "could not reach the server"]]);
        assert.equal(s.messages.get(8).error_code, "131026");

        // Opening another ticket starts from nothing.
        inbox.openTicket(s, 2);
        assert.deepEqual(view(), []);
        """
    )


async def test_script_helpers() -> None:
    await _node(
        """
        const glyph = (status) => { const t = inbox.tickFor(status); return t && [t.glyph, t.className]; };
        assert.equal(glyph("RECEIVED"), null);
        assert.deepEqual(glyph("QUEUED")[1], "status-queued");
        assert.deepEqual(glyph("SENT"), ["\\u2713", "status-sent"]);
        assert.deepEqual(glyph("DELIVERED"), ["\\u2713\\u2713", "status-delivered"]);
        assert.deepEqual(glyph("READ"), ["\\u2713\\u2713", "status-read"]);
        assert.equal(glyph("FAILED")[1], "status-failed");

        assert.equal(inbox.backoffDelay(0, () => 0), 800);
        assert.equal(inbox.backoffDelay(0, () => 1), 1200);
        assert.equal(inbox.backoffDelay(3, () => 0.5), 8000);
        assert.equal(inbox.backoffDelay(50, () => 0.5), 30000);

        assert.equal(inbox.eventsUrl({ protocol: "https:", host: "atende.example" }, "a b&c", "1-2"),
          "wss://atende.example/api/v1/events?ticket=a+b%26c&last_event_id=1-2");
        assert.equal(inbox.eventsUrl({ protocol: "http:", host: "127.0.0.1:8000" }, "t", null),
          "ws://127.0.0.1:8000/api/v1/events?ticket=t");

        const fallback = inbox.uuid4({ getRandomValues: (bytes) => bytes.fill(255) });
        assert.match(fallback, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        assert.notEqual(inbox.uuid4(), inbox.uuid4());

        assert.equal(login.loginErrorMessage({ code: "invalid_credentials" }, 401),
          login.STRINGS.errors.invalid_credentials);
        assert.equal(login.loginErrorMessage(null, 502), login.STRINGS.unexpected);
        """
    )


async def test_shared_session_and_api_helpers() -> None:
    """common.js, which the three pages import: the session guard, the one API helper (token, JSON, problem codes,
    401s ending the session) and the page strings, against a stand-in for the browser's storage, location and fetch."""
    await _node(
        """
        const { api, ApiError, applyStrings, sessionToken, TOKEN_KEY, EXPIRES_KEY } = common;
        assert.equal(inbox.format, common.format);  // one copy, re-exported
        const store = new Map();
        const storage = { getItem: (k) => (store.has(k) ? store.get(k) : null), setItem: (k, v) => store.set(k, String(v)),
          removeItem: (k) => store.delete(k) };
        Object.defineProperty(globalThis, "sessionStorage", { value: storage, configurable: true, writable: true });
        const visits = [];
        Object.defineProperty(globalThis, "location", { value: { replace: (url) => visits.push(url) },
          configurable: true, writable: true });
        const calls = [];
        let answer = null;
        globalThis.fetch = async (path, init) => {
          calls.push([path, init]);
          if (answer instanceof Error) throw answer;
          return answer;
        };
        const failsWith = (status, code, message) => (error) => {
          assert.ok(error instanceof ApiError);
          assert.deepEqual([error.status, error.code, error.message], [status, code, message]);
          return true;
        };

        // No token, or an expired one: the session ends (to /login) before any request.
        await assert.rejects(api("/api/v1/x"), failsWith(401, "no_token", "not signed in"));
        assert.deepEqual([visits, calls.length], [["/login"], 0]);
        store.set(TOKEN_KEY, "tok");
        store.set(EXPIRES_KEY, String(Date.now() - 1000));
        assert.equal(sessionToken(), null);
        assert.deepEqual([store.size, visits.length], [0, 2]);
        store.set(TOKEN_KEY, "tok");
        assert.equal(sessionToken(), "tok");  // no expiry known: the API decides
        store.set(EXPIRES_KEY, String(Date.now() + 60000));
        assert.equal(sessionToken(), "tok");

        // JSON in and out with the token; a GET sends no body; 204 is null; a form goes as is.
        answer = new Response(JSON.stringify({ id: 1 }), { status: 201 });
        assert.deepEqual(await api("/api/v1/x", { method: "POST", body: { a: 1 } }), { id: 1 });
        assert.deepEqual(calls.at(-1), ["/api/v1/x", { method: "POST", body: '{"a":1}', headers: {
          Authorization: "Bearer tok", Accept: "application/json", "Content-Type": "application/json" } }]);
        answer = new Response(JSON.stringify([]), { status: 200 });
        assert.deepEqual(await api("/api/v1/y"), []);
        assert.deepEqual(calls.at(-1), ["/api/v1/y", { method: "GET", body: undefined,
          headers: { Authorization: "Bearer tok", Accept: "application/json" } }]);
        answer = new Response(null, { status: 204 });
        const form = new FormData();
        assert.equal(await api("/api/v1/z", { method: "POST", form }), null);
        assert.equal(calls.at(-1)[1].body, form);
        assert.equal("Content-Type" in calls.at(-1)[1].headers, false);  // the multipart boundary is fetch's

        // Errors: the problem's code and detail, else http_<status> and the title or the status.
        answer = new Response(JSON.stringify({ code: "ticket_closed", detail: "closed" }), { status: 409 });
        await assert.rejects(api("/api/v1/x"), failsWith(409, "ticket_closed", "closed"));
        answer = new Response(JSON.stringify({ title: "Forbidden" }), { status: 403 });
        await assert.rejects(api("/api/v1/x"), failsWith(403, "http_403", "Forbidden"));
        answer = new Response("oops", { status: 502 });
        await assert.rejects(api("/api/v1/x"), failsWith(502, "http_502", "HTTP 502"));
        answer = new TypeError("Failed to fetch");
        await assert.rejects(api("/api/v1/x"), failsWith(0, "network_error", "could not reach the server"));
        assert.equal(inbox.errorText("network_error", "ignored"), inbox.STRINGS.errors.network_error);
        assert.equal(store.get(TOKEN_KEY), "tok");
        answer = new Response(JSON.stringify({ code: "unauthorized" }), { status: 401 });
        await assert.rejects(api("/api/v1/x"), failsWith(401, "unauthorized", "session ended"));
        assert.deepEqual([store.size, visits.at(-1)], [0, "/login"]);

        // The page strings: text, placeholder and aria-label; anything but a string leaves the template's words.
        const node = (dataset) => ({ dataset, textContent: "t", placeholder: "p", attributes: {},
          setAttribute(name, value) { this.attributes[name] = value; } });
        const [text, unknown, nested, field, region] = [node({ i18n: "a" }), node({ i18n: "zz" }),
          node({ i18n: "group" }), node({ i18nPlaceholder: "a" }), node({ i18nLabel: "b" })];
        const selected = { "[data-i18n]": [text, unknown, nested], "[data-i18n-placeholder]": [field],
          "[data-i18n-label]": [region] };
        applyStrings({ a: "A", b: "B", group: { x: "X" } }, { querySelectorAll: (selector) => selected[selector] });
        assert.deepEqual([text.textContent, unknown.textContent, nested.textContent, field.placeholder,
          field.textContent, region.attributes], ["A", "t", "t", "A", "t", { "aria-label": "B" }]);
        """
    )


def _moment(rng: random.Random, base: datetime) -> datetime:
    """A moment from a small set, so that ties (down to one microsecond apart) are common."""
    return base + timedelta(microseconds=rng.choice([0, 1, 2, 999, 1000, 1001, 10**6, 10**6 + 1, 3600 * 10**6]))


def _wire(at: datetime | None, rng: random.Random) -> str | None:
    """``at`` as the API may write it: isoformat in UTC (no fraction when it is zero) or in another offset."""
    if at is None:
        return None
    zone = rng.choice([UTC, UTC, timezone(timedelta(hours=-3))])
    return at.astimezone(zone).isoformat()


async def test_ticket_order_is_the_servers() -> None:
    """compareTickets sorts exactly like the server's ORDER BY (saas.tickets.rules.inbox_sort_key): priority, then
    who waits longest (nobody waiting last), then activity, then id — down to microsecond ties that JavaScript's
    Date cannot tell apart, whatever offset the timestamps are written in."""
    rng = random.Random(20250101)
    base = datetime(2025, 1, 1, 12, tzinfo=UTC)
    tickets, keys = [], []
    for ticket_id in rng.sample(range(1, 10_000), 400):
        priority = rng.choice(PRIORITIES)
        waiting = None if rng.random() < 0.4 else _moment(rng, base)
        created = _moment(rng, base - timedelta(days=1))
        last = None if rng.random() < 0.2 else _moment(rng, base)
        tickets.append(_ticket(ticket_id, _wire(last, rng), priority=priority, waiting_since=_wire(waiting, rng),
                               created_at=_wire(created, rng)))  # fmt: skip
        keys.append((inbox_sort_key(PRIORITIES.index(priority), waiting, last or created, ticket_id), ticket_id))
    expected = [ticket_id for _, ticket_id in sorted(keys)]
    rng.shuffle(tickets)
    order = await _node(
        """
        const s = inbox.createState("pending");
        for (const t of input) inbox.upsertTicket(s, t, { snapshot: true });
        result = inbox.orderedTickets(s).map((t) => t.id);
        assert.deepEqual(input.slice().sort(inbox.compareTickets).map((t) => t.id), result);
        """,
        tickets,
    )
    assert order == expected
    # The hand-made corner cases, spelled out.
    assert await _node(
        """
        const t = (id, fields) => ({ id, priority: "normal", waiting_since: null, created_at: "2025-01-01T00:00:00Z",
          last_message_at: null, ...fields });
        result = [
          t(1, { priority: "low", waiting_since: "2025-01-01T09:00:00Z" }),
          t(2, { priority: "urgent" }),
          t(3, { waiting_since: "2025-01-01T10:00:00.000002+00:00" }),
          t(4, { waiting_since: "2025-01-01T07:00:00.000001-03:00" }),  // the same instant as 10:00:00.000001Z
          t(5, { last_message_at: "2025-01-01T11:00:00Z" }),
          t(6, { last_message_at: "2025-01-01T11:00:00Z" }),
          t(7, {}),
        ].sort(inbox.compareTickets).map((x) => x.id);
        """
    ) == [2, 4, 3, 6, 5, 7, 1]


async def test_filters_hidden_tickets_presence_and_contacts() -> None:
    me, other = 7, 8
    future = "2999-01-01T00:00:00+00:00"
    tickets = [
        _ticket(1, "2025-01-01T10:05:00Z", status="open", user_id=me, queue_id=1),
        _ticket(2, "2025-01-01T10:04:00Z", status="open", queue_id=2),
        _ticket(3, "2025-01-01T10:03:00Z", status="open", user_id=other, queue_id=1),
        _ticket(4, "2025-01-01T10:02:00Z", status="open", user_id=me, snoozed_until=future),
        _ticket(5, "2025-01-01T10:01:00Z"),
    ]
    await _node(
        """
        const [me, other] = [7, 8];
        const s = inbox.createState("open", { userId: me, role: "agent" });
        const byId = new Map(input.map((t) => [t.id, t]));
        const order = () => inbox.orderedTickets(s).map((t) => t.id);
        const matching = () => input.filter((t) => inbox.ticketMatches(s, t)).map((t) => t.id);
        for (const t of input) inbox.upsertTicket(s, t, { snapshot: true });
        assert.deepEqual(order(), [1, 2, 3]); // 4 is snoozed, 5 pending

        // The filters, as the list decides for tickets events bring in, and as the list query asks the server.
        s.filters.mine = true;
        assert.deepEqual(matching(), [1]);
        s.filters = { ...s.filters, mine: false, unassigned: true };
        assert.deepEqual(matching(), [2]);
        s.filters = { ...s.filters, unassigned: false, queueId: 1 };
        assert.deepEqual(matching(), [1, 3]);
        s.filters = { ...s.filters, queueId: null, snoozed: true };
        assert.deepEqual(matching(), [4]);
        s.filters = { mine: true, unassigned: false, snoozed: false, queueId: 1, q: "ana 9" };
        assert.equal(inbox.ticketListParams(s, "abc"),
          "status=open&limit=50&mine=true&queue_id=1&q=ana+9&cursor=abc");

        // A searched list is the server's: an event neither adds a ticket nor asks for one; listed ones follow.
        s.filters = { mine: false, unassigned: false, snoozed: false, queueId: null, q: "ana" };
        let changes = inbox.applyEvent(s, { type: "ticket.updated", ticket_id: 9, data: { ...byId.get(2), id: 9 } });
        assert.ok(!s.tickets.has(9));
        changes = inbox.applyEvent(s, { type: "ticket.updated", ticket_id: 10, data: { id: 10, status: "open" } });
        assert.deepEqual(changes.fetch, []);
        s.filters.q = "";

        // A whole ticket in an event joins the list directly; a partial one about a new ticket is fetched.
        changes = inbox.applyEvent(s, { type: "ticket.updated", ticket_id: 9, data: { ...byId.get(2), id: 9,
          priority: "urgent", was: { user_id: null, queue_id: 3 } } });
        assert.deepEqual([changes.tickets, changes.fetch], [true, []]);
        assert.deepEqual(order(), [9, 1, 2, 3]);
        assert.ok(!("was" in s.tickets.get(9)));
        assert.deepEqual(inbox.applyEvent(s, { type: "ticket.updated", data: { id: 11, status: "open" } }).fetch, [11]);

        // Snoozing takes a ticket out of the list; waking brings it back.
        inbox.applyEvent(s, { type: "ticket.updated", ticket_id: 3, data: { ...byId.get(3), snoozed_until: "2999-01-01T00:00:00Z" } });
        assert.deepEqual(order(), [9, 1, 2]);
        inbox.applyEvent(s, { type: "ticket.updated", ticket_id: 3, data: { ...byId.get(3), snoozed_until: null } });
        assert.deepEqual(order(), [9, 1, 2, 3]);

        // ticket.hidden: transferred away (or taken by someone else): it leaves the list and the open conversation.
        inbox.openTicket(s, 1);
        inbox.addOptimistic(s, "cid-1", "já volto");
        changes = inbox.applyEvent(s, { id: "9-0", type: "ticket.hidden", ticket_id: 1, data: { id: 1 } });
        assert.deepEqual(changes.hidden, { id: 1, number: 1 });
        assert.ok(changes.tickets && changes.conversation);
        assert.deepEqual([s.selectedId, s.selected, s.pending.size, s.lastEventId], [null, null, 0, "9-0"]);
        assert.deepEqual(order(), [9, 2, 3]);
        // The action's answer (or a list page) that arrives after the event does not bring it back ...
        assert.equal(inbox.upsertTicket(s, byId.get(1)), false);
        inbox.upsertTicket(s, byId.get(1), { snapshot: true });
        assert.deepEqual(order(), [9, 2, 3]);
        // ... an event about it does (the socket sends those only to viewers who see it), and so does a fresh read.
        inbox.applyEvent(s, { type: "ticket.updated", ticket_id: 1, data: byId.get(1) });
        assert.deepEqual(order(), [9, 1, 2, 3]);
        inbox.applyEvent(s, { type: "ticket.hidden", ticket_id: 2, data: { id: 2 } });
        assert.equal(inbox.applyEvent(s, { type: "ticket.hidden", ticket_id: 2, data: { id: 2 } }).hidden, null);
        assert.ok(inbox.upsertTicket(s, byId.get(2), { visible: true }));
        assert.deepEqual(order(), [9, 1, 2, 3]);

        // Presence of agents.
        changes = inbox.applyEvent(s, { type: "presence.updated", data: { user_id: other, presence: "away" } });
        assert.ok(changes.presence);
        assert.equal(s.presence.get(other), "away");

        // A contact edit reaches the list, the open conversation and the side panel; without a name of its own,
        // the WhatsApp name shows (as the server's coalesce(name, push_name)).
        inbox.openTicket(s, 3);
        s.contact = { id: 3, name: null, push_name: "Bia", phone: "+5511900000003", custom_fields: {} };
        const contact = { id: 3, name: null, push_name: "Beatriz", phone: "+5511900000003", wa_id: "x@s.whatsapp.net",
          blocked: true, custom_fields: { plano: "ouro" }, tags: [] };
        changes = inbox.applyEvent(s, { type: "contact.updated", ticket_id: null, data: contact });
        assert.ok(changes.tickets && changes.conversation && changes.contact);
        assert.equal(inbox.contactLabel(s.tickets.get(3).contact), "Beatriz");
        assert.equal(s.selected.contact.blocked, true);
        assert.equal(inbox.ticketActions(s.selected, { me, role: "agent" }).reply, false);
        assert.deepEqual(s.contact.custom_fields, { plano: "ouro" });
        assert.equal(inbox.contactLabel(s.tickets.get(1).contact), "+5511900000001"); // other contacts untouched

        // Merged into another contact: the panel follows the contact that absorbed it.
        changes = inbox.applyEvent(s, { type: "contact.deleted", data: { id: 3, merged_into: 12 } });
        assert.deepEqual([changes.contact, changes.contactMerged, s.contact], [true, 12, null]);
        assert.equal(inbox.applyEvent(s, { type: "contact.deleted", data: { id: 4, merged_into: 12 } }).contact, false);
        """,
        tickets,
    )


async def test_notes_media_and_quick_replies() -> None:
    await _node(
        """
        const s = inbox.createState("open");
        inbox.openTicket(s, 1);
        const view = () => inbox.orderedMessages(s).map((m) => [m.id ?? m.client_id, m.status, Boolean(m.private)]);

        // A private note shows at once; a reply with the same text is not it; its own echo adopts it.
        inbox.addOptimistic(s, "n1", "ligar amanhã", { private: true });
        assert.deepEqual(view(), [["n1", "NOTE", true]]);
        inbox.addMessage(s, { id: 10, ticket_id: 1, from_me: true, kind: "text", text: "ligar amanhã", private: false,
          client_id: null, status: "QUEUED" });
        assert.deepEqual(view(), [[10, "QUEUED", false], ["n1", "NOTE", true]]);
        inbox.applyEvent(s, { type: "message.created", ticket_id: 1, data: { id: 11, ticket_id: 1, from_me: true,
          kind: "text", text: "ligar amanhã", private: true, client_id: "n1", status: "NOTE" } });
        assert.deepEqual(view(), [[10, "QUEUED", false], [11, "NOTE", true]]);
        inbox.resolveOptimistic(s, "n1", { id: 11, ticket_id: 1, from_me: true, kind: "text", text: "ligar amanhã",
          private: true, client_id: "n1", status: "NOTE" });
        assert.deepEqual(view(), [[10, "QUEUED", false], [11, "NOTE", true]]);

        // A file: "sending" until the upload answers, then the stored media.
        inbox.addOptimistic(s, "f1", null, { kind: "image", media: { mime: "image/png", size: 70, filename: "a.png",
          state: "uploading" } });
        assert.deepEqual(inbox.mediaView(inbox.orderedMessages(s).at(-1)), { show: "progress",
          label: "Sending a.png…" });
        inbox.resolveOptimistic(s, "f1", { id: 12, ticket_id: 1, from_me: true, kind: "image", text: null,
          client_id: "f1", status: "QUEUED", media: { mime: "image/png", size: 70, filename: "a.png",
          state: "stored", url: "/api/v1/tickets/1/messages/12/media" } });
        assert.equal(s.pending.size, 0);
        assert.equal(inbox.mediaView(s.messages.get(12)).show, "image");

        // How media shows, by state, type and size.
        const media = (kind, fields) => inbox.mediaView({ id: 5, kind, media: { mime: "image/png", size: 1000,
          filename: null, state: "stored", error: null, url: "/m/5", ...fields } });
        assert.equal(inbox.mediaView({ id: 5, kind: "text", media: null }), null);
        assert.deepEqual(media("image", { state: "pending", url: null }), { show: "progress",
          label: "Photo on its way from WhatsApp…" });
        assert.deepEqual(media("image", { state: "failed", url: null, error: "timeout" }), { show: "error",
          label: "The file could not be downloaded: timeout" });
        assert.equal(media("video", { state: "rejected", url: null, error: "too large" }).label,
          "The file was not kept: too large");
        assert.deepEqual(media("image", { state: "stored", url: null }), { show: "error",
          label: "The file is not available." });
        assert.deepEqual(media("image", { state: "mystery" }).show, "error");
        assert.deepEqual(media("image", {}), { show: "image", url: "/m/5", autoload: true,
          label: "Show Photo (1000 B)", filename: "image-5" });
        assert.equal(media("sticker", { mime: "image/webp", size: null }).autoload, true);
        assert.equal(media("image", { mime: "image/gif" }).show, "file"); // served as a download, not inline
        assert.deepEqual(media("audio", { mime: "audio/ogg; codecs=opus" }).show, "audio");
        const video = media("video", { mime: "video/mp4", size: 20 * 1024 * 1024 });
        assert.deepEqual([video.show, video.autoload, video.label], ["video", false, "Show Video (20.0 MB)"]);
        assert.deepEqual(media("document", { mime: "application/pdf", size: 12 * 1024, filename: "orçamento.pdf" }),
          { show: "file", url: "/m/5", autoload: false, label: "Download orçamento.pdf (12 KB)",
            filename: "orçamento.pdf" });
        assert.equal(media("document", { mime: "application/pdf", size: null }).label, "Download Document");
        assert.deepEqual(["image/jpeg", "video/3gpp", "audio/mpeg", "application/zip", ""].map(inbox.kindForMime),
          ["image", "video", "audio", "document", "document"]);

        // Quick replies: "/" and a shortcut prefix at the caret, at the start or after a space.
        const q = inbox.quickReplyQuery;
        assert.deepEqual(q("/ol"), { start: 0, end: 3, prefix: "ol" });
        assert.deepEqual(q("Oi /OB"), { start: 3, end: 6, prefix: "ob" });
        assert.deepEqual(q("/"), { start: 0, end: 1, prefix: "" });
        assert.equal(q("a/b"), null);
        assert.equal(q("/ola mundo"), null);
        assert.deepEqual(q("/ola mundo", 4), { start: 0, end: 4, prefix: "ola" });
        assert.equal(q("/ola mundo", 2), null); // inside the word
        assert.equal(q("/olá"), null); // shortcuts are [a-z0-9_-]
        const replies = [
          { id: 1, shortcut: "ola", scope: "tenant", text: "Olá!" },
          { id: 2, shortcut: "ola", scope: "user", text: "Oi, tudo bem?" },
          { id: 3, shortcut: "obrigado", scope: "queue", text: "Obrigado!" },
          { id: 4, shortcut: "ola-tarde", scope: "tenant", text: "Boa tarde!" },
          { id: 5, shortcut: "preco", scope: "queue", text: "Nossos preços" },
        ];
        const ids = (prefix, limit) => inbox.matchQuickReplies(replies, prefix, limit).map((r) => r.id);
        assert.deepEqual(ids("ol"), [2, 1, 4]); // shorter first, personal before tenant-wide
        assert.deepEqual(ids("OLA-"), [4]);
        assert.deepEqual(ids(""), [3, 2, 1, 4, 5]);
        assert.deepEqual(ids("", 2), [3, 2]);
        assert.deepEqual(ids("x"), []);
        assert.deepEqual(inbox.applyQuickReply("Oi /ob amanhã", q("Oi /ob amanhã", 6), replies[2]),
          { text: "Oi Obrigado! amanhã", caret: 12 });
        """
    )


def _jwt(payload: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(payload)}.c2lnbmF0dXJl"


async def test_ticket_actions_and_their_bodies() -> None:
    await _node(
        """
        const [me, other] = [7, 8];
        const t = (fields) => ({ id: 1, status: "open", user_id: me, queue_id: 1, connection_id: 1,
          snoozed_until: null, contact: { id: 1, blocked: false }, ...fields });
        const pick = (a) => Object.keys(a).filter((k) => a[k]).sort();
        const agent = { me, role: "agent" };
        const supervisor = { me, role: "supervisor" };
        assert.deepEqual(pick(inbox.ticketActions(t({ status: "pending", user_id: null }), agent)),
          ["accept", "close", "priority", "reply", "snooze", "tags", "transfer"]);
        assert.deepEqual(pick(inbox.ticketActions(t({}), agent)), ["close", "priority", "reply", "snooze", "tags",
          "transfer"]);
        assert.ok(inbox.ticketActions(t({ user_id: other }), supervisor).accept); // take it from another agent
        assert.ok(!inbox.ticketActions(t({ user_id: other }), agent).accept);
        assert.deepEqual(pick(inbox.ticketActions(t({ status: "closed" }), agent)), ["priority", "reopen", "tags"]);
        const snoozed = inbox.ticketActions(t({ snoozed_until: "2999-01-01T00:00:00Z" }), agent);
        assert.deepEqual([snoozed.snooze, snoozed.wake], [false, true]);
        assert.ok(!inbox.ticketActions(t({ contact: { id: 1, blocked: true } }), agent).reply);

        // Transfer: only what changes, at least one target, the note trimmed.
        const ticket = t({});
        assert.deepEqual(inbox.transferBody(ticket, { queueId: "2" }), { body: { queue_id: 2 } });
        assert.deepEqual(inbox.transferBody(ticket, { userId: "8", note: "  cliente VIP  " }),
          { body: { user_id: 8, note: "cliente VIP" } });
        assert.deepEqual(inbox.transferBody(ticket, { queueId: "2", userId: "8", connectionId: "3" }),
          { body: { queue_id: 2, user_id: 8, connection_id: 3 } });
        assert.deepEqual(inbox.transferBody(ticket, { queueId: "1", note: "só a nota" }),
          { error: inbox.STRINGS.transfer_nothing });

        // Close: empty farewell = the workspace's; "no farewell" = ""; the survey only when chosen.
        assert.deepEqual(inbox.closeBody({}), {});
        assert.deepEqual(inbox.closeBody({ farewell: "  Até logo!  ", survey: null }), { farewell: "Até logo!" });
        assert.deepEqual(inbox.closeBody({ farewell: "x", noFarewell: true, survey: false }), { farewell: "",
          survey: false });
        assert.deepEqual(inbox.closeBody({ survey: true }), { survey: true });

        // Custom fields, checked like the API does.
        assert.deepEqual(inbox.customFieldsFrom([{ name: "plano", value: "ouro" }, { name: " ", value: "" },
          { name: " cidade ", value: "Recife" }]), { fields: { plano: "ouro", cidade: "Recife" } });
        assert.equal(inbox.customFieldsFrom([{ name: "a/b", value: "x" }]).index, 0);
        assert.equal(inbox.customFieldsFrom([{ name: "", value: "órfão" }]).index, 0);
        assert.deepEqual(inbox.customFieldsFrom([{ name: "a", value: "1" }, { name: "a", value: "2" }]),
          { error: "The field “a” appears twice.", index: 1 });
        assert.equal(inbox.customFieldsFrom([{ name: "a", value: "x".repeat(1025) }]).index, 0);
        assert.equal(inbox.customFieldsFrom(Array.from({ length: 51 }, (_, i) => ({ name: `f${i}`, value: "v" }))).index, 50);

        // The token's claims (for showing controls; the API checks for itself).
        assert.deepEqual(inbox.tokenClaims(input.token), { userId: 42, role: "supervisor" });
        assert.deepEqual(inbox.tokenClaims("garbage"), { userId: null, role: "" });
        assert.deepEqual([inbox.isLead("admin"), inbox.isLead("supervisor"), inbox.isLead("agent")], [true, true, false]);

        // Problem codes to words.
        assert.equal(inbox.errorText("ticket_closed", "x"), inbox.STRINGS.errors.ticket_closed);
        assert.equal(inbox.errorText("media_type_mismatch"), "The file's content does not match its type.");
        assert.equal(inbox.errorText("http_403"), inbox.STRINGS.errors.permission_denied);
        assert.equal(inbox.errorText("something_new", "the server's words"), "the server's words");
        assert.equal(inbox.errorText(null), inbox.STRINGS.unknown_error);

        // Waiting times, priorities, tag colors, sizes, presence frames, timestamps.
        assert.deepEqual([30, 125, 3600, 3720, 86400, 90000].map(inbox.shortDuration),
          ["<1 min", "2 min", "1 h", "1 h 2 min", "1 d", "1 d 1 h"]);
        const waiting = { waiting_since: "2025-01-01T10:00:00.000001+00:00", status: "pending" };
        assert.equal(inbox.waitingLabel(waiting, Date.parse("2025-01-01T10:12:30Z")), "waiting 12 min");
        assert.equal(inbox.waitingLabel({ ...waiting, status: "closed" }), "");
        assert.equal(inbox.waitingLabel({ waiting_since: null, status: "open" }), "");
        assert.deepEqual(inbox.priorityBadge("urgent"), { label: "Urgent", className: "priority-urgent" });
        assert.deepEqual([inbox.priorityBadge("normal"), inbox.priorityBadge("bogus")], [null, null]);
        assert.deepEqual(["#C62828", "red", "#fff;background:url(x)", null].map(inbox.tagColor),
          ["#C62828", null, null, null]);
        assert.deepEqual([0, 1023, 2048, 5 * 1024 * 1024, -1].map(inbox.formatBytes),
          ["0 B", "1023 B", "2 KB", "5.0 MB", ""]);
        assert.equal(inbox.presenceFrame("away"), '{"type":"presence","status":"away"}');
        assert.equal(inbox.presenceFrame("bogus"), '{"type":"presence","status":"online"}');
        assert.equal(inbox.isoMicros("2025-01-01T00:00:00.000001Z") - inbox.isoMicros("2025-01-01T00:00:00Z"), 1);
        assert.equal(inbox.isoMicros("2025-01-01T00:00:00-03:00"), inbox.isoMicros("2025-01-01T03:00:00.000000+00:00"));
        assert.deepEqual([inbox.isoMicros(null), inbox.isoMicros("soon")], [0, 0]);
        """,
        {"token": _jwt({"sub": "42", "tid": 3, "role": "supervisor", "name": "João Ünal"})},
    )


def _directory() -> dict[str, Any]:
    """A team directory as GET /api/v1/directory answers it (viewer 7 is in queue 1 only)."""
    return {
        "queues": [{"id": 1, "name": "Suporte", "color": "#128c7e", "strategy": "manual", "member_ids": [7, 8]},
                   {"id": 2, "name": "Vendas", "color": "#c62828", "strategy": "round_robin", "member_ids": [9]}],
        "people": [{"id": 1, "name": "Admin", "role": "admin", "presence": "offline"},
                   {"id": 8, "name": "Ana", "role": "agent", "presence": "online"},
                   {"id": 9, "name": "Bia", "role": "supervisor", "presence": "away"},
                   {"id": 7, "name": "Zé", "role": "agent", "presence": "online"}],
        "connections": [{"id": 1, "name": "Main", "business_number": "+5511900000001", "provider": "simulator",
                         "state": "CONNECTED"},
                        {"id": 2, "name": "Reserva", "business_number": "+5511900000002", "provider": "simulator",
                         "state": "LOGGED_OUT"}],
        "close_defaults": {"farewell_message": "Obrigado pelo contato!", "csat_enabled": True},
        "timezone": "America/Sao_Paulo",
    }  # fmt: skip


async def test_directory_names_transfers_and_close_defaults() -> None:
    """The team directory is the same for every role: names wherever a user id shows, every queue, person and
    number in the transfer dialog, and the close dialog starting at what closing does."""
    await _node(
        """
        const [me, admin, ana, bia, gone] = [7, 1, 8, 9, 10];
        const s = inbox.createState("open", { userId: me, role: "agent" });
        assert.deepEqual([s.directoryLoaded, inbox.personName(s, ana)], [false, null]);
        inbox.applyDirectory(s, input);
        assert.equal(s.directoryLoaded, true);
        assert.deepEqual([ana, gone, null].map((id) => inbox.personName(s, id)), ["Ana", null, null]);
        assert.deepEqual([s.presence.get(ana), s.presence.get(bia)], ["online", "away"]);
        assert.equal(s.timezone, "America/Sao_Paulo");

        // The list's queue filter: the viewer's own queues (their list holds no other); every queue for admins.
        assert.deepEqual(inbox.filterQueues(s).map((q) => q.name), ["Suporte"]);
        const boss = inbox.createState("open", { userId: admin, role: "admin" });
        inbox.applyDirectory(boss, input);
        assert.deepEqual(inbox.filterQueues(boss).map((q) => q.name), ["Suporte", "Vendas"]);

        // Transfer, as an agent: a queue they are not in, any person (the chosen queue's members), any number.
        const ticket = { id: 1, status: "open", queue_id: 1, user_id: me, connection_id: 1 };
        let choices = inbox.transferChoices(s, ticket);
        assert.deepEqual(choices.queues.map((q) => q.name), ["Vendas"]);
        assert.deepEqual(choices.people.map(inbox.personOption), ["Admin — offline", "Ana — online", "Bia — away"]);
        assert.deepEqual(inbox.transferChoices(s, ticket, "2").people.map((p) => p.id), [bia]);
        assert.deepEqual(choices.connections.map(inbox.connectionOption), ["Reserva (+5511900000002) — logged out"]);
        assert.deepEqual(inbox.transferBody(ticket, { queueId: "2", userId: String(bia), connectionId: "2" }),
          { body: { queue_id: 2, user_id: bia, connection_id: 2 } });

        // Presence and session events keep the people and the numbers current.
        let changes = inbox.applyEvent(s, { type: "presence.updated", data: { user_id: bia, presence: "online" } });
        assert.ok(changes.presence);
        assert.equal(s.people.get(bia).presence, "online");
        assert.equal(inbox.personOption(inbox.transferChoices(s, ticket, "2").people[0]), "Bia — online");
        inbox.applyEvent(s, { type: "presence.updated", data: { user_id: gone, presence: "online" } });
        assert.deepEqual([s.presence.get(gone), s.people.has(gone)], ["online", false]);
        changes = inbox.applyEvent(s, { type: "session.updated", data: { connection_id: 2, state: "CONNECTED" } });
        assert.ok(changes.sessions);
        assert.equal(inbox.connectionOption(inbox.transferChoices(s, ticket).connections[0]), "Reserva (+5511900000002)");

        // The activity log names who did it (not the viewer) and where it went.
        const line = (action, actor_id, details) => inbox.activityText(s, { id: 1, at: "2025-01-01T00:00:00Z", action,
          actor_id, details });
        assert.equal(line("transferred", ana, { from: { queue_id: 1, user_id: me, connection_id: 1 },
          to: { queue_id: 2, user_id: bia, connection_id: 1 } }), "Transferred → Vendas, Bia · Ana");
        assert.equal(line("transferred", me, { from: { queue_id: 1, user_id: ana, connection_id: 1 },
          to: { queue_id: 1, user_id: null, connection_id: 2 } }), "Transferred → Reserva");
        assert.equal(line("assigned", null, { user_id: me, by: "distribution" }), "Assigned → you");
        assert.equal(line("assigned", bia, { user_id: ana }), "Assigned → Ana · Bia");
        assert.equal(line("accepted", me, { user_id: me }), "Accepted");
        assert.equal(line("routed", null, { queue_id: 2 }), "Routed by the chatbot → Vendas");
        assert.equal(line("priority", gone, { priority: "high" }), "Priority changed");
        assert.equal(line("something_new", null, {}), "something_new");

        // Close: the workspace's farewell is the placeholder, the survey box starts as the workspace has it, and
        // only what the agent changes is sent.
        const customer = { id: 1, contact: { id: 1, blocked: false, wa_id: "5511900000001@s.whatsapp.net" } };
        const view = inbox.closeDialogState(s.closeDefaults, customer);
        assert.deepEqual(view, { farewell: "Obrigado pelo contato!", survey: true, placeholder: "Obrigado pelo contato!",
          farewellEditable: true, noFarewellShown: true, surveyEditable: true, hint: inbox.STRINGS.close_farewell_hint });
        assert.deepEqual(inbox.closeBody({ survey: true }, view), {});
        assert.deepEqual(inbox.closeBody({ survey: false }, view), { survey: false });
        assert.deepEqual(inbox.closeBody({ farewell: "  Até!  ", survey: true }, view), { farewell: "Até!" });
        assert.deepEqual(inbox.closeBody({ farewell: "x", noFarewell: true, survey: true }, view), { farewell: "" });
        const quiet = inbox.closeDialogState({ farewell_message: "", csat_enabled: false }, customer);
        assert.deepEqual([quiet.placeholder, quiet.noFarewellShown, quiet.survey, quiet.hint],
          [inbox.STRINGS.close_farewell_none, false, false, ""]);
        assert.deepEqual(inbox.closeBody({ noFarewell: true, survey: false }, quiet), {});
        assert.deepEqual(inbox.closeBody({ survey: true }, quiet), { survey: true });
        // Groups are never asked for a rating; a blocked contact gets nothing (as the server decides).
        const group = inbox.closeDialogState(s.closeDefaults, { contact: { blocked: false, wa_id: "1203@g.us" } });
        assert.deepEqual([group.survey, group.surveyEditable, group.farewell], [false, false, "Obrigado pelo contato!"]);
        assert.ok(group.hint.endsWith(inbox.STRINGS.close_group));
        const blocked = inbox.closeDialogState(s.closeDefaults, { contact: { ...customer.contact, blocked: true } });
        assert.deepEqual(blocked, { farewell: "", survey: false, placeholder: "", farewellEditable: false,
          noFarewellShown: false, surveyEditable: false, hint: inbox.STRINGS.close_blocked });
        assert.deepEqual(inbox.closeBody({ survey: null }, blocked), {});
        assert.equal(inbox.closeDialogState(null, customer), null);
        """,
        _directory(),
    )


async def test_snooze_and_dashboard_periods_are_local_time() -> None:
    """Snoozing to "tomorrow 9:00" and the dashboard's "today" follow the agent's own clock (here São Paulo, UTC-3),
    and go to the API with their zone."""
    await _node(
        """
        const now = new Date("2025-01-31T23:30:00-03:00");
        assert.equal(inbox.snoozeUntil("hour", now), "2025-02-01T03:30:00.000Z");
        assert.equal(inbox.snoozeUntil("tomorrow", now), "2025-02-01T12:00:00.000Z");
        assert.equal(inbox.snoozeUntil("custom", now, "2025-02-03T14:15"), "2025-02-03T17:15:00.000Z");
        assert.equal(inbox.snoozeUntil("custom", now, "2025-01-01T10:00"), null); // the past
        assert.equal(inbox.snoozeUntil("custom", now, ""), null);
        assert.equal(inbox.snoozeUntil("someday", now), null);

        const at = new Date("2025-03-10T15:00:00-03:00");
        const period = (preset, custom) => dashboard.dashboardPeriod(preset, at, custom);
        assert.deepEqual(period("today"), { from: "2025-03-10T03:00:00.000Z", to: "2025-03-10T18:00:00.000Z" });
        assert.deepEqual(period("7d"), { from: "2025-03-03T18:00:00.000Z", to: "2025-03-10T18:00:00.000Z" });
        assert.equal(period("30d").from, "2025-02-08T18:00:00.000Z");
        assert.equal(period("month").from, "2025-03-01T03:00:00.000Z");
        assert.deepEqual(period("custom", { from: "2025-03-01", to: "2025-03-31" }),
          { from: "2025-03-01T03:00:00.000Z", to: "2025-04-01T03:00:00.000Z" }); // the last day counts whole
        assert.deepEqual(period("custom", { from: "2025-03-02", to: "2025-03-01" }),
          { error: dashboard.STRINGS.invalid_period });
        assert.deepEqual(period("custom", { from: "2024-01-01", to: "2025-03-01" }),
          { error: dashboard.STRINGS.period_too_long });
        assert.deepEqual(period("custom", { from: "", to: "2025-03-01" }), { error: dashboard.STRINGS.invalid_period });
        assert.equal(dashboard.dashboardQuery({ from: "2025-03-01T03:00:00.000Z", to: "2025-04-01T03:00:00.000Z" },
          { queueId: "2", userId: "", connectionId: "5" }),
          "from=2025-03-01T03%3A00%3A00.000Z&to=2025-04-01T03%3A00%3A00.000Z&queue_id=2&connection_id=5");

        assert.deepEqual([null, 42.4, 185, 7800, 93600].map(dashboard.formatDuration),
          ["—", "42 s", "3 min 5 s", "2 h 10 min", "1 d 2 h"]);
        const stats = (avg) => ({ count: 1, avg_s: avg, avg_business_s: avg });
        const row = { id: null, name: null, created: 3, closed: 2, open_now: 1, waiting: stats(30),
          first_response: stats(null), resolution: stats(3600), csat_average: 4.5, csat_answered: 2 };
        assert.deepEqual(dashboard.breakdownCells(row, "agent"),
          ["Unassigned", "3", "2", "1", "30 s", "—", "1 h 0 min", "4.50 (2)"]);
        assert.equal(dashboard.breakdownLabel({ ...row, id: null }, "queue"), "No queue");
        assert.equal(dashboard.breakdownLabel({ ...row, id: 4, name: "Vendas" }, "queue"), "Vendas");
        assert.equal(dashboard.breakdownLabel({ ...row, id: 4, name: null }, "connection"), "#4");
        assert.equal(dashboard.breakdownCells({ ...row, csat_answered: 0 }, "agent")[7], "—");
        assert.equal(dashboard.dashboardError(403, "Permission denied"), dashboard.STRINGS.not_allowed);
        assert.equal(dashboard.dashboardError(500, "boom"), "Could not load the dashboard: boom");
        """,
        tz="America/Sao_Paulo",
    )


# --- the inbox against the real API -----------------------------------------------------------------------------


async def _route(redis: Redis, keys: StreamKeys, tenant: TenantInfo, connection_id: int, *events: DriverEvent) -> None:
    """What a session host reports, through the router into the database and the realtime stream."""
    envelopes = [Envelope(event_id=uuid.uuid4().hex, tenant_id=tenant.id, connection_id=connection_id,
                          provider="simulator", received_at=utcnow(), event=event) for event in events]  # fmt: skip
    await append_events(redis, keys, envelopes)
    worker = RouterWorker(redis, keys)
    for shard in range(keys.shards):
        consumer = worker.consumer(shard)
        await consumer.ensure_group()
        while entries := await consumer.read(500, block_ms=None):
            await worker.process(consumer, entries)


async def test_inbox_logic_on_real_api_answers_and_events(settings: Settings, make_tenant: MakeTenant,
                                                          redis_url: str) -> None:  # fmt: skip
    app_settings = msgspec.structs.replace(settings, redis_prefix=f"{settings.redis_prefix}:{uuid.uuid4().hex[:6]}")
    keys = StreamKeys(app_settings.redis_prefix, app_settings.stream_shards)
    tenant = await make_tenant("ui")
    async with tenant_context(tenant.slug) as session:
        connection = await create_connection(
            session, name="Main", provider="simulator", business_number="+5511900000091"
        )
    redis = Redis.from_url(redis_url)
    chat = "5511944440001@s.whatsapp.net"
    try:
        await _route(redis, keys, tenant, connection.id, InboundMessage(
            provider_message_id="3A0001", chat_id=chat, chat_id_raw="5511944440001@c.us", sender_id=chat,
            sender_name="Ana", text="Oi, preciso de ajuda", occurred_at=utcnow()))  # fmt: skip

        async with live_server(_mounted(create_app(app_settings))) as base, httpx.AsyncClient(base_url=base) as client:
            # The login page's fields are what the login API takes.
            form = _parse((await client.get("/login")).text).inputs
            assert form == ["tenant", "email", "password"]
            values = {"tenant": tenant.slug, "email": f"admin@{tenant.slug}.example", "password": "correct horse"}
            login = await client.post("/api/v1/auth/login", json={name: values[name] for name in form})
            assert login.status_code == 200, login.text
            auth = {"Authorization": f"Bearer {login.json()['access_token']}"}

            # The inbox page may open the events socket of its own host, and the socket accepts the page's Origin.
            inbox = await client.get("/inbox")
            ws_base = base.replace("http://", "ws://")
            assert ws_base in _csp(inbox.headers["content-security-policy"])["connect-src"]

            tickets = (
                await client.get("/api/v1/tickets", params={"status": "pending", "limit": 50}, headers=auth)
            ).json()
            ticket_id = tickets["items"][0]["id"]
            messages = (await client.get(f"/api/v1/tickets/{ticket_id}/messages", params={"limit": 50},
                                         headers=auth)).json()  # fmt: skip
            ws_ticket = (await client.post("/api/v1/auth/ws-ticket", headers=auth)).json()["ticket"]
            async with websockets.connect(f"{ws_base}/api/v1/events?ticket={ws_ticket}", origin=Origin(base)) as socket:
                client_id = str(uuid.uuid4())
                reply = await client.post(f"/api/v1/tickets/{ticket_id}/messages", headers=auth,
                                          json={"text": "Olá! Já vou ajudar.", "client_id": client_id})  # fmt: skip
                assert reply.status_code == 201, reply.text
                await _route(redis, keys, tenant, connection.id,
                             MessageStatus(provider_message_id="3EB0UI", status="SENT", chat_id=chat,
                                           client_message_id=reply.json()["id"], occurred_at=utcnow()),
                             MessageStatus(provider_message_id="3EB0UI", status="READ", chat_id=chat,
                                           occurred_at=utcnow()))  # fmt: skip
                frames: list[dict[str, Any]] = []
                while not any(f["type"] == "message.updated" and f["data"]["status"] == "READ" for f in frames):
                    frames.append(json.loads(await asyncio.wait_for(socket.recv(), 10)))
    finally:
        await redis.aclose()

    state = await _node(
        """
        const s = inbox.createState("pending");
        for (const t of input.tickets.items) inbox.upsertTicket(s, t, { snapshot: true });
        const listed = inbox.orderedTickets(s).map((t) => t.id);
        inbox.openTicket(s, input.ticket_id);
        for (const m of input.messages.items) inbox.addMessage(s, m);
        inbox.addOptimistic(s, input.client_id, input.text);
        for (const frame of input.frames) inbox.applyEvent(s, frame);
        inbox.resolveOptimistic(s, input.client_id, input.reply);
        const openTab = inbox.createState("open");
        const openFetches = input.frames.flatMap((frame) => inbox.applyEvent(openTab, frame).fetch);
        result = {
          listed,
          pending_tab: inbox.orderedTickets(s).map((t) => t.id),
          selected: { status: s.selected.status, preview: s.selected.last_message_preview },
          messages: inbox.orderedMessages(s).map((m) => [m.text, m.from_me, m.status]),
          optimistic: s.pending.size,
          last_event_id: s.lastEventId,
          open_fetches: openFetches,
          open_tab: inbox.orderedTickets(openTab).map((t) => t.id),
        };
        """,
        {
            "tickets": tickets,
            "ticket_id": ticket_id,
            "messages": messages,
            "client_id": client_id,
            "text": "Olá! Já vou ajudar.",
            "frames": frames,
            "reply": reply.json(),
        },
    )
    assert state == {
        "listed": [ticket_id],
        "pending_tab": [],  # replying accepted the ticket: it moved to Open
        "selected": {"status": "open", "preview": "Olá! Já vou ajudar."},
        "messages": [["Oi, preciso de ajuda", False, "RECEIVED"], ["Olá! Já vou ajudar.", True, "READ"]],
        "optimistic": 0,
        "last_event_id": [f["id"] for f in frames if "id" in f][-1],
        "open_fetches": [],  # the Open tab learns of it from the event, which carries the whole ticket
        "open_tab": [ticket_id],
    }


async def _login(client: httpx.AsyncClient, slug: str, email: str) -> tuple[str, dict[str, str]]:
    response = await client.post("/api/v1/auth/login", json={"tenant": slug, "email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    return token, {"Authorization": f"Bearer {token}"}


async def _read_until(socket: Any, frames: list[dict[str, Any]], done: Callable[[dict[str, Any]], bool]) -> None:
    """Append the socket's frames to ``frames`` until one satisfies ``done``."""
    while not any(done(f) for f in frames):
        frames.append(json.loads(await asyncio.wait_for(socket.recv(), 10)))


async def test_inbox_actions_presence_and_hidden_tickets_on_the_real_api(settings: Settings, make_tenant: MakeTenant,
                                                                        redis_url: str) -> None:  # fmt: skip
    """An agent works a ticket the way the inbox does — list, accept, read, priority, tags, note, snooze, quick
    reply, photo, contact edit, away and back — then transfers it to a queue she is not in, offered by the team
    directory, and closes another ticket from a dialog that shows the workspace's farewell: the page's state, fed
    with the API's answers and the socket's frames, ends as the agent should see it."""
    app_settings = msgspec.structs.replace(settings, redis_prefix=f"{settings.redis_prefix}:{uuid.uuid4().hex[:6]}")
    keys = StreamKeys(app_settings.redis_prefix, app_settings.stream_shards)
    tenant = await make_tenant("uiact", plan="pro")  # two numbers
    farewell = "Obrigado pelo contato! Até a próxima."
    async with tenant_context(tenant.slug) as session:
        connection = await create_connection(session, name="Main", provider="simulator",
                                             business_number="+5511900000092")  # fmt: skip
        await create_connection(session, name="Reserva", provider="simulator", business_number="+5511900000093",
                                desired_state="stopped")  # fmt: skip
        conn = session.conn
        ana, bia = [await conn.fetchval("INSERT INTO users (email, name, role, password_hash) VALUES ($1, $2, 'agent',"
                                        " $3) RETURNING id", f"{n.lower()}@ui.io", n, hash_password(PASSWORD))
                    for n in ("Ana", "Bia")]  # fmt: skip
        support = await conn.fetchval("INSERT INTO queues (name) VALUES ('Suporte') RETURNING id")
        await conn.execute("INSERT INTO queue_members (queue_id, user_id) VALUES ($1, $2)", support, bia)
        vip = await conn.fetchval("INSERT INTO tags (name, color) VALUES ('VIP', '#c62828') RETURNING id")
    redis = Redis.from_url(redis_url)
    chats = [f"55119444400{i:02d}@s.whatsapp.net" for i in range(3)]
    names = ["Carla Souza", "Davi", "Eva"]
    start = utcnow() - timedelta(minutes=10)
    try:
        await _route(redis, keys, tenant, connection.id, *[InboundMessage(
            provider_message_id=f"3A1{i}", chat_id=chat, chat_id_raw=chat, sender_id=chat, sender_name=names[i],
            text=f"Olá, sou {names[i]}", occurred_at=start + timedelta(minutes=i)) for i, chat in enumerate(chats)])  # fmt: skip
        async with tenant_context(tenant.slug) as session:
            by_chat = {r["wa_id"]: r["id"] for r in await session.conn.fetch(
                "SELECT t.id, c.wa_id FROM tickets t JOIN contacts c ON c.id = t.contact_id")}  # fmt: skip
        first, urgent, low = (by_chat[c] for c in chats)

        async with live_server(_mounted(create_app(app_settings))) as base, httpx.AsyncClient(base_url=base) as client:
            _, admin = await _login(client, tenant.slug, f"admin@{tenant.slug}.example")
            rules = await client.patch("/api/v1/settings", headers=admin,
                                       json={"farewell_message": farewell, "csat_enabled": True})  # fmt: skip
            assert rules.status_code == 200, rules.text
            for ticket_id, priority in ((urgent, "urgent"), (low, "low")):
                answer = await client.patch(f"/api/v1/tickets/{ticket_id}", headers=admin, json={"priority": priority})
                assert answer.status_code == 200, answer.text
            token, auth = await _login(client, tenant.slug, "ana@ui.io")
            pending = (await client.get("/api/v1/tickets", params={"status": "pending", "limit": 50},
                                        headers=auth)).json()  # fmt: skip
            messages = (await client.get(f"/api/v1/tickets/{first}/messages", params={"limit": 50},
                                         headers=auth)).json()  # fmt: skip
            away, online = await _node("result = [inbox.presenceFrame('away'), inbox.presenceFrame('online')];")

            ws_ticket = (await client.post("/api/v1/auth/ws-ticket", headers=auth)).json()["ticket"]
            ws_url = f"{base.replace('http://', 'ws://')}/api/v1/events?ticket={ws_ticket}"
            frames: list[dict[str, Any]] = []
            async with websockets.connect(ws_url, origin=Origin(base)) as socket:

                def presence_is(status: str) -> Callable[[dict[str, Any]], bool]:
                    return lambda f: f["type"] == "presence.updated" and f["data"] == {"user_id": ana,
                                                                                        "presence": status}  # fmt: skip

                await socket.send(away)  # the header's status switch
                await _read_until(socket, frames, presence_is("away"))
                await socket.send(online)
                await _read_until(socket, frames, presence_is("online"))

                async def act(method: str, path: str, **kwargs: Any) -> Any:
                    response = await client.request(method, f"/api/v1/tickets/{first}{path}", headers=auth, **kwargs)
                    assert response.status_code in (200, 201), response.text
                    return response.json()

                accepted = await act("POST", "/accept")
                read = await act("POST", "/read")
                await act("PATCH", "", json={"priority": "high"})
                tagged = await act("PUT", "/tags", json={"tag_ids": [vip]})
                note_id = str(uuid.uuid4())
                note = await act("POST", "/notes", json={"text": "Cliente antiga, tratar bem.", "client_id": note_id})
                snooze = (utcnow() + timedelta(hours=1)).isoformat()
                snoozed = await act("PATCH", "", json={"snoozed_until": snooze})
                await act("PATCH", "", json={"snoozed_until": None})
                for shortcut, body in (("ola", "Olá {{contact.first_name}}!"), ("obrigado", "Obrigado!")):
                    saved = await client.post("/api/v1/quick-replies", headers=auth,
                                              json={"shortcut": shortcut, "body": body})  # fmt: skip
                    assert saved.status_code == 201, saved.text
                quick = await act("GET", "/quick-replies")
                photo_id = str(uuid.uuid4())
                photo = await act("POST", "/media", files={"file": ("foto.png", PNG, "image/png")},
                                  data={"client_id": photo_id})  # fmt: skip
                served = await client.get(photo["media"]["url"], headers=auth)
                assert (served.status_code, served.headers["content-type"], served.content) == (200, "image/png", PNG)
                contact_id = accepted["contact"]["id"]
                edited = await client.patch(f"/api/v1/contacts/{contact_id}", headers=auth,
                                            json={"name": "Carla S.", "custom_fields": {"plano": "ouro"}})  # fmt: skip
                assert edited.status_code == 200, edited.text
                transferred = await act("POST", "/transfer", json={"queue_id": support, "note": "É com o suporte."})
                await _read_until(socket, frames, lambda f: f["type"] == "ticket.hidden" and f["ticket_id"] == first)

            # The team directory, as the agent reads it: every queue (hers or not), the people, every number and
            # the close defaults an agent may not read from /settings.
            directory = (await client.get("/api/v1/directory", headers=auth)).json()
            assert (await client.get("/api/v1/settings", headers=auth)).status_code == 403
            assert (await client.get("/api/v1/users", headers=auth)).status_code == 403
            urgent_events = (await client.get(f"/api/v1/tickets/{urgent}/events", headers=auth)).json()
            # Closing the urgent ticket from the dialog, untouched: what it showed is what the customer gets.
            dialog = await _node(
                """
                const s = inbox.createState("pending", inbox.tokenClaims(input.token));
                inbox.applyDirectory(s, input.directory);
                const view = inbox.closeDialogState(s.closeDefaults, input.ticket);
                result = { view, body: inbox.closeBody({ farewell: "", noFarewell: false, survey: view.survey }, view),
                  declined: inbox.closeBody({ farewell: "", noFarewell: false, survey: false }, view) };
                """,
                {"token": token, "directory": directory, "ticket": next(t for t in pending["items"] if t["id"] == urgent)},
            )  # fmt: skip
            closed = await client.post(f"/api/v1/tickets/{urgent}/close", headers=auth, json=dialog["body"])
            assert closed.status_code == 200, closed.text
            goodbye = (await client.get(f"/api/v1/tickets/{urgent}/messages", params={"limit": 50},
                                        headers=admin)).json()  # fmt: skip

            # The dashboard: the page's own period and query; admins and supervisors only.
            query = await _node("result = dashboard.dashboardQuery(dashboard.dashboardPeriod('today'), {});")
            board = await client.get(f"/api/v1/dashboard?{query}", headers=admin)
            assert board.status_code == 200, board.text
            denied = await client.get(f"/api/v1/dashboard?{query}", headers=auth)
            assert denied.status_code == 403
            page = await client.get("/dashboard")
            assert page.status_code == 200 and "dashboard-app" in _parse(page.text).ids
    finally:
        await redis.aclose()

    admin_name = next(p["name"] for p in directory["people"] if p["role"] == "admin")
    assert {q["name"]: q["member_ids"] for q in directory["queues"]} == {"Suporte": [bia]}  # Ana is in no queue
    assert sorted(p["name"] for p in directory["people"]) == sorted([admin_name, "Ana", "Bia"])
    assert [c["name"] for c in directory["connections"]] == ["Main", "Reserva"]
    assert directory["close_defaults"] == {"farewell_message": farewell, "csat_enabled": True}
    assert dialog == {
        "view": {"farewell": farewell, "survey": True, "placeholder": farewell, "farewellEditable": True,
                 "noFarewellShown": True, "surveyEditable": True, "hint": "Left empty, the farewell shown in the box is sent."},
        "body": {},  # nothing changed: the workspace's defaults apply, and they are what the dialog showed
        "declined": {"survey": False},
    }  # fmt: skip
    automated = [m["text"] for m in sorted(goodbye["items"], key=lambda m: m["id"]) if m["bot"]]
    assert automated[-2:] == [farewell, rules.json()["csat_prompt"]]

    state = await _node(
        """
        const viewer = inbox.tokenClaims(input.token);
        const s = inbox.createState("pending", viewer);
        inbox.applyDirectory(s, input.directory); // on start, as the page does
        const openTab = inbox.createState("open", viewer);
        const ids = (state) => inbox.orderedTickets(state).map((t) => t.id);
        for (const t of input.pending.items) inbox.upsertTicket(s, t, { snapshot: true });
        const listed = ids(s);
        assert.deepEqual(input.pending.items.slice().reverse().sort(inbox.compareTickets).map((t) => t.id), listed);

        // Open the first customer's conversation and take it: it leaves Pending and stays open here.
        inbox.openTicket(s, input.first);
        for (const m of input.messages.items) inbox.addMessage(s, m);
        inbox.upsertTicket(s, input.accepted);
        const afterAccept = { pending: ids(s), status: s.selected.status, mine: s.selected.user_id === viewer.userId };
        inbox.upsertTicket(s, input.read);
        inbox.upsertTicket(s, input.tagged);

        // The note and the photo show at once and are adopted by their answers.
        inbox.addOptimistic(s, input.note_id, input.note.text, { private: true });
        inbox.resolveOptimistic(s, input.note_id, input.note);
        inbox.addOptimistic(s, input.photo_id, null, { kind: "image", media: { mime: "image/png", size: 70,
          filename: "foto.png", state: "uploading" } });
        const uploading = inbox.mediaView(inbox.orderedMessages(s).at(-1)).show;
        inbox.resolveOptimistic(s, input.photo_id, input.photo);
        const conversation = inbox.orderedMessages(s).map((m) => [m.text, Boolean(m.private), m.kind]);

        // "/ol" in the composer offers the reply filled in for this customer.
        const query = inbox.quickReplyQuery("/ol");
        const offered = inbox.matchQuickReplies(input.quick, query.prefix);
        const composed = inbox.applyQuickReply("/ol", query, offered[0]).text;

        // Every frame the agent's socket sent, in order, in the Pending list and in the Open list.
        const trail = [];
        let hidden = null;
        let contactName = null;
        let openFetches = [];
        for (const frame of input.frames) {
          const changes = inbox.applyEvent(s, frame);
          openFetches = openFetches.concat(inbox.applyEvent(openTab, frame).fetch);
          if (changes.hidden) hidden = changes.hidden;
          const here = openTab.tickets.has(input.first);
          if (frame.ticket_id === input.first && frame.type.startsWith("ticket.") && trail.at(-1) !== here) trail.push(here);
          if (frame.type === "contact.updated" && here) contactName = inbox.contactLabel(openTab.tickets.get(input.first).contact);
        }
        // The transfer's answer, arriving after ticket.hidden, does not bring the ticket back.
        const late = [inbox.upsertTicket(s, input.transferred), inbox.upsertTicket(openTab, input.transferred)];

        // What the transfer dialog offered the agent for her ticket, and the body it made of "Suporte" + the note.
        const choices = inbox.transferChoices(s, input.accepted);
        const transfer = {
          queues: choices.queues.map((q) => q.name),
          people: choices.people.map(inbox.personOption),
          support_people: inbox.transferChoices(s, input.accepted, String(input.support)).people.map((p) => p.name),
          connections: choices.connections.map((c) => c.name),
          body: inbox.transferBody(input.accepted, { queueId: String(input.support), note: " É com o suporte. " }).body,
        };
        result = {
          viewer, listed, after_accept: afterAccept, uploading, conversation, composed, transfer,
          filter_queues: inbox.filterQueues(s).map((q) => q.name),
          names: { assignee: inbox.personName(s, input.accepted.user_id), note_author: inbox.personName(s, input.note.user_id) },
          activity: input.urgent_events.map((e) => inbox.activityText(s, e)),
          photo: inbox.mediaView(input.photo),
          presence: s.presence.get(viewer.userId),
          trail, hidden, contact_name: contactName, open_fetches: openFetches, late,
          selected: s.selectedId, pending_tab: ids(s), open_tab: ids(openTab), optimistic: s.pending.size,
        };
        """,
        {"token": token, "pending": pending, "first": first, "messages": messages, "accepted": accepted, "read": read,
         "tagged": tagged, "note_id": note_id, "note": note, "photo_id": photo_id, "photo": photo, "quick": quick,
         "frames": frames, "transferred": transferred, "directory": directory, "support": support,
         "urgent_events": urgent_events},
    )  # fmt: skip
    assert snoozed["snoozed_until"] is not None and tagged["tags"] == [{"id": vip, "name": "VIP", "color": "#c62828"}]
    assert f"Priority changed · {admin_name}" in state.pop("activity")  # the admin's name, seen by an agent
    people = [p for p in directory["people"] if p["name"] != "Ana"]  # the ticket is hers: not offered
    assert read["unread_count"] == 0 and transferred["queue_id"] == support
    assert state == {
        "viewer": {"userId": ana, "role": "agent"},
        "listed": [urgent, first, low],  # priority first, then the customer who waits longest
        "after_accept": {"pending": [urgent, low], "status": "open", "mine": True},
        "uploading": "progress",
        "conversation": [
            ["Olá, sou Carla Souza", False, "text"],
            ["Cliente antiga, tratar bem.", True, "text"],
            [None, False, "image"],
        ],
        "composed": "Olá Carla!",
        "photo": {
            "show": "image",
            "url": photo["media"]["url"],
            "autoload": True,
            "label": "Show Photo (70 B)",
            "filename": "foto.png",
        },
        "transfer": {
            "queues": ["Suporte"],  # a queue Ana is not in
            "people": [f"{p['name']} — offline" for p in people],  # nobody else has the inbox open
            "support_people": ["Bia"],
            "connections": ["Reserva"],
            "body": {"queue_id": support, "note": "É com o suporte."},  # what the page sent above
        },
        "filter_queues": [],
        "names": {"assignee": "Ana", "note_author": "Ana"},
        "presence": "online",
        # In the Open list: accepted, out while snoozed, back when woken, gone when transferred away.
        "trail": [True, False, True, False],
        "hidden": {"id": first, "number": accepted["number"]},
        "contact_name": "Carla S.",
        "open_fetches": [],  # every ticket event carried the whole ticket
        "late": [False, False],
        "selected": None,
        "pending_tab": [urgent, low],
        "open_tab": [],
        "optimistic": 0,
    }
