"""The agent inbox UI: pages and assets as a browser receives them (headers, CSP, scripts), the inbox's state
logic run in Node, and that same logic fed with what the real API and events socket send."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import uuid
from collections.abc import Awaitable, Callable
from html.parser import HTMLParser
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
from supervisor.streams import StreamKeys, append_events
from supervisor.wire import DriverEvent, Envelope, InboundMessage, MessageStatus, utcnow
from tenants.context import tenant_context
from tenants.provisioning import TenantInfo
from tests.conftest import app_client, live_server
from ui.pages import STATIC_DIR, TEMPLATES_DIR, content_security_policy, template_config, ui_route_handlers

MakeTenant = Callable[..., Awaitable[TenantInfo]]
UI_PAGES = frozenset({"/", "/login", "/inbox"})
NODE_TIMEOUT_S = 30


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
        for name in ("data-i18n", "data-i18n-placeholder"):
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


async def _node(body: str, payload: object = None) -> Any:
    """Run ``body`` in Node with ``inbox`` and ``login`` (the page scripts' exports) and ``input`` (``payload``)
    in scope; returns what the script assigns to ``result``, and fails with Node's error output."""
    node = shutil.which("node")
    assert node is not None, "Node.js (the `node` command) is required to check the UI scripts; install Node 20+"
    script = (
        "const assert = require('node:assert/strict');\n"
        f"const inbox = require({json.dumps(str(STATIC_DIR / 'inbox.js'))});\n"
        f"const login = require({json.dumps(str(STATIC_DIR / 'login.js'))});\n"
        "const input = JSON.parse(require('node:fs').readFileSync(0, 'utf8'));\n"
        "let result = null;\n"
        f"{body}\n"
        "process.stdout.write(JSON.stringify(result));\n"
    )
    process = await asyncio.create_subprocess_exec(
        node, "-e", script, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
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
                                                    "session-badges"}),
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


async def test_root_redirects_to_the_inbox() -> None:
    async with app_client(_ui_app()) as client:
        response = await client.get("/")
        assert (response.status_code, response.headers["location"]) == (302, "/inbox")


@pytest.mark.parametrize(
    ("name", "content_types"),
    [
        ("inbox.js", ("text/javascript", "application/javascript")),
        ("login.js", ("text/javascript", "application/javascript")),
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


@pytest.mark.parametrize("path", ["/login", "/inbox"])
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
    scripts = sorted(STATIC_DIR.glob("*.js"))
    assert {p.name for p in scripts} >= {"inbox.js", "login.js"}
    for path in scripts:
        process = await asyncio.create_subprocess_exec(node, "--check", str(path), stderr=asyncio.subprocess.PIPE)
        _, stderr = await asyncio.wait_for(process.communicate(), NODE_TIMEOUT_S)
        assert process.returncode == 0, f"{path.name}: {stderr.decode()}"


def test_scripts_never_build_html_from_strings() -> None:
    forbidden = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function")
    for path in STATIC_DIR.glob("*.js"):
        assert not forbidden.findall(path.read_text()), path.name


@pytest.mark.parametrize(("template", "module"), [("login.html", "login"), ("inbox.html", "inbox")])
async def test_every_page_string_is_in_the_script_strings(template: str, module: str) -> None:
    keys = _parse((TEMPLATES_DIR / template).read_text()).i18n
    assert keys
    known = await _node(f"result = Object.keys({module}.STRINGS);")
    assert keys <= set(known)


def _ticket(ticket_id: int, at: str | None, **extra: Any) -> dict[str, Any]:
    contact = {"id": ticket_id, "name": None, "phone": f"+551190000{ticket_id:04d}",
               "wa_id": f"551190000{ticket_id:04d}@s.whatsapp.net"}  # fmt: skip
    return {"id": ticket_id, "number": ticket_id, "status": "pending", "contact": contact, "connection_id": 1,
            "user_id": None, "unread_count": 1, "last_message_at": at, "last_message_preview": f"hello {ticket_id}",
            "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z", **extra}  # fmt: skip


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
          sessions: false, fetch: [] });
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
        "open_fetches": [ticket_id],  # the Open tab learns of it and fetches it whole
    }
