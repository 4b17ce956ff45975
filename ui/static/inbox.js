// Atende agent inbox: the ticket list, one conversation, the reply box, and live updates over the events WebSocket.
//
// The page is a shell: everything comes from /api/v1 with the Bearer token kept in sessionStorage. Two halves:
// pure state logic (no DOM, exported for the Node tests in tests/integration/test_ui.py) and the DOM around it.
// All user text goes through textContent; this file never assigns HTML.
"use strict";

// Every string this page shows, in one place (to be translated later).
const STRINGS = {
  brand: "Atende",
  tickets: "Tickets",
  tab_pending: "Pending",
  tab_open: "Open",
  tab_closed: "Closed",
  no_tickets: "No tickets here.",
  load_more: "Load more",
  load_older: "Load older messages",
  select_ticket: "Select a conversation on the left.",
  reply: "Reply",
  reply_placeholder: "Type a reply — Enter sends, Shift+Enter adds a line",
  send: "Send",
  sending: "Sending…",
  logout: "Log out",
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  offline: "Offline",
  whatsapp: "WhatsApp",
  show_qr: "Show QR",
  ticket_number: "Ticket #{number}",
  status_names: { pending: "Pending", open: "Open", closed: "Closed" },
  message_status: {
    QUEUED: "Queued",
    PENDING: "Sending",
    SENT: "Sent",
    DELIVERED: "Delivered",
    READ: "Read",
    PLAYED: "Played",
    FAILED: "Not delivered",
    DELETED: "Deleted",
  },
  failed_with: "Not delivered: {reason}",
  send_failed: "The message was not sent: {reason}",
  load_failed: "Could not load: {reason}",
  network_error: "could not reach the server",
  unknown_error: "unexpected error",
  kinds: {
    image: "Photo",
    video: "Video",
    audio: "Audio",
    voice: "Voice message",
    document: "Document",
    sticker: "Sticker",
    location: "Location",
    contact: "Contact card",
    reaction: "Reaction",
    interactive_reply: "Button reply",
    edit: "Edited message",
    revoke: "Message deleted",
    unknown: "Unsupported message",
  },
  session_states: {
    STARTING: "starting",
    AWAITING_QR: "scan the QR code",
    AWAITING_PAIR_CODE: "enter the pairing code",
    CONNECTED: "connected",
    RECONNECTING: "reconnecting",
    BACKOFF: "retrying soon",
    LOGGED_OUT: "logged out",
    QUARANTINED: "quarantined",
    GAVE_UP: "stopped after errors",
    STOPPED: "stopped",
  },
};

// Shared with login.js.
const TOKEN_KEY = "atende.access_token";
const EXPIRES_KEY = "atende.token_expires_at";

const TABS = ["pending", "open", "closed"];
const PAGE_SIZE = 50;
// Statuses only move forward (same ranking as supervisor/wire.py); FAILED and DELETED outrank everything.
const STATUS_RANK = { QUEUED: 0, RECEIVED: 0, PENDING: 1, SENT: 2, DELIVERED: 3, READ: 4, PLAYED: 5, FAILED: 9, DELETED: 10 };
const SESSION_CLASS = {
  CONNECTED: "state-ok",
  STARTING: "state-warn",
  AWAITING_QR: "state-warn",
  AWAITING_PAIR_CODE: "state-warn",
  RECONNECTING: "state-warn",
  BACKOFF: "state-warn",
};
const BACKOFF = { minMs: 1000, maxMs: 30000, factor: 2, jitter: 0.2 };
const WATCHDOG_MS = 45000; // the server pings every 15 s when idle; three missed pings mean a dead socket
const RESYNC_AFTER_MS = 30000; // offline longer than this: reload the list too, the replay may have been trimmed
const EARLY_LIMIT = 200; // status updates kept for messages not shown yet

// ---------------------------------------------------------------------------------------------------------------
// Pure logic

/** Replace {name} placeholders in a string from STRINGS. */
function format(template, values) {
  return template.replace(/\{(\w+)\}/g, (whole, key) => (key in values ? String(values[key]) : whole));
}

function statusRank(status) {
  return Object.hasOwn(STATUS_RANK, status) ? STATUS_RANK[status] : -1;
}

/** The time a ticket sorts by: its last message, else its creation. */
function ticketActivity(ticket) {
  return Date.parse(ticket.last_message_at || ticket.created_at || "") || 0;
}

/** Newest activity first, then the higher id (the API's order). */
function compareTickets(a, b) {
  return ticketActivity(b) - ticketActivity(a) || b.id - a.id;
}

function contactLabel(contact) {
  if (!contact) return "";
  return contact.name || contact.phone || (contact.wa_id || "").split("@")[0];
}

/** The tick shown on one of our messages: {glyph, className, label}, or null for messages we received. */
function tickFor(status) {
  const label = STRINGS.message_status[status] || status;
  switch (status) {
    case "QUEUED":
    case "PENDING":
      return { glyph: "\u{1F552}", className: "status-queued", label };
    case "SENT":
      return { glyph: "\u2713", className: "status-sent", label };
    case "DELIVERED":
      return { glyph: "\u2713\u2713", className: "status-delivered", label };
    case "READ":
    case "PLAYED":
      return { glyph: "\u2713\u2713", className: "status-read", label };
    case "FAILED":
      return { glyph: "\u26A0", className: "status-failed", label };
    case "DELETED":
      return { glyph: "\u2298", className: "status-deleted", label };
    default:
      return null;
  }
}

/** ``incoming`` merged over ``current``: fields it carries win, but the status never moves backwards. */
function mergeMessage(current, incoming) {
  if (!current) return { ...incoming };
  const merged = { ...current };
  for (const [key, value] of Object.entries(incoming)) {
    if (value !== undefined) merged[key] = value;
  }
  if (statusRank(incoming.status) < statusRank(current.status)) {
    merged.status = current.status;
    merged.error_code = current.error_code;
    merged.error_title = current.error_title;
  }
  return merged;
}

/** Delay before reconnect ``attempt`` (0-based): exponential, capped, with +-jitter so clients spread out. */
function backoffDelay(attempt, random = Math.random) {
  const base = Math.min(BACKOFF.maxMs, BACKOFF.minMs * BACKOFF.factor ** attempt);
  return Math.round(base * (1 - BACKOFF.jitter + 2 * BACKOFF.jitter * random()));
}

/** The events WebSocket URL for a page at ``loc`` (same host; wss under https). */
function eventsUrl(loc, ticket, lastEventId) {
  const scheme = loc.protocol === "https:" ? "wss:" : "ws:";
  const params = new URLSearchParams({ ticket });
  if (lastEventId) params.set("last_event_id", lastEventId);
  return `${scheme}//${loc.host}/api/v1/events?${params}`;
}

/** A random UUID v4 (crypto.randomUUID needs a secure context; getRandomValues does not). */
function uuid4(cryptoImpl = globalThis.crypto) {
  if (typeof cryptoImpl.randomUUID === "function") return cryptoImpl.randomUUID();
  const bytes = cryptoImpl.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function createState(tab = "pending") {
  return {
    tab, // which status the list shows
    tickets: new Map(), // id -> ticket, only tickets of ``tab``
    ticketsCursor: null,
    selectedId: null,
    selected: null, // the open ticket (stays open even when it leaves the current tab)
    messages: new Map(), // id -> message of the open ticket
    messagesCursor: null,
    pending: new Map(), // client_id -> optimistic message {client_id, ticket_id, text, sending, error}
    early: new Map(), // message id -> a status update that overtook its message (the send can beat the POST answer)
    sessions: new Map(), // connection_id -> last session.updated data
    lastEventId: null,
  };
}

/** Put ``ticket`` in the list if it belongs to the current tab, else drop it; keeps the open ticket in step.
 * A snapshot (a list page) never overwrites a ticket an event has already moved past. Returns true on change. */
function upsertTicket(state, ticket, { snapshot = false } = {}) {
  const existing = state.tickets.get(ticket.id);
  if (snapshot && existing && ticketActivity(existing) > ticketActivity(ticket)) return false;
  const merged = existing ? { ...existing, ...ticket } : ticket;
  if (state.selectedId === ticket.id) state.selected = state.selected ? { ...state.selected, ...ticket } : merged;
  if (merged.status === state.tab && merged.contact) {
    state.tickets.set(ticket.id, merged);
    return true;
  }
  return state.tickets.delete(ticket.id) || state.selectedId === ticket.id;
}

/** The open ticket's messages in display order: stored ones by id, then our optimistic ones in send order. */
function orderedMessages(state) {
  const stored = [...state.messages.values()].sort((a, b) => a.id - b.id);
  const optimistic = [...state.pending.values()].filter((p) => p.ticket_id === state.selectedId);
  return [...stored, ...optimistic];
}

function orderedTickets(state) {
  return [...state.tickets.values()].sort(compareTickets);
}

/** A stored message of the open ticket arrived (API page, POST answer or event). Our own message that is still
 * shown as optimistic is adopted: matched by client_id when the server sends it, else by its text. */
function addMessage(state, message) {
  if (message.ticket_id !== state.selectedId) return false;
  if (!state.messages.has(message.id) && message.from_me) {
    for (const [clientId, optimistic] of state.pending) {
      if (optimistic.ticket_id !== message.ticket_id) continue;
      const same = message.client_id ? message.client_id === clientId : optimistic.text === message.text;
      if (same) {
        state.pending.delete(clientId);
        break;
      }
    }
  }
  let merged = mergeMessage(state.messages.get(message.id), message);
  if (state.early.has(message.id)) {
    merged = mergeMessage(merged, state.early.get(message.id));
    state.early.delete(message.id);
  }
  state.messages.set(message.id, merged);
  return true;
}

/** Open another ticket's conversation (or none): its messages are loaded afresh. */
function openTicket(state, id) {
  state.selectedId = id;
  state.selected = id === null ? null : state.tickets.get(id) || null;
  state.messages.clear();
  state.early.clear();
  state.messagesCursor = null;
}

function addOptimistic(state, clientId, text, now = new Date()) {
  const previous = state.pending.get(clientId);
  state.pending.set(clientId, {
    ...previous,
    client_id: clientId,
    ticket_id: state.selectedId,
    from_me: true,
    kind: "text",
    text,
    status: "QUEUED",
    occurred_at: previous ? previous.occurred_at : now.toISOString(),
    sending: true,
    error: null,
  });
}

/** The POST answered: the stored message replaces the optimistic one (if an event has not already). */
function resolveOptimistic(state, clientId, message) {
  state.pending.delete(clientId);
  if (message.ticket_id === state.selectedId) addMessage(state, message);
}

function failOptimistic(state, clientId, reason) {
  const optimistic = state.pending.get(clientId);
  if (optimistic) state.pending.set(clientId, { ...optimistic, sending: false, error: reason });
}

/** Apply one frame of the events socket. Returns what changed and which tickets must be fetched in full. */
function applyEvent(state, event) {
  const changes = { tickets: false, conversation: false, sessions: false, fetch: [] };
  if (event.id) state.lastEventId = event.id;
  const data = event.data || {};
  switch (event.type) {
    case "message.created":
      changes.conversation = addMessage(state, data);
      break;
    case "message.updated": {
      if (data.ticket_id !== state.selectedId) break;
      const current = state.messages.get(data.id);
      if (current) {
        state.messages.set(data.id, mergeMessage(current, data));
        changes.conversation = true;
      } else {
        // Not shown yet (its message.created or POST answer may still be on the way), or an older page.
        state.early.set(data.id, mergeMessage(state.early.get(data.id), data));
        if (state.early.size > EARLY_LIMIT) state.early.delete(state.early.keys().next().value);
      }
      break;
    }
    case "ticket.created":
    case "ticket.updated": {
      const patch = { ...data };
      delete patch.contact_id; // ticket.created names the contact flat; the list keeps the API's nested contact
      delete patch.contact_name;
      const known = state.tickets.get(data.id);
      if (state.selectedId === data.id) {
        state.selected = { ...state.selected, ...patch };
        changes.conversation = true;
      }
      const base = known || (state.selectedId === data.id ? state.selected : null);
      if (base && base.contact) {
        const merged = { ...base, ...patch };
        if (merged.status === state.tab) {
          state.tickets.set(data.id, merged);
          changes.tickets = true;
        } else if (known) {
          state.tickets.delete(data.id); // moved to another tab
          changes.tickets = true;
        }
      } else if (patch.status === state.tab) {
        changes.fetch.push(data.id); // new to this list: events lack the contact's phone, so fetch it whole
      }
      break;
    }
    case "session.updated":
      if (data.connection_id !== undefined) {
        state.sessions.set(data.connection_id, data);
        changes.sessions = true;
      }
      break;
    default: // "ping" and types this page does not know
      break;
  }
  return changes;
}

// ---------------------------------------------------------------------------------------------------------------
// DOM

class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail);
    this.status = status;
    this.code = code;
  }
}

function goToLogin() {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(EXPIRES_KEY);
  location.replace("/login");
}

/** Call the API with the session's token; a 401 ends the session. Errors become ApiError with the problem code. */
async function api(path, { method = "GET", body } = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) {
    goToLogin();
    throw new ApiError(401, "no_token", "not signed in");
  }
  const headers = { Authorization: `Bearer ${token}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, "network_error", STRINGS.network_error);
  }
  if (response.status === 401) {
    goToLogin();
    throw new ApiError(401, "unauthorized", "session ended");
  }
  const payload = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = (payload && (payload.detail || payload.title)) || `HTTP ${response.status}`;
    throw new ApiError(response.status, (payload && payload.code) || `http_${response.status}`, detail);
  }
  return payload;
}

function reasonOf(error) {
  return error instanceof ApiError ? error.message : STRINGS.unknown_error;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function sameDay(a, b) {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayFormat = new Intl.DateTimeFormat(undefined, { day: "2-digit", month: "2-digit" });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

function shortTime(iso) {
  if (!iso) return "";
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return "";
  return sameDay(when, new Date()) ? timeFormat.format(when) : dayFormat.format(when);
}

function messageTime(iso) {
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return "";
  return sameDay(when, new Date()) ? timeFormat.format(when) : `${dayFormat.format(when)} ${timeFormat.format(when)}`;
}

/** Reorder ``parent``'s children to ``items`` (keyed elements are reused, changed ones rebuilt). */
function reconcile(parent, cache, items, keyOf, signatureOf, build) {
  const seen = new Set();
  let cursor = parent.firstChild;
  for (const item of items) {
    const key = keyOf(item);
    const signature = signatureOf(item);
    seen.add(key);
    let entry = cache.get(key);
    if (!entry || entry.signature !== signature) {
      const node = build(item);
      if (entry) {
        if (cursor === entry.node) cursor = node;
        entry.node.replaceWith(node);
      }
      entry = { node, signature };
      cache.set(key, entry);
    }
    if (entry.node !== cursor) parent.insertBefore(entry.node, cursor);
    else cursor = cursor.nextSibling;
  }
  for (const [key, entry] of cache) {
    if (!seen.has(key)) {
      entry.node.remove();
      cache.delete(key);
    }
  }
}

function main() {
  const expiresAt = Number(sessionStorage.getItem(EXPIRES_KEY) || 0);
  if (!sessionStorage.getItem(TOKEN_KEY) || (expiresAt && expiresAt < Date.now())) {
    goToLogin();
    return;
  }
  for (const node of document.querySelectorAll("[data-i18n]")) {
    const value = STRINGS[node.dataset.i18n];
    if (typeof value === "string") node.textContent = value;
  }
  for (const node of document.querySelectorAll("[data-i18n-placeholder]")) {
    const value = STRINGS[node.dataset.i18nPlaceholder];
    if (typeof value === "string") node.placeholder = value;
  }

  const $ = (id) => document.getElementById(id);
  const ui = {
    tabs: $("ticket-tabs"),
    list: $("ticket-list"),
    listEmpty: $("tickets-empty"),
    listError: $("tickets-error"),
    listMore: $("tickets-more"),
    empty: $("conversation-empty"),
    pane: $("conversation-pane"),
    title: $("conversation-title"),
    subtitle: $("conversation-subtitle"),
    scroll: $("message-scroll"),
    older: $("messages-older"),
    messagesError: $("messages-error"),
    messageList: $("message-list"),
    composer: $("composer"),
    text: $("composer-text"),
    send: $("composer-send"),
    composerError: $("composer-error"),
    indicator: $("connection-indicator"),
    sessions: $("session-badges"),
    logout: $("logout"),
  };
  const state = createState("pending");
  const ticketNodes = new Map();
  const messageNodes = new Map();
  const drafts = new Map(); // ticket id -> unsent text
  const fetching = new Set();
  let listGeneration = 0;
  let conversationGeneration = 0;
  let sending = false;
  let lastAttempt = null; // {ticketId, text, clientId}: a retry of the same text reuses the idempotency key

  function showError(node, message) {
    node.textContent = message || "";
    node.hidden = !message;
  }

  // --- ticket list ---

  function buildTicket(ticket) {
    const item = el("li");
    const button = el("button", "ticket");
    button.type = "button";
    button.dataset.id = String(ticket.id);
    if (ticket.id === state.selectedId) button.setAttribute("aria-current", "true");
    if (ticket.unread_count > 0) button.classList.add("has-unread");
    button.append(
      el("span", "ticket-name", contactLabel(ticket.contact)),
      el("span", "ticket-time", shortTime(ticket.last_message_at || ticket.created_at)),
      el("span", "ticket-preview", ticket.last_message_preview || ""),
    );
    if (ticket.unread_count > 0) {
      const badge = el("span", "badge unread", ticket.unread_count > 99 ? "99+" : ticket.unread_count);
      badge.setAttribute("aria-label", `${ticket.unread_count}`);
      button.append(badge);
    }
    item.append(button);
    return item;
  }

  function renderTickets() {
    const tickets = orderedTickets(state);
    reconcile(
      ui.list,
      ticketNodes,
      tickets,
      (t) => t.id,
      (t) => JSON.stringify([contactLabel(t.contact), t.last_message_at, t.last_message_preview, t.unread_count,
        t.id === state.selectedId, shortTime(t.last_message_at || t.created_at)]),
      buildTicket,
    );
    ui.listEmpty.hidden = tickets.length > 0;
    ui.listMore.hidden = !state.ticketsCursor;
  }

  async function loadTickets({ more = false } = {}) {
    const generation = more ? listGeneration : ++listGeneration;
    const params = new URLSearchParams({ status: state.tab, limit: String(PAGE_SIZE) });
    if (more && state.ticketsCursor) params.set("cursor", state.ticketsCursor);
    ui.listMore.disabled = true;
    try {
      const page = await api(`/api/v1/tickets?${params}`);
      if (generation !== listGeneration) return;
      for (const ticket of page.items) upsertTicket(state, ticket, { snapshot: true });
      state.ticketsCursor = page.next_cursor;
      showError(ui.listError, "");
    } catch (error) {
      if (generation === listGeneration) showError(ui.listError, format(STRINGS.load_failed, { reason: reasonOf(error) }));
    } finally {
      ui.listMore.disabled = false;
    }
    renderTickets();
  }

  function switchTab(tab) {
    if (!TABS.includes(tab) || tab === state.tab) return;
    state.tab = tab;
    state.tickets.clear();
    state.ticketsCursor = null;
    for (const button of ui.tabs.querySelectorAll("[data-status]")) {
      button.setAttribute("aria-selected", String(button.dataset.status === tab));
    }
    renderTickets();
    loadTickets();
  }

  async function fetchTicket(id) {
    if (fetching.has(id)) return;
    fetching.add(id);
    try {
      const ticket = await api(`/api/v1/tickets/${id}`);
      if (upsertTicket(state, ticket)) {
        renderTickets();
        if (id === state.selectedId) renderHeader();
      }
    } catch {
      // the next event or list load brings it in
    } finally {
      fetching.delete(id);
    }
  }

  // --- conversation ---

  function renderHeader() {
    const ticket = state.selected;
    ui.empty.hidden = state.selectedId !== null;
    ui.pane.hidden = state.selectedId === null;
    if (!ticket) {
      ui.title.textContent = "";
      ui.subtitle.textContent = "";
      return;
    }
    ui.title.textContent = contactLabel(ticket.contact);
    const parts = [format(STRINGS.ticket_number, { number: ticket.number })];
    if (ticket.contact && ticket.contact.phone && ticket.contact.phone !== ui.title.textContent) parts.push(ticket.contact.phone);
    parts.push(STRINGS.status_names[ticket.status] || ticket.status);
    ui.subtitle.textContent = parts.join(" · ");
  }

  function isGroup() {
    return Boolean(state.selected && state.selected.contact && (state.selected.contact.wa_id || "").endsWith("@g.us"));
  }

  function buildMessage(message) {
    const mine = Boolean(message.from_me);
    const item = el("li", mine ? "message mine" : "message");
    if (message.id === undefined) item.classList.add("pending");
    const failed = message.status === "FAILED" || Boolean(message.error);
    if (failed) item.classList.add("failed");
    const bubble = el("div", "bubble");
    if (!mine && isGroup() && message.sender_name) bubble.append(el("span", "sender", message.sender_name));
    if (message.text) {
      bubble.append(el("span", "text", message.text));
    } else {
      bubble.append(el("span", "text placeholder", `[${STRINGS.kinds[message.kind] || message.kind}]`));
    }
    const meta = el("div", "meta");
    const time = el("time", null, messageTime(message.occurred_at));
    time.dateTime = message.occurred_at || "";
    const parsed = new Date(message.occurred_at);
    if (!Number.isNaN(parsed.getTime())) time.title = fullFormat.format(parsed);
    meta.append(time);
    const tick = mine ? tickFor(message.error ? "FAILED" : message.status) : null;
    if (tick) {
      const ticks = el("span", `ticks ${tick.className}`, tick.glyph);
      ticks.title = tick.label;
      ticks.setAttribute("aria-label", tick.label);
      ticks.setAttribute("role", "img");
      meta.append(ticks);
    }
    bubble.append(meta);
    if (mine && failed) {
      const reason = message.error || message.error_title || message.error_code || STRINGS.unknown_error;
      bubble.append(el("span", "error-text", format(STRINGS.failed_with, { reason })));
    }
    item.append(bubble);
    return item;
  }

  function renderMessages({ stick = false, keepOffset = null } = {}) {
    const atBottom = ui.scroll.scrollHeight - ui.scroll.scrollTop - ui.scroll.clientHeight < 48;
    reconcile(
      ui.messageList,
      messageNodes,
      orderedMessages(state),
      (m) => (m.id !== undefined ? `m${m.id}` : `c${m.client_id}`),
      (m) => JSON.stringify([m.status, m.text, m.error, m.error_code, m.error_title, m.sending, m.sender_name]),
      buildMessage,
    );
    ui.older.hidden = !state.messagesCursor;
    if (keepOffset !== null) ui.scroll.scrollTop = ui.scroll.scrollHeight - keepOffset;
    else if (stick || atBottom) ui.scroll.scrollTop = ui.scroll.scrollHeight;
  }

  async function loadMessages({ older = false } = {}) {
    const ticketId = state.selectedId;
    const generation = conversationGeneration;
    const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (older && state.messagesCursor) params.set("cursor", state.messagesCursor);
    ui.older.disabled = true;
    try {
      const page = await api(`/api/v1/tickets/${ticketId}/messages?${params}`);
      if (generation !== conversationGeneration) return;
      const offset = ui.scroll.scrollHeight - ui.scroll.scrollTop;
      for (const message of page.items) addMessage(state, message);
      if (older || state.messagesCursor === null) state.messagesCursor = page.next_cursor;
      showError(ui.messagesError, "");
      renderMessages(older ? { keepOffset: offset } : { stick: true });
    } catch (error) {
      if (generation === conversationGeneration) showError(ui.messagesError, format(STRINGS.load_failed, { reason: reasonOf(error) }));
    } finally {
      ui.older.disabled = false;
    }
  }

  async function selectTicket(id) {
    if (id === state.selectedId) return;
    if (state.selectedId !== null) drafts.set(state.selectedId, ui.text.value);
    conversationGeneration += 1;
    openTicket(state, id);
    for (const entry of messageNodes.values()) entry.node.remove();
    messageNodes.clear();
    ui.text.value = drafts.get(id) || "";
    showError(ui.composerError, "");
    showError(ui.messagesError, "");
    history.replaceState(null, "", `#ticket-${id}`);
    renderHeader();
    renderTickets();
    if (!state.selected) {
      const generation = conversationGeneration;
      api(`/api/v1/tickets/${id}`)
        .then((ticket) => {
          if (generation !== conversationGeneration) return;
          upsertTicket(state, ticket);
          renderHeader();
          renderTickets();
        })
        .catch((error) => showError(ui.messagesError, format(STRINGS.load_failed, { reason: reasonOf(error) })));
    }
    await loadMessages();
    ui.text.focus();
  }

  // --- reply ---

  function setSending(value) {
    sending = value;
    ui.text.disabled = value;
    ui.send.disabled = value;
    ui.send.textContent = value ? STRINGS.sending : STRINGS.send;
  }

  async function sendReply() {
    const ticketId = state.selectedId;
    const text = ui.text.value.trim();
    if (sending || ticketId === null || !text) return;
    const retry = lastAttempt && lastAttempt.ticketId === ticketId && lastAttempt.text === text;
    const clientId = retry ? lastAttempt.clientId : uuid4();
    if (!retry) {
      for (const [id, optimistic] of state.pending) {
        if (optimistic.ticket_id === ticketId && optimistic.error) state.pending.delete(id); // abandoned
      }
    }
    lastAttempt = { ticketId, text, clientId };
    addOptimistic(state, clientId, text);
    showError(ui.composerError, "");
    setSending(true);
    renderMessages({ stick: true });
    try {
      const message = await api(`/api/v1/tickets/${ticketId}/messages`, {
        method: "POST",
        body: { text, client_id: clientId },
      });
      resolveOptimistic(state, clientId, message);
      lastAttempt = null;
      drafts.delete(ticketId);
      if (state.selectedId === ticketId) ui.text.value = "";
    } catch (error) {
      failOptimistic(state, clientId, reasonOf(error));
      if (state.selectedId === ticketId) showError(ui.composerError, format(STRINGS.send_failed, { reason: reasonOf(error) }));
    } finally {
      setSending(false);
      if (state.selectedId === ticketId) {
        renderMessages({ stick: true });
        ui.text.focus();
      }
    }
  }

  // --- live events ---

  function renderSessions() {
    const many = state.sessions.size > 1;
    const badges = [];
    for (const [connectionId, session] of state.sessions) {
      const badge = el("span", `badge session ${SESSION_CLASS[session.state] || "state-bad"}`);
      const label = STRINGS.session_states[session.state] || session.state;
      badge.append(document.createTextNode(`${STRINGS.whatsapp}${many ? ` #${connectionId}` : ""}: ${label}`));
      if (session.reason) badge.title = session.reason;
      if ((session.state === "AWAITING_QR" || session.state === "AWAITING_PAIR_CODE") && session.qr) {
        const details = el("details");
        details.append(el("summary", null, STRINGS.show_qr), el("pre", null, session.qr));
        badge.append(details);
      }
      badges.push(badge);
    }
    ui.sessions.replaceChildren(...badges);
  }

  function setIndicator(kind) {
    const text = { connecting: STRINGS.connecting, live: STRINGS.live, reconnecting: STRINGS.reconnecting, offline: STRINGS.offline }[kind];
    ui.indicator.textContent = text;
    ui.indicator.className = `connection connection-${kind === "live" ? "live" : kind === "offline" ? "offline" : "connecting"}`;
  }

  function onEvent(event) {
    const changes = applyEvent(state, event);
    if (changes.tickets) renderTickets();
    if (changes.conversation) {
      renderHeader();
      renderMessages();
    }
    if (changes.sessions) renderSessions();
    for (const id of changes.fetch) fetchTicket(id);
  }

  function resync() {
    loadTickets();
    if (state.selectedId !== null) loadMessages();
  }

  const live = {
    socket: null,
    attempt: 0,
    timer: null,
    watchdog: null,
    downSince: null,

    async connect() {
      clearTimeout(this.timer);
      this.timer = null;
      setIndicator(this.downSince ? "reconnecting" : "connecting");
      let ticket;
      try {
        ticket = (await api("/api/v1/auth/ws-ticket", { method: "POST" })).ticket;
      } catch (error) {
        if (error.status !== 401) this.retry();
        return;
      }
      const socket = new WebSocket(eventsUrl(location, ticket, state.lastEventId));
      this.socket = socket;
      socket.addEventListener("open", () => {
        setIndicator("live");
        if (this.downSince && Date.now() - this.downSince > RESYNC_AFTER_MS) resync();
        this.downSince = null;
        this.arm();
      });
      socket.addEventListener("message", (frame) => {
        this.attempt = 0; // a socket that delivers is healthy: the next drop starts the backoff over
        this.arm();
        let event;
        try {
          event = JSON.parse(frame.data);
        } catch {
          return;
        }
        onEvent(event);
      });
      socket.addEventListener("close", () => {
        if (this.socket !== socket) return;
        this.socket = null;
        clearTimeout(this.watchdog);
        this.downSince = this.downSince || Date.now();
        this.retry();
      });
    },

    arm() {
      clearTimeout(this.watchdog);
      const socket = this.socket;
      this.watchdog = setTimeout(() => socket && socket.close(), WATCHDOG_MS);
    },

    retry() {
      this.downSince = this.downSince || Date.now();
      setIndicator(navigator.onLine === false ? "offline" : "reconnecting");
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.connect(), backoffDelay(this.attempt));
      this.attempt += 1;
    },

    nudge() {
      if (!this.socket && this.timer !== null) this.connect(); // back online: do not wait out the backoff
    },
  };

  // --- wiring ---

  ui.tabs.addEventListener("click", (event) => {
    const button = event.target.closest("[data-status]");
    if (button) switchTab(button.dataset.status);
  });
  ui.list.addEventListener("click", (event) => {
    const button = event.target.closest("button.ticket");
    if (button) selectTicket(Number(button.dataset.id));
  });
  ui.listMore.addEventListener("click", () => loadTickets({ more: true }));
  ui.older.addEventListener("click", () => loadMessages({ older: true }));
  ui.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    sendReply();
  });
  ui.text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendReply();
    }
  });
  ui.logout.addEventListener("click", goToLogin);
  window.addEventListener("online", () => live.nudge());
  window.addEventListener("offline", () => setIndicator("offline"));

  renderHeader();
  live.connect();
  loadTickets();
  const fromHash = /^#ticket-(\d+)$/.exec(location.hash);
  if (fromHash) selectTicket(Number(fromHash[1]));
}

if (typeof document !== "undefined") {
  main();
} else if (typeof module !== "undefined") {
  module.exports = {
    STRINGS,
    addMessage,
    addOptimistic,
    applyEvent,
    backoffDelay,
    compareTickets,
    contactLabel,
    createState,
    eventsUrl,
    failOptimistic,
    format,
    mergeMessage,
    openTicket,
    orderedMessages,
    orderedTickets,
    resolveOptimistic,
    tickFor,
    upsertTicket,
    uuid4,
  };
}
