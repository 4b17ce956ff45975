// Atende dashboard: service metrics over a period (GET /api/v1/dashboard), for admins and supervisors.
//
// Same shell as the inbox: the Bearer token from sessionStorage, no data in the HTML. The pure half (the period,
// the query, the formatting of durations and rows) is exported for the Node tests in tests/integration/test_ui.py.
// All text goes through textContent; this file never assigns HTML.
import { api, applyStrings, el, format, fullFormat, goToLogin, option, sessionToken } from "./common.js";

// Every string this page shows, in one place (to be translated later).
const STRINGS = {
  brand: "Atende",
  nav_label: "Pages",
  inbox: "Inbox",
  logout: "Log out",
  dashboard: "Dashboard",
  period: "Period",
  preset_today: "Today",
  preset_7d: "Last 7 days",
  preset_30d: "Last 30 days",
  preset_month: "This month",
  preset_custom: "Custom…",
  from: "From",
  to: "To (inclusive)",
  queue: "Queue",
  all_queues: "All queues",
  agent: "Agent",
  all_agents: "All agents",
  connection: "WhatsApp number",
  all_connections: "All numbers",
  show: "Show",
  loading: "Loading…",
  showing: "{from} – {to}",
  now: "Right now",
  in_period: "In the period",
  service_times: "Service times",
  metric: "Metric",
  count: "Tickets",
  average: "Average",
  average_business: "Average in business hours",
  satisfaction: "Satisfaction",
  ratings: "Ratings",
  by_agent: "By agent",
  by_queue: "By queue",
  by_connection: "By WhatsApp number",
  cards_now: {
    pending: "Pending",
    open: "Open",
    snoozed: "Snoozed",
    waiting: "Customers waiting",
    agents_online: "Agents online",
  },
  cards_period: {
    created: "New tickets",
    closed: "Closed",
    reopened: "Reopened",
    csat: "Average rating",
  },
  metrics: {
    waiting: "Waiting for an agent",
    first_response: "First response",
    resolution: "Resolution",
  },
  columns: {
    name: "Name",
    created: "New",
    closed: "Closed",
    open_now: "Active now",
    waiting: "Avg. waiting",
    first_response: "Avg. first response",
    resolution: "Avg. resolution",
    csat: "Rating",
  },
  no_agent: "Unassigned",
  no_queue: "No queue",
  no_connection: "Unknown number",
  unnamed: "#{id}",
  csat_summary: "{answered} of {asked} surveys answered · average {average}",
  csat_none: "No survey answered in the period ({asked} asked).",
  csat_cell: "{average} ({answered})",
  rating: "{stars} \u2605: {count}",
  none: "—",
  no_rows: "Nothing in the period.",
  duration_seconds: "{s} s",
  duration_minutes: "{m} min {s} s",
  duration_hours: "{h} h {m} min",
  duration_days: "{d} d {h} h",
  invalid_period: "Pick a start date before the end date.",
  period_too_long: "A period spans at most 366 days.",
  not_allowed: "Your role is not allowed to see the dashboard: it is for admins and supervisors.",
  load_failed: "Could not load the dashboard: {reason}",
  network_error: "could not reach the server",
  unknown_error: "unexpected error",
};

const DAY_MS = 24 * 3600 * 1000;
const MAX_PERIOD_DAYS = 366; // saas/dashboard/service.py

// ---------------------------------------------------------------------------------------------------------------
// Pure logic

function localMidnight(date) {
  const day = new Date(date.getTime());
  day.setHours(0, 0, 0, 0);
  return day;
}

/** A "YYYY-MM-DD" date input as local midnight, or null. */
function parseDay(value) {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value || "");
  if (!match) return null;
  const day = new Date(Number(match[1]), Number(match[2]) - 1, Number(match[3]));
  return Number.isNaN(day.getTime()) ? null : day;
}

/** The period ``[from, to)`` of a preset in local time, as ISO 8601 with its zone: ``{from, to}`` or ``{error}``.
 * Custom periods run from the first day's midnight to the midnight after the last day (the last day counts). */
function dashboardPeriod(preset, now = new Date(), custom = {}) {
  let from;
  let to = now;
  if (preset === "today") {
    from = localMidnight(now);
  } else if (preset === "7d" || preset === "30d") {
    from = new Date(now.getTime() - (preset === "7d" ? 7 : 30) * DAY_MS);
  } else if (preset === "month") {
    from = localMidnight(now);
    from.setDate(1);
  } else if (preset === "custom") {
    from = parseDay(custom.from);
    const last = parseDay(custom.to);
    if (!from || !last) return { error: STRINGS.invalid_period };
    to = new Date(last.getTime());
    to.setDate(to.getDate() + 1);
  } else {
    return { error: STRINGS.invalid_period };
  }
  if (!(from < to)) return { error: STRINGS.invalid_period };
  if (to - from > MAX_PERIOD_DAYS * DAY_MS + 3600 * 1000) return { error: STRINGS.period_too_long }; // +1 h: DST
  return { from: from.toISOString(), to: to.toISOString() };
}

/** The query of GET /api/v1/dashboard: the period and the filters that are set (ids as strings, "" for none). */
function dashboardQuery(period, { queueId = "", userId = "", connectionId = "" } = {}) {
  const params = new URLSearchParams({ from: period.from, to: period.to });
  if (queueId) params.set("queue_id", queueId);
  if (userId) params.set("user_id", userId);
  if (connectionId) params.set("connection_id", connectionId);
  return params.toString();
}

/** An average time: "42 s", "3 min 5 s", "2 h 10 min", "1 d 4 h"; a dash when there is none. */
function formatDuration(seconds) {
  if (typeof seconds !== "number" || !Number.isFinite(seconds)) return STRINGS.none;
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return format(STRINGS.duration_seconds, { s });
  const m = Math.floor(s / 60);
  if (m < 60) return format(STRINGS.duration_minutes, { m, s: s % 60 });
  const h = Math.floor(m / 60);
  if (h < 24) return format(STRINGS.duration_hours, { h, m: m % 60 });
  return format(STRINGS.duration_days, { d: Math.floor(h / 24), h: h % 24 });
}

function formatRating(average) {
  return typeof average === "number" ? average.toFixed(2) : STRINGS.none;
}

/** The label of a breakdown row: its name, else what a missing id means for that breakdown. */
function breakdownLabel(row, kind) {
  if (row.id === null || row.id === undefined) {
    return { agent: STRINGS.no_agent, queue: STRINGS.no_queue, connection: STRINGS.no_connection }[kind];
  }
  return row.name || format(STRINGS.unnamed, { id: row.id });
}

/** A breakdown table's cells, in the column order of STRINGS.columns. */
function breakdownCells(row, kind) {
  const csat = row.csat_answered
    ? format(STRINGS.csat_cell, { average: formatRating(row.csat_average), answered: row.csat_answered })
    : STRINGS.none;
  return [breakdownLabel(row, kind), String(row.created), String(row.closed), String(row.open_now),
    formatDuration(row.waiting.avg_s), formatDuration(row.first_response.avg_s), formatDuration(row.resolution.avg_s),
    csat];
}

/** What to say for a failed load: the API's 403 means the role may not read the dashboard. */
function dashboardError(status, reason) {
  if (status === 403) return STRINGS.not_allowed;
  return format(STRINGS.load_failed, { reason: reason || STRINGS.unknown_error });
}

// ---------------------------------------------------------------------------------------------------------------
// DOM

function dateInputValue(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

function main() {
  if (!sessionToken()) return;
  applyStrings(STRINGS);

  const $ = (id) => document.getElementById(id);
  const ui = {
    form: $("period-form"),
    preset: $("period-preset"),
    fromField: $("period-from-field"),
    toField: $("period-to-field"),
    from: $("period-from"),
    to: $("period-to"),
    queue: $("filter-queue"),
    user: $("filter-user"),
    userField: $("filter-user-field"),
    connection: $("filter-connection"),
    connectionField: $("filter-connection-field"),
    submit: $("period-submit"),
    status: $("dashboard-status"),
    error: $("dashboard-error"),
    report: $("dashboard-report"),
    nowCards: $("now-cards"),
    periodCards: $("period-cards"),
    times: $("times-body"),
    csatSummary: $("satisfaction-summary"),
    csatDistribution: $("satisfaction-distribution"),
    byAgent: $("by-agent"),
    byQueue: $("by-queue"),
    byConnection: $("by-connection"),
    logout: $("logout"),
  };
  let generation = 0;

  function showError(message) {
    ui.error.textContent = message || "";
    ui.error.hidden = !message;
  }

  function cards(node, entries) {
    node.replaceChildren(...entries.map(([label, value]) => {
      const card = el("li", "card");
      card.append(el("span", "card-value", value), el("span", "card-label", label));
      return card;
    }));
  }

  function table(node, kind, rows) {
    const head = el("thead");
    const headRow = el("tr");
    for (const label of Object.values(STRINGS.columns)) {
      const th = el("th", null, label);
      th.scope = "col";
      headRow.append(th);
    }
    head.append(headRow);
    const body = el("tbody");
    for (const row of rows) {
      const tr = el("tr");
      breakdownCells(row, kind).forEach((text, index) => {
        const cell = el(index === 0 ? "th" : "td", null, text);
        if (index === 0) cell.scope = "row";
        tr.append(cell);
      });
      body.append(tr);
    }
    if (!rows.length) {
      const tr = el("tr");
      const td = el("td", "hint", STRINGS.no_rows);
      td.colSpan = Object.keys(STRINGS.columns).length;
      tr.append(td);
      body.append(tr);
    }
    node.replaceChildren(head, body);
  }

  function render(board) {
    cards(ui.nowCards, Object.entries(STRINGS.cards_now).map(([key, label]) => [label, board.now[key]]));
    cards(ui.periodCards, [
      [STRINGS.cards_period.created, board.created],
      [STRINGS.cards_period.closed, board.closed],
      [STRINGS.cards_period.reopened, board.reopened],
      [STRINGS.cards_period.csat, formatRating(board.satisfaction.average)],
    ]);
    ui.times.replaceChildren(...Object.entries(STRINGS.metrics).map(([key, label]) => {
      const stats = board[key];
      const tr = el("tr");
      const th = el("th", null, label);
      th.scope = "row";
      tr.append(th, el("td", null, stats.count), el("td", null, formatDuration(stats.avg_s)),
        el("td", null, formatDuration(stats.avg_business_s)));
      return tr;
    }));
    const csat = board.satisfaction;
    ui.csatSummary.textContent = csat.answered
      ? format(STRINGS.csat_summary, { answered: csat.answered, asked: csat.asked, average: formatRating(csat.average) })
      : format(STRINGS.csat_none, { asked: csat.asked });
    ui.csatDistribution.replaceChildren(...["5", "4", "3", "2", "1"].map((stars) => {
      const count = csat.distribution[stars] || 0;
      return el("li", null, format(STRINGS.rating, { stars, count }));
    }));
    table(ui.byAgent, "agent", board.by_agent);
    table(ui.byQueue, "queue", board.by_queue);
    table(ui.byConnection, "connection", board.by_connection);
    ui.status.textContent = format(STRINGS.showing, { from: fullFormat.format(new Date(board.period_from)),
      to: fullFormat.format(new Date(board.period_to)) });
    ui.report.hidden = false;
  }

  async function load() {
    const period = dashboardPeriod(ui.preset.value, new Date(), { from: ui.from.value, to: ui.to.value });
    if (period.error) {
      showError(period.error);
      return;
    }
    const mine = ++generation;
    showError("");
    ui.status.textContent = STRINGS.loading;
    ui.submit.disabled = true;
    try {
      const query = dashboardQuery(period, { queueId: ui.queue.value, userId: ui.user.value,
        connectionId: ui.connection.value });
      const board = await api(`/api/v1/dashboard?${query}`);
      if (mine === generation) render(board);
    } catch (error) {
      if (mine !== generation) return;
      ui.status.textContent = "";
      ui.report.hidden = true;
      showError(dashboardError(error.status, error.code === "network_error" ? STRINGS.network_error : error.message));
    } finally {
      ui.submit.disabled = false;
    }
  }

  /** The filters' choices: every queue and number from the team directory (supervisors too, whose own queue
   * list would hold only their queues), and every user, former ones included, from the users list. */
  async function loadFilters() {
    const fill = (select, first, items, label) => select.replaceChildren(first, ...items.map((i) => option(i.id, label(i))));
    const [directory, users] = await Promise.allSettled([api("/api/v1/directory"), api("/api/v1/users?limit=200")]);
    if (directory.status === "fulfilled") {
      fill(ui.queue, ui.queue.options[0], directory.value.queues, (q) => q.name);
      fill(ui.connection, ui.connection.options[0], directory.value.connections, (c) => c.name);
    } else {
      ui.connectionField.hidden = true;
    }
    if (users.status === "fulfilled") fill(ui.user, ui.user.options[0], users.value.items, (u) => u.name || u.email);
    else ui.userField.hidden = true;
  }

  const today = new Date();
  ui.to.value = dateInputValue(today);
  ui.from.value = dateInputValue(new Date(today.getTime() - 6 * DAY_MS));
  ui.preset.addEventListener("change", () => {
    const custom = ui.preset.value === "custom";
    ui.fromField.hidden = !custom;
    ui.toField.hidden = !custom;
    if (!custom) load();
  });
  for (const select of [ui.queue, ui.user, ui.connection]) select.addEventListener("change", load);
  ui.form.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  ui.logout.addEventListener("click", goToLogin);
  load();
  loadFilters();
}

if (typeof document !== "undefined") main();

// The pure half, for the Node tests in tests/integration/test_ui.py (a browser ignores a page module's exports).
export { STRINGS, breakdownCells, breakdownLabel, dashboardError, dashboardPeriod, dashboardQuery, formatDuration };
