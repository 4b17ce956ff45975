// Atende agent inbox: the ticket list, one conversation with its actions, the reply box, the contact panel, and
// live updates over the events WebSocket.
//
// The page is a shell: everything comes from /api/v1 with the Bearer token kept in sessionStorage. Two halves:
// pure state logic (no DOM, exported for the Node tests in tests/integration/test_ui.py) and the DOM around it.
// All user text goes through textContent; this file never assigns HTML.
import { api, ApiError, applyStrings, authorizedFetch, el, format, fullFormat, goToLogin, option, sessionToken }
  from "./common.js";

// Every string this page shows, in one place (to be translated later).
const STRINGS = {
  brand: "Atende",
  nav_label: "Pages",
  dashboard: "Dashboard",
  tickets: "Tickets",
  status_tabs: "Status",
  tab_pending: "Pending",
  tab_open: "Open",
  tab_closed: "Closed",
  filters: "Filters",
  filter_mine: "Mine",
  filter_unassigned: "Unassigned",
  filter_snoozed: "Snoozed",
  filter_queue: "Queue",
  all_queues: "All queues",
  search: "Search",
  search_in: "Search in",
  search_contacts: "Search contacts by name or phone",
  search_messages: "Search messages (every word)",
  search_mode_contacts: "Contacts",
  search_mode_messages: "Messages",
  search_results: "Messages found",
  search_hint: "Type at least two characters to search messages.",
  no_results: "No messages match.",
  no_tickets: "No tickets here.",
  load_more: "Load more",
  load_older: "Load older messages",
  select_ticket: "Select a conversation on the left.",
  reply: "Reply",
  reply_placeholder: "Type a reply — Enter sends, Shift+Enter adds a line, / for quick replies",
  note_placeholder: "Private note — only your team sees it. Enter saves.",
  caption_placeholder: "Caption (optional) — Enter sends the file",
  send: "Send",
  save_note: "Save note",
  sending: "Sending…",
  note_toggle: "Note",
  attach: "Attach",
  remove_attachment: "Remove",
  attachment_label: "{name} ({size})",
  quick_replies: "Quick replies",
  quick_reply_scopes: { user: "mine", queue: "queue", tenant: "everyone" },
  logout: "Log out",
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  offline: "Offline",
  presence_label: "My status",
  presence_online: "Online",
  presence_away: "Away",
  whatsapp: "WhatsApp",
  show_qr: "Show QR",
  ticket_number: "Ticket #{number}",
  status_names: { pending: "Pending", open: "Open", closed: "Closed" },
  priority: "Priority",
  priority_names: { low: "Low", normal: "Normal", high: "High", urgent: "Urgent" },
  priority_low: "Low",
  priority_normal: "Normal",
  priority_high: "High",
  priority_urgent: "Urgent",
  waiting: "waiting {duration}",
  duration_under_minute: "<1 min",
  duration_minutes: "{m} min",
  duration_hours: "{h} h",
  duration_hours_minutes: "{h} h {m} min",
  duration_days: "{d} d",
  duration_days_hours: "{d} d {h} h",
  snoozed_until: "snoozed until {time}",
  unread_count: "{count} unread",
  assigned_to_you: "assigned to you",
  assigned_to: "assigned to {name}",
  assigned_other: "assigned to another agent",
  unassigned: "unassigned",
  queue_named: "queue {name}",
  tags: "Tags",
  ticket_actions: "Ticket actions",
  accept: "Accept",
  reopen: "Reopen",
  transfer: "Transfer…",
  snooze: "Snooze…",
  wake: "Wake up",
  edit_tags: "Tags…",
  close_ticket: "Close…",
  contact: "Contact",
  banner_closed: "This ticket is closed. Reopen it to reply; notes can still be added.",
  banner_blocked: "This contact is blocked: replies are off.",
  banner_snoozed: "Snoozed until {time}: it comes back then, or when the customer writes.",
  banner_bot: "The chatbot is waiting for the customer to pick an option.",
  hidden_notice: "Ticket #{number} left your inbox (transferred, or taken by someone else).",
  hidden_notice_unknown: "That conversation left your inbox (transferred, or taken by someone else).",
  private_note: "Private note",
  private_note_by: "Private note · {name}",
  automated: "Automated",
  transfer_title: "Transfer ticket",
  transfer_queue: "Queue",
  transfer_user: "Agent",
  transfer_connection: "WhatsApp number",
  transfer_note: "Note for the team (optional)",
  transfer_keep_queue: "Keep the current queue",
  transfer_keep_user: "No specific agent",
  transfer_keep_connection: "Keep the current number",
  transfer_submit: "Transfer",
  transfer_nothing: "Choose a queue, an agent or a number to transfer to.",
  user_option: "{name} — {presence}",
  presence_names: { online: "online", away: "away", offline: "offline" },
  connection_option: "{name} ({number})",
  connection_option_state: "{name} ({number}) — {state}",
  close_title: "Close ticket",
  close_farewell: "Farewell message",
  close_farewell_placeholder: "Empty: the workspace's farewell message",
  close_farewell_none: "The workspace sends no farewell message; type one to send it.",
  close_farewell_hint: "Left empty, the farewell shown in the box is sent.",
  close_no_farewell: "Send no farewell message",
  close_survey: "Ask for a satisfaction rating",
  close_group: "Groups are never asked for a rating.",
  close_blocked: "The contact is blocked: closing sends them nothing.",
  close_submit: "Close ticket",
  snooze_title: "Snooze until…",
  snooze_hour: "In 1 hour",
  snooze_tomorrow: "Tomorrow at 9:00",
  snooze_custom: "Or pick a date and time",
  snooze_submit: "Snooze",
  snooze_invalid: "Pick a moment in the future.",
  tags_title: "Ticket tags",
  contact_tags_title: "Contact tags",
  no_tags: "No tags yet: an admin or supervisor creates them.",
  save: "Save",
  saved: "Saved.",
  cancel: "Cancel",
  contact_details: "Contact",
  hide_panel: "Hide",
  contact_name: "Name",
  contact_phone: "Phone",
  contact_email: "E-mail",
  push_name: "WhatsApp name: {name}",
  custom_fields: "Custom fields",
  field_name: "Field",
  field_value: "Value",
  add_field: "Add field",
  remove_field: "Remove field {name}",
  field_invalid_name: "“{name}” is not a valid field name: letters, digits, space, _ . - (up to 64).",
  field_duplicate: "The field “{name}” appears twice.",
  field_too_long: "The value of “{name}” is too long (1024 characters at most).",
  field_too_many: "At most 50 custom fields.",
  contact_tags: "Contact tags",
  edit_contact_tags: "Edit tags",
  block: "Block contact",
  unblock: "Unblock contact",
  contact_notes: "Notes",
  new_contact_note: "New note",
  contact_note_placeholder: "A note about this contact",
  add_note: "Add note",
  no_notes: "No notes yet.",
  previous_tickets: "Tickets",
  ticket_line: "#{number} · {status} · {when}",
  activity: "Activity",
  no_activity: "Nothing yet.",
  activity_by: "{action} · {name}",
  activity_to: "{action} → {target}",
  you: "you",
  activity_actions: {
    routed: "Routed by the chatbot",
    accepted: "Accepted",
    assigned: "Assigned",
    transferred: "Transferred",
    returned: "Returned to the queue",
    closed: "Closed",
    reopened: "Reopened",
    priority: "Priority changed",
    snoozed: "Snoozed",
    woke: "Woken up",
    tagged: "Tags changed",
    rated: "Rated by the customer",
    merged: "Merged into another ticket",
  },
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
  action_failed: "That did not work: {reason}",
  load_failed: "Could not load: {reason}",
  caption_too_long: "A caption has at most 1024 characters.",
  file_too_large: "The file is larger than 100 MB.",
  unknown_error: "unexpected error",
  media_uploading: "Sending {name}…",
  media_pending: "{kind} on its way from WhatsApp…",
  media_failed: "The file could not be downloaded: {reason}",
  media_rejected: "The file was not kept: {reason}",
  media_unavailable: "The file is not available.",
  media_load: "Show {kind} ({size})",
  media_download: "Download {name} ({size})",
  media_download_unsized: "Download {name}",
  media_loading: "Loading…",
  size_bytes: "{n} B",
  size_kb: "{n} KB",
  size_mb: "{n} MB",
  errors: {
    ticket_closed: "The ticket is closed; reopen it first.",
    ticket_not_closed: "The ticket is not closed.",
    active_ticket_exists: "The contact already has an active ticket there; continue in that one.",
    contact_blocked: "The contact is blocked; unblock it to reply.",
    user_unavailable: "That agent is disabled or has not accepted the invitation.",
    ticket_not_found: "The ticket is not in your inbox any more.",
    media_too_large: "The file is too large for WhatsApp.",
    media_type_not_allowed: "WhatsApp does not accept this type of file.",
    media_type_mismatch: "The file's content does not match its type.",
    media_empty: "The file is empty.",
    permission_denied: "Your role is not allowed to do that.",
    forbidden: "Your role is not allowed to do that.",
    network_error: "Could not reach the server.",
  },
  kinds: {
    text: "Message",
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

const PRESENCE_KEY = "atende.presence"; // the online/away choice, for this browser tab's session

const TABS = ["pending", "open", "closed"];
const PAGE_SIZE = 50;
const SEARCH_PAGE_SIZE = 20;
// The server's ranks (saas/tickets/rules.py): the list sorts higher ranks first.
const PRIORITIES = ["low", "normal", "high", "urgent"];
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
const HEARTBEAT_MS = 20000; // the server marks an agent offline 60 s after the last frame
const RESYNC_AFTER_MS = 30000; // offline longer than this: reload the list too, the replay may have been trimmed
const EARLY_LIMIT = 200; // status updates kept for messages not shown yet
const HIDDEN_LIMIT = 500; // ids of tickets the viewer lost sight of, kept so a late answer does not bring them back
const AUTOLOAD_BYTES = 8 * 1024 * 1024; // media up to this size is fetched as soon as it is shown
const MAX_UPLOAD_BYTES = 100 * 1024 * 1024; // WhatsApp's largest file (documents); the server checks each kind
const MAX_CAPTION = 1024;
const INLINE_IMAGES = ["image/jpeg", "image/png", "image/webp"]; // what the server serves inline as an image
const SCOPE_ORDER = { user: 0, queue: 1, tenant: 2 };
const FIELD_NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_ .-]{0,63}$/; // saas/contacts/schemas.py
const MAX_FIELDS = 50;
const MAX_FIELD_VALUE = 1024;
const COLOR_RE = /^#[0-9a-fA-F]{6}$/;

// ---------------------------------------------------------------------------------------------------------------
// Pure logic

function statusRank(status) {
  return Object.hasOwn(STATUS_RANK, status) ? STATUS_RANK[status] : -1;
}

const ISO_RE = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?)(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})?$/i;

/** Microseconds since the epoch of an ISO timestamp, at PostgreSQL's resolution (Date.parse stops at
 * milliseconds, and the server orders by microseconds); 0 for none or garbage. */
function isoMicros(iso) {
  if (!iso) return 0;
  const match = ISO_RE.exec(iso);
  if (!match) {
    const ms = Date.parse(iso);
    return Number.isNaN(ms) ? 0 : ms * 1000;
  }
  const ms = Date.parse(match[1] + (match[3] || "Z"));
  if (Number.isNaN(ms)) return 0;
  return ms * 1000 + Number((match[2] || "").padEnd(6, "0").slice(0, 6));
}

/** The time a ticket sorts by: its last message, else its creation (microseconds). */
function ticketActivity(ticket) {
  return isoMicros(ticket.last_message_at || ticket.created_at);
}

function priorityRank(priority) {
  const rank = PRIORITIES.indexOf(priority);
  return rank < 0 ? 1 : rank; // a partial event without a priority sorts as normal until the ticket is complete
}

/** The server's inbox order (saas/tickets/rules.py): higher priority first; then customers waiting for an
 * answer, the longest-waiting first; then the most recent activity; then the higher id. */
function compareTickets(a, b) {
  const byPriority = priorityRank(b.priority) - priorityRank(a.priority);
  if (byPriority) return byPriority;
  const waitA = a.waiting_since ? isoMicros(a.waiting_since) : null;
  const waitB = b.waiting_since ? isoMicros(b.waiting_since) : null;
  if ((waitA === null) !== (waitB === null)) return waitA === null ? 1 : -1;
  if (waitA !== null && waitA !== waitB) return waitA - waitB;
  return ticketActivity(b) - ticketActivity(a) || b.id - a.id;
}

function contactLabel(contact) {
  if (!contact) return "";
  return contact.name || contact.phone || (contact.wa_id || "").split("@")[0];
}

/** The user id and role in an access token (a JWT: the payload is base64url JSON); nulls when unreadable.
 * Only for showing the right controls: the API checks every permission itself. */
function tokenClaims(token) {
  try {
    const part = String(token).split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")), (c) =>
      c.charCodeAt(0),
    );
    const payload = JSON.parse(new TextDecoder().decode(bytes));
    const userId = Number(payload.sub);
    return { userId: Number.isSafeInteger(userId) ? userId : null, role: String(payload.role || "") };
  } catch {
    return { userId: null, role: "" };
  }
}

/** Admins and supervisors see the dashboard link and may block contacts. */
function isLead(role) {
  return role === "admin" || role === "supervisor";
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

/** The message for a problem code from the API (or the server's own words when we have none). */
function errorText(code, fallback) {
  if (code && Object.hasOwn(STRINGS.errors, code)) return STRINGS.errors[code];
  if (code === "http_403") return STRINGS.errors.permission_denied;
  return fallback || STRINGS.unknown_error;
}

/** A short human duration: "<1 min", "12 min", "2 h 5 min", "3 d 4 h". */
function shortDuration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return STRINGS.duration_under_minute;
  const m = Math.floor(s / 60);
  if (m < 60) return format(STRINGS.duration_minutes, { m });
  const h = Math.floor(m / 60);
  if (h < 24) return format(m % 60 ? STRINGS.duration_hours_minutes : STRINGS.duration_hours, { h, m: m % 60 });
  const d = Math.floor(h / 24);
  return format(h % 24 ? STRINGS.duration_days_hours : STRINGS.duration_days, { d, h: h % 24 });
}

/** "waiting 12 min" while the customer waits for an answer (none once closed). */
function waitingLabel(ticket, now = Date.now()) {
  if (!ticket.waiting_since || ticket.status === "closed") return "";
  return format(STRINGS.waiting, { duration: shortDuration((now * 1000 - isoMicros(ticket.waiting_since)) / 1e6) });
}

function isSnoozed(ticket, now = Date.now()) {
  return Boolean(ticket.snoozed_until) && isoMicros(ticket.snoozed_until) > now * 1000;
}

/** The badge of a priority other than normal: {label, className}; null for normal (the usual case stays quiet). */
function priorityBadge(priority) {
  if (!PRIORITIES.includes(priority) || priority === "normal") return null;
  return { label: STRINGS.priority_names[priority], className: `priority-${priority}` };
}

/** A tag's color when it is a plain #rrggbb (it is applied through a CSS custom property), else null. */
function tagColor(color) {
  return typeof color === "string" && COLOR_RE.test(color) ? color : null;
}

function formatBytes(n) {
  if (typeof n !== "number" || !Number.isFinite(n) || n < 0) return "";
  if (n < 1024) return format(STRINGS.size_bytes, { n });
  if (n < 1024 * 1024) return format(STRINGS.size_kb, { n: Math.round(n / 1024) });
  return format(STRINGS.size_mb, { n: (n / (1024 * 1024)).toFixed(1) });
}

/** The message kind a file is sent as when the server picks it from the type (supervisor/media.py). */
function kindForMime(mime) {
  const type = String(mime || "").toLowerCase();
  if (type.startsWith("image/")) return "image";
  if (type.startsWith("video/")) return "video";
  if (type.startsWith("audio/")) return "audio";
  return "document";
}

/** How a message's media is shown:
 * ``{show: "progress" | "error", label}`` while it is not available, or, once stored,
 * ``{show: "image" | "audio" | "video" | "file", url, autoload, label, filename}``: images, audio and video up to
 * AUTOLOAD_BYTES are fetched as they appear; larger ones wait for a click ("Show video (12 MB)"); anything else
 * is a download link. Null for a message without media. */
function mediaView(message) {
  const media = message.media;
  if (!media) return null;
  const kind = STRINGS.kinds[message.kind] || STRINGS.kinds.document;
  const name = media.filename || kind;
  switch (media.state) {
    case "uploading":
      return { show: "progress", label: format(STRINGS.media_uploading, { name }) };
    case "pending":
      return { show: "progress", label: format(STRINGS.media_pending, { kind }) };
    case "failed":
      return { show: "error", label: format(STRINGS.media_failed, { reason: media.error || STRINGS.unknown_error }) };
    case "rejected":
      return { show: "error", label: format(STRINGS.media_rejected, { reason: media.error || STRINGS.unknown_error }) };
    case "stored":
      break;
    default:
      return { show: "error", label: STRINGS.media_unavailable };
  }
  if (!media.url) return { show: "error", label: STRINGS.media_unavailable };
  const type = String(media.mime || "").split(";")[0].trim().toLowerCase();
  let show = "file";
  if (INLINE_IMAGES.includes(type)) show = "image";
  else if (type.startsWith("audio/")) show = "audio";
  else if (type.startsWith("video/")) show = "video";
  const size = formatBytes(media.size);
  const filename = media.filename || `${message.kind || "media"}-${message.id}`;
  if (show === "file") {
    const label = size ? format(STRINGS.media_download, { name, size }) : format(STRINGS.media_download_unsized, { name });
    return { show, url: media.url, autoload: false, label, filename };
  }
  const autoload = typeof media.size !== "number" || media.size <= AUTOLOAD_BYTES;
  return { show, url: media.url, autoload, label: format(STRINGS.media_load, { kind, size }), filename };
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

/** The frame that keeps the agent online (or away) on the events socket; sent on open and every 20 s. */
function presenceFrame(status) {
  return JSON.stringify({ type: "presence", status: status === "away" ? "away" : "online" });
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

/** ``viewer``: ``{userId, role}`` from the token (see tokenClaims). */
function createState(tab = "pending", viewer = {}) {
  return {
    tab, // which status the list shows
    filters: { mine: false, unassigned: false, snoozed: false, queueId: null, q: "" },
    me: viewer.userId ?? null,
    role: viewer.role || "",
    tickets: new Map(), // id -> ticket, only tickets of the current list (tab + filters)
    ticketsCursor: null,
    selectedId: null,
    selected: null, // the open ticket (stays open even when it leaves the current list)
    messages: new Map(), // id -> message of the open ticket
    messagesCursor: null,
    pending: new Map(), // client_id -> optimistic message {client_id, ticket_id, text, private, sending, error}
    early: new Map(), // message id -> a status update that overtook its message (the send can beat the POST answer)
    hidden: new Set(), // tickets the viewer lost sight of (ticket.hidden), until an event shows them again
    presence: new Map(), // user id -> online | away | offline (the directory's, then presence.updated)
    // The team directory (GET /api/v1/directory, see applyDirectory): every queue, the people, every number and
    // what closing a ticket does by default; the same for every role.
    directoryLoaded: false,
    queues: new Map(), // id -> {id, name, color, strategy, member_ids}
    people: new Map(), // id -> {id, name, role, presence}: active users who accepted their invitation
    connections: new Map(), // id -> {id, name, business_number, provider, state}
    closeDefaults: null, // {farewell_message, csat_enabled}
    timezone: null, // the workspace's
    contact: null, // the contact shown in the side panel (the API's contact detail)
    sessions: new Map(), // connection_id -> last session.updated data
    lastEventId: null,
  };
}

/** Whether ``ticket`` belongs in the list: the tab, the snoozed switch, and the mine/unassigned/queue filters.
 * (The contact search is the server's: a searched list takes in no ticket it did not list itself.) */
function ticketMatches(state, ticket, now = Date.now()) {
  if (!ticket || !ticket.contact || ticket.status !== state.tab) return false;
  const f = state.filters;
  if (isSnoozed(ticket, now) !== f.snoozed) return false;
  if (f.mine && ticket.user_id !== state.me) return false;
  if (f.unassigned && ticket.user_id != null) return false;
  if (f.queueId !== null && ticket.queue_id !== f.queueId) return false;
  return true;
}

/** The query of a list page: the tab, the filters, the contact search, the cursor. */
function ticketListParams(state, cursor = null) {
  const params = new URLSearchParams({ status: state.tab, limit: String(PAGE_SIZE) });
  const f = state.filters;
  if (f.mine) params.set("mine", "true");
  if (f.unassigned) params.set("unassigned", "true");
  if (f.snoozed) params.set("snoozed", "true");
  if (f.queueId !== null) params.set("queue_id", String(f.queueId));
  if (f.q) params.set("q", f.q);
  if (cursor) params.set("cursor", cursor);
  return params.toString();
}

function rememberHidden(state, id) {
  state.hidden.delete(id);
  state.hidden.add(id);
  if (state.hidden.size > HIDDEN_LIMIT) state.hidden.delete(state.hidden.values().next().value);
}

/** Put ``ticket`` (a whole ticket from the API) in the list if it belongs there, else drop it; keeps the open
 * ticket in step. ``snapshot``: a list page, which never overwrites a ticket an event has already moved past;
 * ``visible``: the ticket was just read by id, so the viewer sees it (again). An action's answer for a ticket
 * the viewer has lost sight of since does not bring it back. Returns true on change. */
function upsertTicket(state, ticket, { snapshot = false, visible = false, now = Date.now() } = {}) {
  if (visible) state.hidden.delete(ticket.id);
  if (state.hidden.has(ticket.id)) return false;
  const existing = state.tickets.get(ticket.id);
  if (snapshot && existing) {
    const newerActivity = ticketActivity(existing) > ticketActivity(ticket);
    const newerUpdate = isoMicros(existing.updated_at) > isoMicros(ticket.updated_at);
    if (newerActivity || newerUpdate) return false;
  }
  const merged = existing ? { ...existing, ...ticket } : ticket;
  const open = state.selectedId === ticket.id;
  if (open) state.selected = state.selected ? { ...state.selected, ...ticket } : merged;
  if (ticketMatches(state, merged, now) && (existing || snapshot || !state.filters.q)) {
    state.tickets.set(ticket.id, merged);
    return true;
  }
  return state.tickets.delete(ticket.id) || open;
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

/** A stored message of the open ticket arrived (API page, POST answer or event). Our own message (or note) that
 * is still shown as optimistic is adopted: matched by client_id when the server sends it, else by its text. */
function addMessage(state, message) {
  if (message.ticket_id !== state.selectedId) return false;
  if (!state.messages.has(message.id) && message.from_me) {
    for (const [clientId, optimistic] of state.pending) {
      if (optimistic.ticket_id !== message.ticket_id) continue;
      const same = message.client_id
        ? message.client_id === clientId
        : optimistic.text === message.text && Boolean(optimistic.private) === Boolean(message.private);
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

/** Show our message (or private note, or file) at once, before the API answers. A retry keeps its place. */
function addOptimistic(state, clientId, text, { private: isPrivate = false, kind = "text", media = null,
  now = new Date() } = {}) {
  const previous = state.pending.get(clientId);
  state.pending.set(clientId, {
    ...previous,
    client_id: clientId,
    ticket_id: state.selectedId,
    from_me: true,
    kind,
    text,
    private: isPrivate,
    media,
    status: isPrivate ? "NOTE" : "QUEUED",
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

/** Which of the conversation's actions apply to ``ticket`` for this viewer. */
function ticketActions(ticket, { me = null, role = "" } = {}, now = Date.now()) {
  const closed = ticket.status === "closed";
  const snoozed = isSnoozed(ticket, now);
  const takeable = ticket.status === "pending" || ticket.user_id == null || (ticket.user_id !== me && isLead(role));
  return {
    accept: !closed && takeable,
    reopen: closed,
    transfer: !closed,
    close: !closed,
    snooze: !closed && !snoozed,
    wake: !closed && snoozed,
    tags: true,
    priority: true,
    reply: !closed && !(ticket.contact && ticket.contact.blocked),
  };
}

/** The team directory (the answer of GET /api/v1/directory) into the state: every queue, the people with their
 * presence (which presence.updated keeps current), every number, the close defaults and the time zone. */
function applyDirectory(state, directory) {
  state.queues = new Map((directory.queues || []).map((q) => [q.id, q]));
  state.people = new Map((directory.people || []).map((p) => [p.id, p]));
  for (const person of state.people.values()) state.presence.set(person.id, person.presence);
  state.connections = new Map((directory.connections || []).map((c) => [c.id, c]));
  state.closeDefaults = directory.close_defaults || null;
  state.timezone = directory.timezone || null;
  state.directoryLoaded = true;
}

/** A user's name from the directory; null when it does not name them (gone, or not loaded yet). */
function personName(state, id) {
  if (id === null || id === undefined) return null;
  const person = state.people.get(id);
  return person && person.name ? person.name : null;
}

/** The queues the list can be filtered by: every queue for admins; for everyone else the queues they are in,
 * since their lists only hold those queues' tickets (the same as GET /api/v1/queues answers them). */
function filterQueues(state) {
  const queues = [...state.queues.values()];
  if (state.role === "admin") return queues;
  return queues.filter((q) => (q.member_ids || []).includes(state.me));
}

/** What the transfer dialog offers for ``ticket``, the same for every role: every other queue; the people —
 * the members of the chosen queue (``queueId``, a select value; "" keeps the current queue: everyone) except the
 * one who has it, each with their live presence; and every other number. */
function transferChoices(state, ticket, queueId = "") {
  const queue = queueId === "" ? null : state.queues.get(Number(queueId));
  const members = queue ? new Set(queue.member_ids || []) : null;
  return {
    queues: [...state.queues.values()].filter((q) => q.id !== ticket.queue_id),
    people: [...state.people.values()]
      .filter((p) => p.id !== ticket.user_id && (!members || members.has(p.id)))
      .map((p) => ({ ...p, presence: state.presence.get(p.id) || p.presence })),
    connections: [...state.connections.values()].filter((c) => c.id !== ticket.connection_id),
  };
}

/** A person as the agent picker lists them: "Ana — online". */
function personOption(person) {
  const presence = STRINGS.presence_names[person.presence] || person.presence || STRINGS.presence_names.offline;
  return format(STRINGS.user_option, { name: person.name, presence });
}

/** A number as the transfer dialog lists it, with its session state unless it is connected. */
function connectionOption(connection) {
  const values = { name: connection.name, number: connection.business_number };
  if (!connection.state || connection.state === "CONNECTED") return format(STRINGS.connection_option, values);
  const label = STRINGS.session_states[connection.state] || connection.state;
  return format(STRINGS.connection_option_state, { ...values, state: label });
}

/** One line of the ticket's activity log (GET /tickets/{id}/events): the action, where it went (the person it
 * was assigned to, the queue it was routed to, the queue, person and number a transfer changed) and who did it
 * (unless the viewer). Names come from the directory; what it does not name is left out. */
function activityText(state, event) {
  const action = STRINGS.activity_actions[event.action] || event.action;
  const details = event.details || {};
  const who = (id) => (id === state.me ? STRINGS.you : personName(state, id));
  const named = (map, id) => (map.has(id) ? map.get(id).name : null);
  let targets = [];
  if (event.action === "transferred" && details.to) {
    const from = details.from || {};
    const to = details.to;
    const changed = (key) => to[key] != null && to[key] !== from[key];
    if (changed("queue_id")) targets.push(named(state.queues, to.queue_id));
    if (changed("user_id")) targets.push(who(to.user_id));
    if (changed("connection_id")) targets.push(named(state.connections, to.connection_id));
  } else if (event.action === "assigned" && details.user_id != null && details.user_id !== event.actor_id) {
    targets.push(who(details.user_id));
  } else if (event.action === "routed" && details.queue_id != null) {
    targets.push(named(state.queues, details.queue_id));
  }
  targets = targets.filter(Boolean);
  const what = targets.length ? format(STRINGS.activity_to, { action, target: targets.join(", ") }) : action;
  const by = event.actor_id != null && event.actor_id !== state.me ? personName(state, event.actor_id) : null;
  return by ? format(STRINGS.activity_by, { action: what, name: by }) : what;
}

/** The body of POST /tickets/{id}/transfer from the dialog's values (select values are strings; "" keeps the
 * current one): ``{body}``, or ``{error}`` when nothing would change. */
function transferBody(ticket, { queueId = "", userId = "", connectionId = "", note = "" } = {}) {
  const body = {};
  if (queueId !== "" && Number(queueId) !== ticket.queue_id) body.queue_id = Number(queueId);
  if (userId !== "" && Number(userId) !== ticket.user_id) body.user_id = Number(userId);
  if (connectionId !== "" && Number(connectionId) !== ticket.connection_id) body.connection_id = Number(connectionId);
  if (!Object.keys(body).length) return { error: STRINGS.transfer_nothing };
  if (note.trim()) body.note = note.trim();
  return { body };
}

/** The body of POST /tickets/{id}/close: only what the agent changed, so the workspace's defaults apply to the
 * rest. An empty farewell field leaves the workspace's farewell; "no farewell" sends ``""`` (unless the workspace
 * sends none anyway); ``survey`` goes only when it differs from what the dialog showed (``defaults``, from
 * closeDialogState; without them, only when not null). */
function closeBody({ farewell = "", noFarewell = false, survey = null } = {}, defaults = null) {
  const body = {};
  if (noFarewell) {
    if (!defaults || defaults.farewell) body.farewell = "";
  } else if (farewell.trim()) {
    body.farewell = farewell.trim();
  }
  if (survey !== null && !(defaults && Boolean(survey) === Boolean(defaults.survey))) body.survey = Boolean(survey);
  return body;
}

/** What the close dialog shows for ``ticket`` from the directory's ``close_defaults``: what closing does unless
 * the agent says otherwise (as saas/tickets/actions.py decides: a blocked contact gets nothing, a group no survey)
 * — ``farewell`` (the text sent, ``""`` none), ``survey`` (the checkbox's starting state) — the farewell box's
 * ``placeholder`` (the very text that goes out), which controls apply, and a ``hint``. Null without defaults. */
function closeDialogState(defaults, ticket) {
  if (!defaults) return null;
  const contact = (ticket && ticket.contact) || {};
  const blocked = Boolean(contact.blocked);
  const group = String(contact.wa_id || "").endsWith("@g.us");
  const farewell = blocked ? "" : String(defaults.farewell_message || "");
  const hints = [];
  if (blocked) hints.push(STRINGS.close_blocked);
  else if (farewell) hints.push(STRINGS.close_farewell_hint);
  if (group && !blocked) hints.push(STRINGS.close_group);
  return {
    farewell,
    survey: !blocked && !group && Boolean(defaults.csat_enabled),
    placeholder: blocked ? "" : farewell || STRINGS.close_farewell_none,
    farewellEditable: !blocked,
    noFarewellShown: Boolean(farewell), // nothing to leave out when the workspace sends no farewell
    surveyEditable: !blocked && !group,
    hint: hints.join(" "),
  };
}

/** When a snooze ends, as ISO 8601 with its zone: ``hour`` (an hour from now), ``tomorrow`` (9:00 local time),
 * or ``custom`` (a datetime-local value, which is local time); null for a moment not in the future. */
function snoozeUntil(choice, now = new Date(), custom = "") {
  let until;
  if (choice === "hour") {
    until = new Date(now.getTime() + 3600 * 1000);
  } else if (choice === "tomorrow") {
    until = new Date(now.getTime());
    until.setDate(until.getDate() + 1);
    until.setHours(9, 0, 0, 0);
  } else if (choice === "custom" && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(custom)) {
    until = new Date(custom); // no zone: local time, as the browser showed it
  } else {
    return null;
  }
  if (Number.isNaN(until.getTime()) || until <= now) return null;
  return until.toISOString();
}

const QUICK_TOKEN = /(^|\s)\/([a-z0-9_-]*)$/i;

/** The "/shortcut" being typed at ``caret``: ``{start, end, prefix}``, or null when the caret is not at the end of
 * a word that starts with "/" (at the start of the text or after a space). */
function quickReplyQuery(text, caret = text.length) {
  const match = QUICK_TOKEN.exec(text.slice(0, caret));
  if (!match) return null;
  if (caret < text.length && !/\s/.test(text[caret])) return null;
  return { start: match.index + match[1].length, end: caret, prefix: match[2].toLowerCase() };
}

/** The quick replies whose shortcut starts with ``prefix``: exact and shorter shortcuts first (alphabetical),
 * then personal before queue before tenant-wide ones. */
function matchQuickReplies(replies, prefix, limit = 8) {
  const wanted = prefix.toLowerCase();
  return replies
    .filter((r) => r.shortcut.toLowerCase().startsWith(wanted))
    .sort((a, b) => {
      const sa = a.shortcut.toLowerCase();
      const sb = b.shortcut.toLowerCase();
      if (sa !== sb) return sa < sb ? -1 : 1;
      return (SCOPE_ORDER[a.scope] ?? 9) - (SCOPE_ORDER[b.scope] ?? 9) || a.id - b.id;
    })
    .slice(0, limit);
}

/** The composer text with the "/shortcut" of ``query`` replaced by the reply; and where the caret goes. */
function applyQuickReply(text, query, reply) {
  const next = text.slice(0, query.start) + reply.text + text.slice(query.end);
  return { text: next, caret: query.start + reply.text.length };
}

/** The custom fields of the contact form (rows of {name, value}; blank rows ignored), checked as the API will:
 * ``{fields}`` or ``{error, index}``. */
function customFieldsFrom(rows) {
  const fields = {};
  let count = 0;
  for (const [index, row] of rows.entries()) {
    const name = (row.name || "").trim();
    const value = row.value || "";
    if (!name && !value.trim()) continue;
    if (!FIELD_NAME_RE.test(name)) return { error: format(STRINGS.field_invalid_name, { name }), index };
    if (Object.hasOwn(fields, name)) return { error: format(STRINGS.field_duplicate, { name }), index };
    if (value.length > MAX_FIELD_VALUE) return { error: format(STRINGS.field_too_long, { name }), index };
    count += 1;
    if (count > MAX_FIELDS) return { error: STRINGS.field_too_many, index };
    fields[name] = value;
  }
  return { fields };
}

/** A contact as tickets carry it, from the API's contact detail (the list shows the WhatsApp name when the
 * contact has none of its own, like the server's ``coalesce(name, push_name)``). */
function ticketContact(detail) {
  return { id: detail.id, name: detail.name || detail.push_name || null, phone: detail.phone, wa_id: detail.wa_id,
    blocked: Boolean(detail.blocked) };
}

function emptyChanges() {
  return { tickets: false, conversation: false, sessions: false, presence: false, contact: false, fetch: [],
    hidden: null, contactMerged: null };
}

/** Apply one frame of the events socket. Returns what changed, which tickets must be fetched in full,
 * ``hidden`` ({id, number}) when the open conversation left the viewer's sight, and ``contactMerged`` (the
 * contact that absorbed the one in the side panel). */
function applyEvent(state, event, now = Date.now()) {
  const changes = emptyChanges();
  if (event.id) state.lastEventId = event.id;
  const data = event.data || {};
  switch (event.type) {
    case "message.created":
      changes.conversation = addMessage(state, data);
      break;
    case "message.deleted":
      // The provider's echo of a message we sent, stored before the send result named it: the real one stays.
      if (data.ticket_id === state.selectedId && state.messages.delete(data.id)) changes.conversation = true;
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
      delete patch.contact_id; // older events name the contact flat; the list keeps the API's nested contact
      delete patch.contact_name;
      delete patch.was;
      state.hidden.delete(data.id); // the socket sends a ticket's events only to viewers who may see it
      const known = state.tickets.get(data.id);
      if (state.selectedId === data.id) {
        state.selected = { ...state.selected, ...patch };
        changes.conversation = true;
      }
      const base = known || (state.selectedId === data.id ? state.selected : null);
      const merged = { ...base, ...patch };
      if (merged.contact) {
        if (ticketMatches(state, merged, now) && (known || !state.filters.q)) {
          state.tickets.set(data.id, merged);
          changes.tickets = true;
        } else if (known) {
          state.tickets.delete(data.id); // moved to another tab, or out of the filters
          changes.tickets = true;
        }
      } else if (patch.status === state.tab && !state.filters.q) {
        changes.fetch.push(data.id); // a partial event about a ticket new to this list: fetch it whole
      }
      break;
    }
    case "ticket.hidden": {
      const id = event.ticket_id ?? data.id;
      rememberHidden(state, id);
      changes.tickets = state.tickets.delete(id);
      for (const [clientId, optimistic] of state.pending) {
        if (optimistic.ticket_id === id) state.pending.delete(clientId);
      }
      if (state.selectedId === id) {
        changes.hidden = { id, number: state.selected ? state.selected.number : null };
        openTicket(state, null);
        changes.conversation = true;
      }
      break;
    }
    case "presence.updated":
      if (data.user_id !== undefined) {
        state.presence.set(data.user_id, data.presence);
        const person = state.people.get(data.user_id);
        if (person) state.people.set(data.user_id, { ...person, presence: data.presence });
        changes.presence = true;
      }
      break;
    case "contact.updated": {
      const contact = ticketContact(data);
      for (const [id, ticket] of state.tickets) {
        if (ticket.contact && ticket.contact.id === data.id) {
          state.tickets.set(id, { ...ticket, contact: { ...ticket.contact, ...contact } });
          changes.tickets = true;
        }
      }
      if (state.selected && state.selected.contact && state.selected.contact.id === data.id) {
        state.selected = { ...state.selected, contact: { ...state.selected.contact, ...contact } };
        changes.conversation = true;
      }
      if (state.contact && state.contact.id === data.id) {
        state.contact = { ...state.contact, ...data };
        changes.contact = true;
      }
      break;
    }
    case "contact.deleted":
      if (state.contact && state.contact.id === data.id) {
        changes.contactMerged = data.merged_into ?? null;
        state.contact = null;
        changes.contact = true;
      }
      break;
    case "session.updated":
      if (data.connection_id !== undefined) {
        state.sessions.set(data.connection_id, data);
        const connection = state.connections.get(data.connection_id);
        if (connection && data.state) state.connections.set(data.connection_id, { ...connection, state: data.state });
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

function reasonOf(error) {
  if (!(error instanceof ApiError)) return STRINGS.unknown_error;
  return errorText(error.code, error.message);
}

function sameDay(a, b) {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayFormat = new Intl.DateTimeFormat(undefined, { day: "2-digit", month: "2-digit" });

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

function fullTime(iso) {
  const when = new Date(iso);
  return Number.isNaN(when.getTime()) ? "" : fullFormat.format(when);
}

/** A <time> element showing ``text`` with the full date as its tooltip. */
function timeNode(iso, text) {
  const node = el("time", null, text);
  node.dateTime = iso || "";
  const full = fullTime(iso);
  if (full) node.title = full;
  return node;
}

/** A tag chip; its color goes through a CSS custom property (CSSOM, which the CSP allows; never a style attribute). */
function tagChip(tag) {
  const chip = el("span", "tag-chip", tag.name);
  const color = tagColor(tag.color);
  if (color) chip.style.setProperty("--tag-color", color);
  return chip;
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

/** Conversation media fetched with the token and shown through object URLs; URLs no longer shown are revoked. */
class MediaCache {
  constructor() {
    this.entries = new Map(); // API url -> {objectUrl, promise, dropped}
  }

  load(url) {
    let entry = this.entries.get(url);
    if (!entry) {
      entry = { objectUrl: null, dropped: false, promise: null };
      entry.promise = authorizedFetch(url).then(async (response) => {
        if (!response.ok) throw new ApiError(response.status, `http_${response.status}`, STRINGS.media_unavailable);
        const blob = await response.blob();
        if (entry.dropped) return null; // the message left the screen while it downloaded
        // A blob: URL is of our origin and carries none of the server's headers (its sandboxing CSP included),
        // so what matters is the blob's type, which is the response's: the server serves a file under its own
        // type only when it is inline media (JPEG/PNG/WebP, audio, video) and everything else, HTML and SVG
        // included, as application/octet-stream, which a browser only downloads. INLINE_IMAGES (the only ones
        // shown with <img> and opened in a tab) leaves SVG out too. So no blob here ever renders as a page of ours.
        entry.objectUrl = URL.createObjectURL(blob);
        return entry.objectUrl;
      });
      entry.promise.catch(() => this.entries.get(url) === entry && this.entries.delete(url));
      this.entries.set(url, entry);
    }
    return entry.promise;
  }

  /** Revoke every object URL whose API url is not in ``keep``. */
  keepOnly(keep) {
    for (const [url, entry] of this.entries) {
      if (keep.has(url)) continue;
      entry.dropped = true;
      if (entry.objectUrl) URL.revokeObjectURL(entry.objectUrl);
      this.entries.delete(url);
    }
  }
}

function main() {
  const token = sessionToken();
  if (!token) return;
  applyStrings(STRINGS);

  const $ = (id) => document.getElementById(id);
  const ui = {
    dashboardLink: $("dashboard-link"),
    presence: $("presence-select"),
    searchForm: $("search-form"),
    searchText: $("search-text"),
    searchMode: $("search-mode"),
    listView: $("list-view"),
    searchView: $("search-view"),
    searchResults: $("search-results"),
    searchEmpty: $("search-empty"),
    searchError: $("search-error"),
    searchMore: $("search-more"),
    tabs: $("ticket-tabs"),
    filters: $("ticket-filters"),
    queueFilter: $("filter-queue"),
    list: $("ticket-list"),
    listEmpty: $("tickets-empty"),
    listError: $("tickets-error"),
    listMore: $("tickets-more"),
    notice: $("conversation-notice"),
    empty: $("conversation-empty"),
    pane: $("conversation-pane"),
    title: $("conversation-title"),
    subtitle: $("conversation-subtitle"),
    tags: $("conversation-tags"),
    accept: $("action-accept"),
    reopen: $("action-reopen"),
    transfer: $("action-transfer"),
    snooze: $("action-snooze"),
    wake: $("action-wake"),
    editTags: $("action-tags"),
    priority: $("action-priority"),
    close: $("action-close"),
    contactToggle: $("action-contact"),
    banner: $("conversation-banner"),
    actionError: $("action-error"),
    scroll: $("message-scroll"),
    older: $("messages-older"),
    messagesError: $("messages-error"),
    messageList: $("message-list"),
    composer: $("composer"),
    quickReplies: $("quick-replies"),
    attachment: $("attachment"),
    attachmentName: $("attachment-name"),
    attachmentRemove: $("attachment-remove"),
    noteToggle: $("composer-note"),
    attach: $("composer-attach"),
    file: $("composer-file"),
    text: $("composer-text"),
    send: $("composer-send"),
    composerError: $("composer-error"),
    indicator: $("connection-indicator"),
    sessions: $("session-badges"),
    logout: $("logout"),
    app: $("inbox-app"),
    contactPanel: $("contact-panel"),
    contactClose: $("contact-close"),
    contactError: $("contact-error"),
    contactForm: $("contact-form"),
    contactName: $("contact-name"),
    contactPushName: $("contact-push-name"),
    contactPhone: $("contact-phone"),
    contactEmail: $("contact-email"),
    fieldList: $("custom-field-list"),
    fieldAdd: $("custom-field-add"),
    contactSaved: $("contact-saved"),
    contactTags: $("contact-tags"),
    blockSection: $("contact-block-section"),
    block: $("contact-block"),
    contactNoteForm: $("contact-note-form"),
    contactNoteText: $("contact-note-text"),
    contactNotes: $("contact-notes"),
    contactTickets: $("contact-tickets"),
    activity: $("ticket-activity"),
    transferDialog: $("transfer-dialog"),
    transferForm: $("transfer-form"),
    transferQueue: $("transfer-queue"),
    transferUser: $("transfer-user"),
    transferPresence: $("transfer-user-presence"),
    transferConnection: $("transfer-connection"),
    transferConnectionLabel: $("transfer-connection-label"),
    transferNote: $("transfer-note"),
    transferError: $("transfer-error"),
    closeDialog: $("close-dialog"),
    closeForm: $("close-form"),
    closeFarewell: $("close-farewell"),
    closeNoFarewell: $("close-no-farewell"),
    closeNoFarewellLabel: $("close-no-farewell-label"),
    closeSurvey: $("close-survey"),
    closeHint: $("close-hint"),
    closeError: $("close-error"),
    snoozeDialog: $("snooze-dialog"),
    snoozeForm: $("snooze-form"),
    snoozeCustom: $("snooze-custom"),
    snoozeError: $("snooze-error"),
    tagsDialog: $("tags-dialog"),
    tagsForm: $("tags-form"),
    tagsTitle: $("tags-title"),
    tagsChoices: $("tags-choices"),
    tagsEmpty: $("tags-empty"),
    tagsError: $("tags-error"),
  };
  const viewer = tokenClaims(token);
  const state = createState("pending", viewer);
  const lead = isLead(viewer.role);
  let tagList = []; // GET /api/v1/tags, read when the tag picker opens
  let directoryLoad = null; // the directory request in flight
  const lookedUp = new Set(); // people the directory did not name when an event mentioned them: asked once
  let closeView = null; // what the open close dialog shows (closeDialogState), null until the directory is in
  let activity = null; // {ticketId, events}: the open ticket's activity log as last read (renamed when the
  // directory changes)
  let contactNotes = null; // {contactId, notes}: the contact panel's notes as last read, likewise
  const ticketNodes = new Map();
  const messageNodes = new Map();
  const searchNodes = new Map();
  const media = new MediaCache();
  const drafts = new Map(); // ticket id -> unsent text
  const fetching = new Set();
  const quickReplyLists = new Map(); // ticket id -> Promise of its quick replies, filled in for it
  const search = { mode: "contacts", q: "", hits: [], cursor: null, generation: 0 };
  const composer = { note: false, file: null, sending: false, lastAttempt: null, query: null, matches: [], active: 0 };
  let listGeneration = 0;
  let conversationGeneration = 0;
  let contactGeneration = 0;
  let contactDirty = false;
  let readTimer = null;
  let searchTimer = null;
  let saveTags = null; // what the tag picker's Save does: the ticket's tags or the contact's

  ui.dashboardLink.hidden = !lead;
  ui.presence.value = sessionStorage.getItem(PRESENCE_KEY) === "away" ? "away" : "online";

  function showError(node, message) {
    node.textContent = message || "";
    node.hidden = !message;
  }

  /** Someone else's name (null for the viewer, who is "you" where it matters, and for people not named). */
  function userName(id) {
    return id === state.me ? null : personName(state, id);
  }

  // --- the team directory (queues, people, numbers, close defaults) and tags ---

  /** GET /api/v1/directory into the state (on start, on a resync, and when an event names someone new); every
   * name on the page follows. Rejects with the API's error; a load in flight is shared. */
  function loadDirectory() {
    if (!directoryLoad) {
      directoryLoad = api("/api/v1/directory")
        .then((answer) => {
          applyDirectory(state, answer);
          renderDirectory();
        })
        .finally(() => {
          directoryLoad = null;
        });
    }
    return directoryLoad;
  }

  /** The directory is in, or being read again by the dialog that needs it (a failure is the dialog's to show). */
  async function directoryReady() {
    if (!state.directoryLoaded) await loadDirectory();
  }

  /** An event named a user the directory does not know (say, an invitation just accepted): read it again, once
   * per such user, so their name shows. */
  function learnPerson(id) {
    if (id == null || !state.directoryLoaded || state.people.has(id) || lookedUp.has(id)) return;
    lookedUp.add(id);
    loadDirectory().catch(() => {}); // names stay unknown until the next resync
  }

  function renderDirectory() {
    const current = ui.queueFilter.value;
    const queues = filterQueues(state);
    ui.queueFilter.replaceChildren(option("", STRINGS.all_queues), ...queues.map((q) => option(q.id, q.name)));
    const kept = queues.some((q) => String(q.id) === current);
    ui.queueFilter.value = kept ? current : "";
    renderTickets();
    renderHeader();
    renderSessions();
    renderPresence();
    if (state.selectedId !== null) renderMessages();
    if (activity && activity.ticketId === state.selectedId) renderActivity(activity.events);
    if (contactNotes && state.contact && contactNotes.contactId === state.contact.id) {
      renderContactNotes(contactNotes.notes);
    }
    if (ui.transferDialog.open) fillTransfer();
    if (state.filters.queueId !== null && !kept) {
      state.filters.queueId = null; // the viewer left that queue
      reloadList();
    }
  }

  async function loadTags() {
    tagList = await api("/api/v1/tags");
    return tagList;
  }

  // --- ticket list ---

  function ticketMeta(ticket, now) {
    const meta = [];
    const badge = priorityBadge(ticket.priority);
    if (badge) meta.push(el("span", `badge priority ${badge.className}`, badge.label));
    const waiting = waitingLabel(ticket, now);
    if (waiting) meta.push(el("span", "waiting", waiting));
    if (isSnoozed(ticket, now)) {
      meta.push(el("span", "snoozed", format(STRINGS.snoozed_until, { time: shortTime(ticket.snoozed_until) })));
    }
    if (ticket.user_id != null && ticket.user_id !== state.me) {
      const name = userName(ticket.user_id);
      if (name) meta.push(el("span", "assignee", name));
    }
    for (const tag of ticket.tags || []) meta.push(tagChip(tag));
    return meta;
  }

  function buildTicket(ticket) {
    const now = Date.now();
    const item = el("li");
    const button = el("button", "ticket");
    button.type = "button";
    button.dataset.id = String(ticket.id);
    if (ticket.id === state.selectedId) button.setAttribute("aria-current", "true");
    if (ticket.unread_count > 0) button.classList.add("has-unread");
    if (ticket.priority === "urgent") button.classList.add("is-urgent");
    button.append(
      el("span", "ticket-name", contactLabel(ticket.contact)),
      el("span", "ticket-time", shortTime(ticket.last_message_at || ticket.created_at)),
      el("span", "ticket-preview", ticket.last_message_preview || ""),
    );
    if (ticket.unread_count > 0) {
      const badge = el("span", "badge unread");
      badge.append(el("span", null, ticket.unread_count > 99 ? "99+" : ticket.unread_count),
        el("span", "visually-hidden", ` ${format(STRINGS.unread_count, { count: ticket.unread_count })}`));
      button.append(badge);
    }
    const meta = ticketMeta(ticket, now);
    if (meta.length) {
      const row = el("span", "ticket-meta");
      row.append(...meta);
      button.append(row);
    }
    item.append(button);
    return item;
  }

  function renderTickets() {
    const tickets = orderedTickets(state);
    const now = Date.now();
    reconcile(
      ui.list,
      ticketNodes,
      tickets,
      (t) => t.id,
      (t) => JSON.stringify([contactLabel(t.contact), t.last_message_at, t.last_message_preview, t.unread_count,
        t.id === state.selectedId, shortTime(t.last_message_at || t.created_at), t.priority, waitingLabel(t, now),
        t.snoozed_until, t.user_id, userName(t.user_id), t.tags]),
      buildTicket,
    );
    ui.listEmpty.hidden = tickets.length > 0;
    ui.listMore.hidden = !state.ticketsCursor;
  }

  async function loadTickets({ more = false } = {}) {
    const generation = more ? listGeneration : ++listGeneration;
    ui.listMore.disabled = true;
    try {
      const page = await api(`/api/v1/tickets?${ticketListParams(state, more ? state.ticketsCursor : null)}`);
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

  /** The tab, a filter or the contact search changed: the list starts over. */
  function reloadList() {
    state.tickets.clear();
    state.ticketsCursor = null;
    renderTickets();
    loadTickets();
  }

  function switchTab(tab) {
    if (!TABS.includes(tab) || tab === state.tab) return;
    state.tab = tab;
    for (const button of ui.tabs.querySelectorAll("[data-status]")) {
      const selected = button.dataset.status === tab;
      button.setAttribute("aria-selected", String(selected));
      button.tabIndex = selected ? 0 : -1;
    }
    reloadList();
  }

  function toggleFilter(name) {
    state.filters[name] = !state.filters[name];
    if (name === "mine" && state.filters.mine) state.filters.unassigned = false; // mutually exclusive
    if (name === "unassigned" && state.filters.unassigned) state.filters.mine = false;
    for (const button of ui.filters.querySelectorAll("[data-filter]")) {
      button.setAttribute("aria-pressed", String(Boolean(state.filters[button.dataset.filter])));
    }
    reloadList();
  }

  async function fetchTicket(id) {
    if (fetching.has(id)) return;
    fetching.add(id);
    try {
      const ticket = await api(`/api/v1/tickets/${id}`);
      if (upsertTicket(state, ticket, { visible: true })) {
        renderTickets();
        if (id === state.selectedId) renderHeader();
      }
    } catch {
      // the next event or list load brings it in
    } finally {
      fetching.delete(id);
    }
  }

  // --- search ---

  function setSearchMode(mode) {
    search.mode = mode;
    const messages = mode === "messages";
    ui.searchText.placeholder = messages ? STRINGS.search_messages : STRINGS.search_contacts;
    ui.listView.hidden = messages;
    ui.searchView.hidden = !messages;
    if (messages) {
      if (state.filters.q) {
        state.filters.q = "";
        reloadList();
      }
      runSearch();
    } else {
      searchNodes.clear();
      ui.searchResults.replaceChildren();
      applyContactSearch();
    }
  }

  function applyContactSearch() {
    const q = ui.searchText.value.trim();
    if (q === state.filters.q) return;
    state.filters.q = q;
    reloadList();
  }

  function buildHit(hit) {
    const item = el("li");
    const button = el("button", "ticket hit");
    button.type = "button";
    button.dataset.id = String(hit.message.ticket_id);
    const status = STRINGS.status_names[hit.ticket_status] || hit.ticket_status;
    button.append(
      el("span", "ticket-name", contactLabel(hit.contact)),
      el("span", "ticket-time", shortTime(hit.message.occurred_at)),
      el("span", "ticket-preview hit-text", hit.message.text || ""),
      el("span", "ticket-meta", `${format(STRINGS.ticket_number, { number: hit.ticket_number })} · ${status}`),
    );
    if (hit.message.private) button.classList.add("is-note");
    item.append(button);
    return item;
  }

  function renderSearch() {
    reconcile(ui.searchResults, searchNodes, search.hits, (h) => h.message.id,
      (h) => JSON.stringify([h.message.text, h.ticket_status]), buildHit);
    const short = search.q.length < 2;
    ui.searchEmpty.textContent = short ? STRINGS.search_hint : STRINGS.no_results;
    ui.searchEmpty.hidden = search.hits.length > 0;
    ui.searchMore.hidden = !search.cursor;
  }

  async function runSearch({ more = false } = {}) {
    const q = ui.searchText.value.trim();
    const generation = more ? search.generation : ++search.generation;
    if (!more) {
      search.q = q;
      search.hits = [];
      search.cursor = null;
    }
    showError(ui.searchError, "");
    if (q.length < 2) {
      renderSearch();
      return;
    }
    const params = new URLSearchParams({ q, limit: String(SEARCH_PAGE_SIZE) });
    if (more && search.cursor) params.set("cursor", search.cursor);
    ui.searchMore.disabled = true;
    try {
      const page = await api(`/api/v1/search/messages?${params}`);
      if (generation !== search.generation) return;
      search.hits = [...search.hits, ...page.items];
      search.cursor = page.next_cursor;
    } catch (error) {
      if (generation === search.generation) showError(ui.searchError, format(STRINGS.load_failed, { reason: reasonOf(error) }));
    } finally {
      ui.searchMore.disabled = false;
    }
    renderSearch();
  }

  function onSearchInput() {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => (search.mode === "messages" ? runSearch() : applyContactSearch()), 300);
  }

  // --- conversation header and actions ---

  function subtitleParts(ticket) {
    const parts = [format(STRINGS.ticket_number, { number: ticket.number })];
    if (ticket.contact && ticket.contact.phone && ticket.contact.phone !== contactLabel(ticket.contact)) {
      parts.push(ticket.contact.phone);
    }
    parts.push(STRINGS.status_names[ticket.status] || ticket.status);
    const queue = state.queues.get(ticket.queue_id);
    if (queue) parts.push(format(STRINGS.queue_named, { name: queue.name }));
    if (ticket.user_id === state.me && ticket.user_id != null) parts.push(STRINGS.assigned_to_you);
    else if (ticket.user_id == null) parts.push(STRINGS.unassigned);
    else {
      const name = userName(ticket.user_id);
      parts.push(name ? format(STRINGS.assigned_to, { name }) : STRINGS.assigned_other);
    }
    const waiting = waitingLabel(ticket);
    if (waiting) parts.push(waiting);
    return parts;
  }

  function bannerText(ticket) {
    if (ticket.status === "closed") return STRINGS.banner_closed;
    if (ticket.contact && ticket.contact.blocked) return STRINGS.banner_blocked;
    if (isSnoozed(ticket)) return format(STRINGS.banner_snoozed, { time: fullTime(ticket.snoozed_until) });
    if (ticket.bot_state === "menu") return STRINGS.banner_bot;
    return "";
  }

  function renderHeader() {
    const ticket = state.selected;
    ui.empty.hidden = state.selectedId !== null;
    ui.pane.hidden = state.selectedId === null;
    if (state.selectedId !== null) ui.notice.hidden = true;
    if (!ticket) {
      ui.title.textContent = "";
      ui.subtitle.textContent = "";
      ui.tags.replaceChildren();
      for (const button of [ui.accept, ui.reopen, ui.transfer, ui.snooze, ui.wake, ui.editTags, ui.close]) button.hidden = true;
      ui.banner.hidden = true;
      return;
    }
    ui.title.textContent = contactLabel(ticket.contact);
    ui.subtitle.textContent = subtitleParts(ticket).join(" · ");
    ui.tags.replaceChildren(...(ticket.tags || []).map((tag) => {
      const item = el("li");
      item.append(tagChip(tag));
      return item;
    }));
    const actions = ticketActions(ticket, viewer);
    ui.accept.hidden = !actions.accept;
    ui.reopen.hidden = !actions.reopen;
    ui.transfer.hidden = !actions.transfer;
    ui.snooze.hidden = !actions.snooze;
    ui.wake.hidden = !actions.wake;
    ui.editTags.hidden = !actions.tags;
    ui.close.hidden = !actions.close;
    if (PRIORITIES.includes(ticket.priority)) ui.priority.value = ticket.priority;
    const banner = bannerText(ticket);
    ui.banner.textContent = banner;
    ui.banner.hidden = !banner;
    renderComposerMode();
  }

  /** Run a ticket action; its answer (the ticket) goes into the state like any other whole ticket. A failure is
   * shown under the header (``report``) or left to the dialog that asked. */
  async function act(path, { method = "POST", body, report = true } = {}) {
    const ticketId = state.selectedId;
    showError(ui.actionError, "");
    try {
      const ticket = await api(`/api/v1/tickets/${ticketId}${path}`, { method, body });
      upsertTicket(state, ticket);
      renderTickets();
      if (state.selectedId === ticketId) {
        renderHeader();
        if (!ui.contactPanel.hidden) loadActivity(ticketId);
      }
      return ticket;
    } catch (error) {
      if (report && state.selectedId === ticketId) {
        showError(ui.actionError, format(STRINGS.action_failed, { reason: reasonOf(error) }));
      }
      throw error;
    }
  }

  function quietly(promise) {
    promise.catch(() => {}); // shown in the action's error line already
  }

  function openDialog(dialog, error) {
    showError(error, "");
    dialog.showModal();
  }

  async function submitDialog(dialog, errorNode, run) {
    const submit = dialog.querySelector("button[type=submit]");
    submit.disabled = true;
    try {
      await run();
      dialog.close();
    } catch (error) {
      showError(errorNode, reasonOf(error));
    } finally {
      submit.disabled = false;
    }
  }

  async function openTransfer() {
    const ticketId = state.selectedId;
    if (ticketId === null) return;
    ui.transferNote.value = "";
    fillTransfer();
    openDialog(ui.transferDialog, ui.transferError);
    try {
      await directoryReady();
    } catch (error) {
      if (ui.transferDialog.open) showError(ui.transferError, format(STRINGS.load_failed, { reason: reasonOf(error) }));
      return;
    }
    if (ui.transferDialog.open && state.selectedId === ticketId) fillTransfer();
  }

  /** The transfer dialog's pickers from the directory: every other queue, the people, every other number. */
  function fillTransfer() {
    const ticket = state.selected;
    if (!ticket) return;
    const previous = { queue: ui.transferQueue.value, connection: ui.transferConnection.value };
    const choices = transferChoices(state, ticket);
    ui.transferQueue.replaceChildren(option("", STRINGS.transfer_keep_queue),
      ...choices.queues.map((q) => option(q.id, q.name)));
    if (ui.transferDialog.open && choices.queues.some((q) => String(q.id) === previous.queue)) {
      ui.transferQueue.value = previous.queue;
    }
    ui.transferConnection.replaceChildren(option("", STRINGS.transfer_keep_connection),
      ...choices.connections.map((c) => option(c.id, connectionOption(c))));
    if (ui.transferDialog.open && choices.connections.some((c) => String(c.id) === previous.connection)) {
      ui.transferConnection.value = previous.connection;
    }
    const noConnections = choices.connections.length === 0;
    ui.transferConnection.hidden = noConnections;
    ui.transferConnectionLabel.hidden = noConnections;
    if (!ui.transferDialog.open) ui.transferUser.value = "";
    fillTransferUsers();
  }

  /** People to transfer to: the chosen queue's members (else everyone), with their presence, kept live. */
  function fillTransferUsers() {
    const ticket = state.selected;
    if (!ticket) return;
    const { people } = transferChoices(state, ticket, ui.transferQueue.value);
    const previous = ui.transferUser.value;
    ui.transferUser.replaceChildren(option("", STRINGS.transfer_keep_user),
      ...people.map((p) => option(p.id, personOption(p))));
    if (people.some((p) => String(p.id) === previous)) ui.transferUser.value = previous;
    renderTransferPresence();
  }

  /** The chosen person's presence as a badge beside the picker. */
  function renderTransferPresence() {
    const presence = ui.transferUser.value ? state.presence.get(Number(ui.transferUser.value)) || "offline" : null;
    const known = ["online", "away", "offline"].includes(presence) ? presence : "offline";
    ui.transferPresence.hidden = !presence;
    ui.transferPresence.textContent = presence ? STRINGS.presence_names[presence] || presence : "";
    ui.transferPresence.className = `badge presence presence-${known}`;
  }

  function submitTransfer() {
    const ticket = state.selected;
    if (!ticket) return;
    const result = transferBody(ticket, { queueId: ui.transferQueue.value, userId: ui.transferUser.value,
      connectionId: ui.transferConnection.value, note: ui.transferNote.value });
    if (result.error) {
      showError(ui.transferError, result.error);
      return;
    }
    submitDialog(ui.transferDialog, ui.transferError, () => act("/transfer", { body: result.body, report: false }));
  }

  /** The close dialog starts at what closing does (the directory's close defaults for this ticket): the
   * workspace's farewell as the placeholder, the survey box as the workspace has it. */
  async function openClose() {
    const ticketId = state.selectedId;
    if (ticketId === null) return;
    ui.closeFarewell.value = "";
    ui.closeNoFarewell.checked = false;
    showCloseDefaults(state.directoryLoaded ? closeDialogState(state.closeDefaults, state.selected) : null);
    openDialog(ui.closeDialog, ui.closeError);
    if (state.directoryLoaded) return;
    try {
      await loadDirectory();
    } catch (error) {
      if (ui.closeDialog.open) showError(ui.closeError, format(STRINGS.load_failed, { reason: reasonOf(error) }));
      return;
    }
    if (ui.closeDialog.open && state.selectedId === ticketId) {
      showCloseDefaults(closeDialogState(state.closeDefaults, state.selected));
    }
  }

  /** ``view`` (closeDialogState) into the close dialog; null while the defaults are unknown (nothing to submit). */
  function showCloseDefaults(view) {
    closeView = view;
    const ready = view !== null;
    ui.closeForm.querySelector("button[type=submit]").disabled = !ready;
    ui.closeFarewell.placeholder = ready ? view.placeholder : STRINGS.close_farewell_placeholder;
    ui.closeFarewell.disabled = !ready || !view.farewellEditable || ui.closeNoFarewell.checked;
    ui.closeNoFarewell.disabled = !ready || !view.farewellEditable;
    ui.closeNoFarewellLabel.hidden = ready && !view.noFarewellShown;
    if (ready && !view.noFarewellShown) ui.closeNoFarewell.checked = false;
    ui.closeSurvey.checked = ready && view.survey;
    ui.closeSurvey.disabled = !ready || !view.surveyEditable;
    ui.closeHint.textContent = ready ? view.hint : "";
    ui.closeHint.hidden = !ui.closeHint.textContent;
  }

  function submitClose() {
    const view = closeView;
    if (!view) return;
    const body = closeBody({ farewell: view.farewellEditable ? ui.closeFarewell.value : "",
      noFarewell: ui.closeNoFarewell.checked, survey: view.surveyEditable ? ui.closeSurvey.checked : null }, view);
    submitDialog(ui.closeDialog, ui.closeError, () => act("/close", { body, report: false }));
  }

  function localInputValue(date) {
    const pad = (n) => String(n).padStart(2, "0");
    const day = `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
    return `${day}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
  }

  function openSnooze() {
    const now = new Date();
    ui.snoozeCustom.min = localInputValue(now);
    ui.snoozeCustom.value = "";
    openDialog(ui.snoozeDialog, ui.snoozeError);
  }

  function snooze(choice) {
    const until = snoozeUntil(choice, new Date(), ui.snoozeCustom.value);
    if (!until) {
      showError(ui.snoozeError, STRINGS.snooze_invalid);
      return;
    }
    submitDialog(ui.snoozeDialog, ui.snoozeError,
      () => act("", { method: "PATCH", body: { snoozed_until: until }, report: false }));
  }

  /** The tag picker, for the ticket or the contact: ``onSave(tagIds)`` stores the choice. */
  async function openTags(title, selectedIds, onSave) {
    ui.tagsTitle.textContent = title;
    ui.tagsChoices.replaceChildren();
    ui.tagsEmpty.hidden = true;
    saveTags = onSave;
    openDialog(ui.tagsDialog, ui.tagsError);
    try {
      await loadTags();
    } catch (error) {
      showError(ui.tagsError, format(STRINGS.load_failed, { reason: reasonOf(error) }));
      return;
    }
    const chosen = new Set(selectedIds);
    ui.tagsChoices.replaceChildren(...tagList.map((tag) => {
      const label = el("label", "check");
      const box = el("input");
      box.type = "checkbox";
      box.value = String(tag.id);
      box.checked = chosen.has(tag.id);
      label.append(box, tagChip(tag));
      return label;
    }));
    ui.tagsEmpty.hidden = tagList.length > 0;
    const first = ui.tagsChoices.querySelector("input");
    if (first) first.focus();
  }

  function submitTags() {
    const ids = [...ui.tagsChoices.querySelectorAll("input:checked")].map((box) => Number(box.value));
    if (saveTags) submitDialog(ui.tagsDialog, ui.tagsError, () => saveTags(ids));
  }

  /** Mark the open conversation read while the page is in view (the server zeroes the unread count). */
  function scheduleRead() {
    clearTimeout(readTimer);
    const ticket = state.selected;
    if (!ticket || !(ticket.unread_count > 0) || document.visibilityState !== "visible") return;
    const ticketId = ticket.id;
    readTimer = setTimeout(() => {
      if (state.selectedId !== ticketId) return;
      api(`/api/v1/tickets/${ticketId}/read`, { method: "POST" })
        .then((answer) => {
          if (upsertTicket(state, answer)) renderTickets();
        })
        .catch(() => {}); // the count stays; the next open tries again
    }, 600);
  }

  // --- messages ---

  function isGroup() {
    return Boolean(state.selected && state.selected.contact && (state.selected.contact.wa_id || "").endsWith("@g.us"));
  }

  function buildMedia(message, view) {
    const box = el("div", `media media-${view.show}`);
    if (view.show === "progress" || view.show === "error") {
      box.append(el("span", view.show === "error" ? "media-error" : "media-progress", view.label));
      return box;
    }
    const status = el("span", "media-progress", STRINGS.media_loading);
    const fail = (error) => {
      status.className = "media-error";
      status.textContent = error instanceof ApiError && error.status !== 404 ? reasonOf(error) : STRINGS.media_unavailable;
    };
    if (view.show === "file") {
      const link = el("button", "link media-download", view.label);
      link.type = "button";
      link.addEventListener("click", () => {
        link.disabled = true;
        media.load(view.url).then((url) => {
          if (!url) return;
          const anchor = el("a", "visually-hidden");
          anchor.href = url;
          anchor.download = view.filename;
          document.body.append(anchor); // some browsers only follow links that are in the document
          anchor.click();
          anchor.remove();
        }).catch((error) => {
          box.append(status);
          fail(error);
        }).finally(() => {
          link.disabled = false;
        });
      });
      box.append(link);
      return box;
    }
    const show = () => {
      box.replaceChildren(status);
      media.load(view.url).then((url) => {
        if (!url) return;
        let node;
        if (view.show === "image") {
          node = el("a", "media-link");
          node.href = url;
          node.target = "_blank";
          node.rel = "noopener";
          const image = el("img");
          image.src = url;
          image.alt = message.text || view.filename;
          node.append(image);
        } else {
          node = el(view.show);
          node.controls = true;
          node.preload = "metadata";
          node.src = url;
        }
        box.replaceChildren(node);
      }).catch(fail);
    };
    if (view.autoload) {
      show();
    } else {
      const button = el("button", "secondary small", view.label);
      button.type = "button";
      button.addEventListener("click", show);
      box.append(button);
    }
    return box;
  }

  function buildMessage(message) {
    const mine = Boolean(message.from_me);
    const item = el("li", mine ? "message mine" : "message");
    if (message.private) item.classList.add("note");
    if (message.bot) item.classList.add("bot");
    if (message.id === undefined) item.classList.add("pending");
    const failed = message.status === "FAILED" || Boolean(message.error);
    if (failed) item.classList.add("failed");
    const bubble = el("div", "bubble");
    if (message.private) {
      const author = message.user_id != null && message.user_id !== state.me ? userName(message.user_id) : null;
      const label = author ? format(STRINGS.private_note_by, { name: author }) : STRINGS.private_note;
      bubble.append(el("span", "label note-label", label));
    } else if (message.bot) {
      bubble.append(el("span", "label bot-label", STRINGS.automated));
    } else if (!mine && isGroup() && message.sender_name) {
      bubble.append(el("span", "sender", message.sender_name));
    }
    const view = mediaView(message);
    if (view) bubble.append(buildMedia(message, view));
    if (message.text) {
      bubble.append(el("span", "text", message.text));
    } else if (!view) {
      bubble.append(el("span", "text placeholder", `[${STRINGS.kinds[message.kind] || message.kind}]`));
    }
    const meta = el("div", "meta");
    meta.append(timeNode(message.occurred_at, messageTime(message.occurred_at)));
    const tick = mine && !message.private ? tickFor(message.error ? "FAILED" : message.status) : null;
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
    const messages = orderedMessages(state);
    reconcile(
      ui.messageList,
      messageNodes,
      messages,
      (m) => (m.id !== undefined ? `m${m.id}` : `c${m.client_id}`),
      (m) => JSON.stringify([m.status, m.text, m.error, m.error_code, m.error_title, m.sending, m.sender_name,
        m.media && [m.media.state, m.media.url, m.media.error], userName(m.user_id)]),
      buildMessage,
    );
    media.keepOnly(new Set(messages.filter((m) => m.media && m.media.url).map((m) => m.media.url)));
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

  function clearConversation() {
    for (const entry of messageNodes.values()) entry.node.remove();
    messageNodes.clear();
    media.keepOnly(new Set());
  }

  async function selectTicket(id) {
    if (id === state.selectedId) return;
    if (state.selectedId !== null) drafts.set(state.selectedId, ui.text.value);
    conversationGeneration += 1;
    openTicket(state, id);
    clearConversation();
    ui.text.value = drafts.get(id) || "";
    setAttachment(null);
    closeQuickReplies();
    quickReplyLists.clear(); // filled in per ticket, and a colleague may have saved new ones meanwhile
    showError(ui.composerError, "");
    showError(ui.messagesError, "");
    showError(ui.actionError, "");
    history.replaceState(null, "", `#ticket-${id}`);
    renderHeader();
    renderTickets();
    const generation = conversationGeneration;
    if (!state.selected) {
      api(`/api/v1/tickets/${id}`)
        .then((ticket) => {
          if (generation !== conversationGeneration) return;
          upsertTicket(state, ticket, { visible: true });
          renderHeader();
          renderTickets();
          scheduleRead();
          if (!ui.contactPanel.hidden) loadContact();
        })
        .catch((error) => showError(ui.messagesError, format(STRINGS.load_failed, { reason: reasonOf(error) })));
    } else {
      scheduleRead();
      if (!ui.contactPanel.hidden) loadContact();
    }
    await loadMessages();
    if (generation === conversationGeneration) ui.text.focus();
  }

  /** The open ticket left the viewer's sight (ticket.hidden): say so where the conversation was. */
  function conversationHidden(hidden) {
    clearConversation();
    history.replaceState(null, "", location.pathname);
    ui.notice.textContent = hidden.number != null
      ? format(STRINGS.hidden_notice, { number: hidden.number })
      : STRINGS.hidden_notice_unknown;
    ui.notice.hidden = false;
    showContactPanel(false);
    renderHeader();
  }

  // --- composer: replies, notes, files, quick replies ---

  function renderComposerMode() {
    const ticket = state.selected;
    const canReply = ticket ? ticketActions(ticket, viewer).reply : true;
    const note = composer.note || !canReply; // a closed ticket or a blocked contact still takes notes
    ui.noteToggle.setAttribute("aria-pressed", String(note));
    ui.noteToggle.disabled = !canReply;
    ui.composer.classList.toggle("is-note", note);
    ui.attach.disabled = note;
    if (note && composer.file) setAttachment(null);
    ui.text.placeholder = note ? STRINGS.note_placeholder : composer.file ? STRINGS.caption_placeholder : STRINGS.reply_placeholder;
    if (!composer.sending) ui.send.textContent = note ? STRINGS.save_note : STRINGS.send;
  }

  function noteMode() {
    const ticket = state.selected;
    return composer.note || Boolean(ticket && !ticketActions(ticket, viewer).reply);
  }

  function setAttachment(file) {
    composer.file = file;
    ui.attachment.hidden = !file;
    ui.attachmentName.textContent = file
      ? format(STRINGS.attachment_label, { name: file.name, size: formatBytes(file.size) })
      : "";
    if (!file) ui.file.value = "";
    renderComposerMode();
  }

  function setSending(value) {
    composer.sending = value;
    ui.text.disabled = value;
    ui.send.disabled = value;
    ui.send.textContent = value ? STRINGS.sending : noteMode() ? STRINGS.save_note : STRINGS.send;
  }

  async function sendComposer() {
    const ticketId = state.selectedId;
    const text = ui.text.value.trim();
    const file = noteMode() ? null : composer.file;
    const isNote = noteMode();
    if (composer.sending || ticketId === null || (!text && !file)) return;
    if (file && text.length > MAX_CAPTION) {
      showError(ui.composerError, STRINGS.caption_too_long);
      return;
    }
    if (file && file.size > MAX_UPLOAD_BYTES) {
      showError(ui.composerError, STRINGS.file_too_large);
      return;
    }
    const last = composer.lastAttempt;
    const retry = last && last.ticketId === ticketId && last.text === text && last.isNote === isNote && last.file === file;
    const clientId = retry ? last.clientId : uuid4();
    if (!retry) {
      for (const [id, optimistic] of state.pending) {
        if (optimistic.ticket_id === ticketId && optimistic.error) state.pending.delete(id); // abandoned
      }
    }
    composer.lastAttempt = { ticketId, text, isNote, file, clientId };
    const mediaInfo = file ? { mime: file.type, size: file.size, filename: file.name, state: "uploading" } : null;
    addOptimistic(state, clientId, text || null,
      { private: isNote, kind: file ? kindForMime(file.type) : "text", media: mediaInfo });
    showError(ui.composerError, "");
    setSending(true);
    renderMessages({ stick: true });
    try {
      let message;
      if (file) {
        const form = new FormData();
        form.append("file", file, file.name);
        if (text) form.append("caption", text);
        form.append("client_id", clientId);
        message = await api(`/api/v1/tickets/${ticketId}/media`, { method: "POST", form });
      } else {
        const path = isNote ? "notes" : "messages";
        message = await api(`/api/v1/tickets/${ticketId}/${path}`,
          { method: "POST", body: { text, client_id: clientId } });
      }
      resolveOptimistic(state, clientId, message);
      composer.lastAttempt = null;
      drafts.delete(ticketId);
      if (state.selectedId === ticketId) {
        ui.text.value = "";
        setAttachment(null);
      }
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

  function quickRepliesFor(ticketId) {
    if (!quickReplyLists.has(ticketId)) {
      const list = api(`/api/v1/tickets/${ticketId}/quick-replies`);
      list.catch(() => quickReplyLists.delete(ticketId));
      quickReplyLists.set(ticketId, list);
    }
    return quickReplyLists.get(ticketId);
  }

  function closeQuickReplies() {
    composer.query = null;
    composer.matches = [];
    ui.quickReplies.hidden = true;
    ui.quickReplies.replaceChildren();
    ui.text.setAttribute("aria-expanded", "false");
    ui.text.removeAttribute("aria-activedescendant");
  }

  function renderQuickReplies() {
    if (!composer.matches.length) {
      closeQuickReplies();
      return;
    }
    ui.quickReplies.replaceChildren(...composer.matches.map((reply, index) => {
      const item = el("li", "quick-reply");
      item.id = `quick-reply-${index}`;
      item.setAttribute("role", "option");
      item.setAttribute("aria-selected", String(index === composer.active));
      item.dataset.index = String(index);
      item.append(el("span", "quick-reply-shortcut", `/${reply.shortcut}`),
        el("span", "quick-reply-scope", STRINGS.quick_reply_scopes[reply.scope] || reply.scope),
        el("span", "quick-reply-text", reply.text));
      return item;
    }));
    ui.quickReplies.hidden = false;
    ui.text.setAttribute("aria-expanded", "true");
    ui.text.setAttribute("aria-activedescendant", `quick-reply-${composer.active}`);
  }

  async function updateQuickReplies() {
    const ticketId = state.selectedId;
    const query = ticketId === null ? null : quickReplyQuery(ui.text.value, ui.text.selectionStart);
    if (!query) {
      closeQuickReplies();
      return;
    }
    let replies;
    try {
      replies = await quickRepliesFor(ticketId);
    } catch {
      closeQuickReplies();
      return;
    }
    const now = quickReplyQuery(ui.text.value, ui.text.selectionStart); // the text may have moved on meanwhile
    if (state.selectedId !== ticketId || !now || now.prefix !== query.prefix) return;
    const previous = composer.matches[composer.active];
    composer.query = now;
    composer.matches = matchQuickReplies(replies, now.prefix);
    const kept = previous ? composer.matches.findIndex((r) => r.id === previous.id) : -1;
    composer.active = kept >= 0 ? kept : 0;
    renderQuickReplies();
  }

  function insertQuickReply(index) {
    const reply = composer.matches[index];
    const query = quickReplyQuery(ui.text.value, ui.text.selectionStart);
    if (!reply || !query) return;
    const next = applyQuickReply(ui.text.value, query, reply);
    ui.text.value = next.text;
    ui.text.setSelectionRange(next.caret, next.caret);
    closeQuickReplies();
    ui.text.focus();
  }

  // --- contact panel ---

  function showContactPanel(show) {
    ui.contactPanel.hidden = !show;
    ui.app.classList.toggle("with-contact", show);
    ui.contactToggle.setAttribute("aria-expanded", String(show));
    if (show) loadContact();
  }

  function fieldRow(name = "", value = "") {
    const item = el("li", "field-row");
    const key = el("input", "field-name");
    key.type = "text";
    key.maxLength = 64;
    key.value = name;
    key.setAttribute("aria-label", STRINGS.field_name);
    const val = el("input", "field-value");
    val.type = "text";
    val.maxLength = MAX_FIELD_VALUE;
    val.value = value;
    val.setAttribute("aria-label", STRINGS.field_value);
    const remove = el("button", "link field-remove", "\u00D7");
    remove.type = "button";
    remove.setAttribute("aria-label", format(STRINGS.remove_field, { name: name || STRINGS.field_name }));
    remove.addEventListener("click", () => {
      item.remove();
      contactDirty = true;
    });
    item.append(key, val, remove);
    return item;
  }

  function renderContact() {
    const contact = state.contact;
    if (!contact) return;
    ui.contactPhone.value = contact.phone || (contact.wa_id || "").split("@")[0];
    ui.contactPushName.textContent = contact.push_name ? format(STRINGS.push_name, { name: contact.push_name }) : "";
    if (!contactDirty) {
      ui.contactName.value = contact.name || "";
      ui.contactEmail.value = contact.email || "";
      ui.fieldList.replaceChildren(...Object.entries(contact.custom_fields || {}).map(([k, v]) => fieldRow(k, v)));
    }
    const tags = (contact.tags || []).map((tag) => {
      const item = el("li");
      item.append(tagChip(tag));
      return item;
    });
    const edit = el("li");
    const editButton = el("button", "link", STRINGS.edit_contact_tags);
    editButton.type = "button";
    editButton.addEventListener("click", () => openTags(STRINGS.contact_tags_title, (contact.tags || []).map((t) => t.id),
      async (ids) => {
        state.contact = await api(`/api/v1/contacts/${contact.id}/tags`, { method: "PUT", body: { tag_ids: ids } });
        renderContact();
      }));
    edit.append(editButton);
    ui.contactTags.replaceChildren(...tags, edit);
    ui.blockSection.hidden = !lead;
    ui.block.textContent = contact.blocked ? STRINGS.unblock : STRINGS.block;
  }

  function renderContactNotes(notes) {
    contactNotes = { contactId: state.contact ? state.contact.id : null, notes };
    if (!notes.length) {
      ui.contactNotes.replaceChildren(el("li", "hint", STRINGS.no_notes));
      return;
    }
    ui.contactNotes.replaceChildren(...notes.map((note) => {
      const item = el("li", "panel-note");
      const meta = el("span", "hint");
      const author = userName(note.user_id);
      meta.append(timeNode(note.created_at, messageTime(note.created_at)));
      if (author) meta.append(document.createTextNode(` · ${author}`));
      item.append(el("span", "text", note.text), meta);
      return item;
    }));
  }

  function renderContactTickets(page) {
    ui.contactTickets.replaceChildren(...page.items.map((ticket) => {
      const item = el("li");
      const button = el("button", "link ticket-link", format(STRINGS.ticket_line, { number: ticket.number,
        status: STRINGS.status_names[ticket.status] || ticket.status, when: shortTime(ticket.last_message_at || ticket.created_at) }));
      button.type = "button";
      if (ticket.id === state.selectedId) button.setAttribute("aria-current", "true");
      button.addEventListener("click", () => selectTicket(ticket.id));
      item.append(button);
      return item;
    }));
  }

  function renderActivity(events) {
    activity = { ticketId: state.selectedId, events };
    if (!events.length) {
      ui.activity.replaceChildren(el("li", "hint", STRINGS.no_activity));
      return;
    }
    ui.activity.replaceChildren(...events.slice(-30).reverse().map((event) => {
      const item = el("li");
      item.append(timeNode(event.at, messageTime(event.at)), document.createTextNode(` ${activityText(state, event)}`));
      return item;
    }));
  }

  async function loadActivity(ticketId) {
    try {
      const events = await api(`/api/v1/tickets/${ticketId}/events`);
      if (state.selectedId === ticketId) renderActivity(events);
    } catch {
      activity = null;
      ui.activity.replaceChildren();
    }
  }

  async function loadContact(contactId = null) {
    const ticket = state.selected;
    const id = contactId ?? (ticket && ticket.contact ? ticket.contact.id : null);
    if (id === null || ui.contactPanel.hidden) return;
    const generation = ++contactGeneration;
    if (!state.contact || state.contact.id !== id) contactDirty = false;
    showError(ui.contactError, "");
    ui.contactSaved.hidden = true;
    try {
      const [detail, notes, tickets] = await Promise.all([
        api(`/api/v1/contacts/${id}`),
        api(`/api/v1/contacts/${id}/notes`),
        api(`/api/v1/contacts/${id}/tickets?limit=20`),
      ]);
      if (generation !== contactGeneration) return;
      state.contact = detail;
      renderContact();
      renderContactNotes(notes);
      renderContactTickets(tickets);
    } catch (error) {
      if (generation === contactGeneration) showError(ui.contactError, format(STRINGS.load_failed, { reason: reasonOf(error) }));
    }
    if (state.selectedId !== null) loadActivity(state.selectedId);
  }

  async function saveContact() {
    const contact = state.contact;
    if (!contact) return;
    const rows = [...ui.fieldList.querySelectorAll(".field-row")].map((row) => ({
      name: row.querySelector(".field-name").value, value: row.querySelector(".field-value").value }));
    const fields = customFieldsFrom(rows);
    if (fields.error) {
      showError(ui.contactError, fields.error);
      const bad = ui.fieldList.querySelectorAll(".field-name")[fields.index];
      if (bad) bad.focus();
      return;
    }
    showError(ui.contactError, "");
    const body = { name: ui.contactName.value.trim() || null, email: ui.contactEmail.value.trim() || null,
      custom_fields: fields.fields };
    try {
      state.contact = await api(`/api/v1/contacts/${contact.id}`, { method: "PATCH", body });
      contactDirty = false;
      renderContact();
      ui.contactSaved.hidden = false;
    } catch (error) {
      showError(ui.contactError, format(STRINGS.action_failed, { reason: reasonOf(error) }));
    }
  }

  async function addContactNote() {
    const contact = state.contact;
    const text = ui.contactNoteText.value.trim();
    if (!contact || !text) return;
    try {
      await api(`/api/v1/contacts/${contact.id}/notes`, { method: "POST", body: { text } });
      ui.contactNoteText.value = "";
      renderContactNotes(await api(`/api/v1/contacts/${contact.id}/notes`));
    } catch (error) {
      showError(ui.contactError, format(STRINGS.action_failed, { reason: reasonOf(error) }));
    }
  }

  async function toggleBlock() {
    const contact = state.contact;
    if (!contact) return;
    try {
      const action = contact.blocked ? "unblock" : "block";
      state.contact = await api(`/api/v1/contacts/${contact.id}/${action}`, { method: "POST" });
      renderContact();
    } catch (error) {
      showError(ui.contactError, format(STRINGS.action_failed, { reason: reasonOf(error) }));
    }
  }

  // --- live events ---

  function renderSessions() {
    const many = state.sessions.size > 1;
    const badges = [];
    for (const [connectionId, session] of state.sessions) {
      const badge = el("span", `badge session ${SESSION_CLASS[session.state] || "state-bad"}`);
      const label = STRINGS.session_states[session.state] || session.state;
      const connection = state.connections.get(connectionId);
      const which = many ? ` ${connection ? connection.name : `#${connectionId}`}` : "";
      badge.append(document.createTextNode(`${STRINGS.whatsapp}${which}: ${label}`));
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

  function renderPresence() {
    const mine = state.presence.get(state.me);
    ui.presence.classList.toggle("is-away", ui.presence.value === "away");
    ui.presence.title = mine ? STRINGS.presence_names[mine] || mine : "";
  }

  function onEvent(event) {
    const selectedBefore = state.selected;
    const changes = applyEvent(state, event);
    if (changes.tickets) renderTickets();
    if (changes.hidden) conversationHidden(changes.hidden);
    else if (changes.conversation) {
      renderHeader();
      renderMessages();
      if (state.selected && state.selected !== selectedBefore && state.selected.unread_count > 0) scheduleRead();
    }
    if (changes.sessions) renderSessions();
    if (changes.presence) {
      renderPresence();
      if (ui.transferDialog.open) fillTransferUsers();
    }
    if (event.data) learnPerson(event.data.user_id); // a presence, a ticket's owner, a note's author
    if (changes.contact) {
      if (changes.contactMerged !== null) loadContact(changes.contactMerged);
      else renderContact();
    }
    for (const id of changes.fetch) fetchTicket(id);
  }

  function resync() {
    loadDirectory().catch(() => {}); // people, queues and numbers may have changed meanwhile
    loadTickets();
    if (state.selectedId !== null) loadMessages();
  }

  const live = {
    socket: null,
    attempt: 0,
    timer: null,
    watchdog: null,
    heartbeat: null,
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
        this.beat();
        clearInterval(this.heartbeat);
        this.heartbeat = setInterval(() => this.beat(), HEARTBEAT_MS);
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
        clearInterval(this.heartbeat);
        this.downSince = this.downSince || Date.now();
        this.retry();
      });
    },

    /** The presence frame: keeps the agent online (or away) for distribution. */
    beat() {
      if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(presenceFrame(ui.presence.value));
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
  ui.tabs.addEventListener("keydown", (event) => {
    if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
    const step = event.key === "ArrowRight" ? 1 : TABS.length - 1;
    const next = TABS[(TABS.indexOf(state.tab) + step) % TABS.length];
    switchTab(next);
    ui.tabs.querySelector(`[data-status="${next}"]`).focus();
  });
  for (const button of ui.tabs.querySelectorAll("[data-status]")) button.tabIndex = button.dataset.status === state.tab ? 0 : -1;
  ui.filters.addEventListener("click", (event) => {
    const button = event.target.closest("[data-filter]");
    if (button) toggleFilter(button.dataset.filter);
  });
  ui.queueFilter.addEventListener("change", () => {
    state.filters.queueId = ui.queueFilter.value ? Number(ui.queueFilter.value) : null;
    reloadList();
  });
  ui.searchForm.addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(searchTimer);
    if (search.mode === "messages") runSearch();
    else applyContactSearch();
  });
  ui.searchText.addEventListener("input", onSearchInput);
  ui.searchMode.addEventListener("change", () => setSearchMode(ui.searchMode.value));
  ui.searchMore.addEventListener("click", () => runSearch({ more: true }));
  ui.searchResults.addEventListener("click", (event) => {
    const button = event.target.closest("button.ticket");
    if (button) selectTicket(Number(button.dataset.id));
  });
  ui.list.addEventListener("click", (event) => {
    const button = event.target.closest("button.ticket");
    if (button) selectTicket(Number(button.dataset.id));
  });
  ui.listMore.addEventListener("click", () => loadTickets({ more: true }));
  ui.older.addEventListener("click", () => loadMessages({ older: true }));

  ui.accept.addEventListener("click", () => quietly(act("/accept")));
  ui.reopen.addEventListener("click", () => quietly(act("/reopen", { body: { assign_to_me: true } })));
  ui.wake.addEventListener("click", () => quietly(act("", { method: "PATCH", body: { snoozed_until: null } })));
  ui.priority.addEventListener("change", () => {
    if (state.selected && ui.priority.value !== state.selected.priority) {
      act("", { method: "PATCH", body: { priority: ui.priority.value } }).catch(() => renderHeader());
    }
  });
  ui.transfer.addEventListener("click", openTransfer);
  ui.transferQueue.addEventListener("change", fillTransferUsers);
  ui.transferUser.addEventListener("change", renderTransferPresence);
  ui.transferForm.addEventListener("submit", (event) => {
    event.preventDefault();
    submitTransfer();
  });
  ui.close.addEventListener("click", openClose);
  ui.closeNoFarewell.addEventListener("change", () => {
    ui.closeFarewell.disabled = ui.closeNoFarewell.checked;
  });
  ui.closeForm.addEventListener("submit", (event) => {
    event.preventDefault();
    submitClose();
  });
  ui.snooze.addEventListener("click", openSnooze);
  ui.snoozeForm.addEventListener("click", (event) => {
    const preset = event.target.closest("[data-snooze]");
    if (preset) snooze(preset.dataset.snooze);
  });
  ui.snoozeForm.addEventListener("submit", (event) => {
    event.preventDefault();
    snooze("custom");
  });
  ui.editTags.addEventListener("click", () => {
    const ticket = state.selected;
    if (!ticket) return;
    openTags(STRINGS.tags_title, (ticket.tags || []).map((t) => t.id),
      (ids) => act("/tags", { method: "PUT", body: { tag_ids: ids }, report: false }));
  });
  ui.tagsForm.addEventListener("submit", (event) => {
    event.preventDefault();
    submitTags();
  });
  for (const button of document.querySelectorAll("[data-close-dialog]")) {
    button.addEventListener("click", () => button.closest("dialog").close());
  }

  ui.contactToggle.addEventListener("click", () => showContactPanel(ui.contactPanel.hidden));
  ui.contactClose.addEventListener("click", () => {
    showContactPanel(false);
    ui.contactToggle.focus();
  });
  ui.contactForm.addEventListener("input", () => {
    contactDirty = true;
    ui.contactSaved.hidden = true;
  });
  ui.contactForm.addEventListener("submit", (event) => {
    event.preventDefault();
    saveContact();
  });
  ui.fieldAdd.addEventListener("click", () => {
    const row = fieldRow();
    ui.fieldList.append(row);
    contactDirty = true;
    row.querySelector("input").focus();
  });
  ui.contactNoteForm.addEventListener("submit", (event) => {
    event.preventDefault();
    addContactNote();
  });
  ui.block.addEventListener("click", toggleBlock);

  ui.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    sendComposer();
  });
  ui.noteToggle.addEventListener("click", () => {
    composer.note = !composer.note;
    renderComposerMode();
    ui.text.focus();
  });
  ui.attach.addEventListener("click", () => ui.file.click());
  ui.file.addEventListener("change", () => {
    setAttachment(ui.file.files && ui.file.files[0] ? ui.file.files[0] : null);
    ui.text.focus();
  });
  ui.attachmentRemove.addEventListener("click", () => {
    setAttachment(null);
    ui.text.focus();
  });
  ui.text.addEventListener("input", updateQuickReplies);
  ui.text.addEventListener("click", updateQuickReplies);
  ui.text.addEventListener("blur", () => setTimeout(closeQuickReplies, 150));
  ui.text.addEventListener("keydown", (event) => {
    const open = !ui.quickReplies.hidden && composer.matches.length > 0;
    if (open && (event.key === "ArrowDown" || event.key === "ArrowUp")) {
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : composer.matches.length - 1;
      composer.active = (composer.active + step) % composer.matches.length;
      renderQuickReplies();
      return;
    }
    if (open && (event.key === "Enter" || event.key === "Tab") && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      insertQuickReply(composer.active);
      return;
    }
    if (open && event.key === "Escape") {
      event.preventDefault();
      closeQuickReplies();
      return;
    }
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendComposer();
    }
  });
  ui.quickReplies.addEventListener("mousedown", (event) => {
    const item = event.target.closest("[data-index]");
    if (!item) return;
    event.preventDefault(); // keep the focus (and caret) in the composer
    insertQuickReply(Number(item.dataset.index));
  });

  ui.presence.addEventListener("change", () => {
    sessionStorage.setItem(PRESENCE_KEY, ui.presence.value);
    renderPresence();
    live.beat();
  });
  ui.logout.addEventListener("click", goToLogin);
  window.addEventListener("online", () => live.nudge());
  window.addEventListener("offline", () => setIndicator("offline"));
  document.addEventListener("visibilitychange", scheduleRead);
  setInterval(() => {
    renderTickets(); // waiting times and snoozes move with the clock
    if (state.selected) ui.subtitle.textContent = subtitleParts(state.selected).join(" · ");
  }, 30000);

  renderHeader();
  renderPresence();
  live.connect();
  loadDirectory().catch(() => {}); // the dialogs that need it try again
  loadTickets();
  const fromHash = /^#ticket-(\d+)$/.exec(location.hash);
  if (fromHash) selectTicket(Number(fromHash[1]));
}

if (typeof document !== "undefined") main();

// The pure half, for the Node tests in tests/integration/test_ui.py (a browser ignores a page module's exports).
export {
  STRINGS,
  activityText,
  addMessage,
  addOptimistic,
  applyDirectory,
  applyEvent,
  applyQuickReply,
  backoffDelay,
  closeBody,
  closeDialogState,
  compareTickets,
  connectionOption,
  contactLabel,
  createState,
  customFieldsFrom,
  errorText,
  eventsUrl,
  failOptimistic,
  filterQueues,
  format,
  formatBytes,
  isLead,
  isoMicros,
  kindForMime,
  matchQuickReplies,
  mediaView,
  mergeMessage,
  openTicket,
  orderedMessages,
  orderedTickets,
  personName,
  personOption,
  presenceFrame,
  priorityBadge,
  quickReplyQuery,
  resolveOptimistic,
  shortDuration,
  snoozeUntil,
  tagColor,
  ticketActions,
  ticketListParams,
  ticketMatches,
  tickFor,
  tokenClaims,
  transferBody,
  transferChoices,
  upsertTicket,
  uuid4,
  waitingLabel,
};
