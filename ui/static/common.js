// Atende: what login.js, inbox.js and dashboard.js share — the session's keys, the API calls with its Bearer
// token, the page strings and a few DOM helpers. An ES module the pages import; it runs nothing on import, and
// shows no text of its own (each page's words are in its STRINGS).
// All text goes through textContent; this file never assigns HTML.

// Where the session lives in sessionStorage: login.js writes them, the other pages read them.
export const TOKEN_KEY = "atende.access_token";
export const EXPIRES_KEY = "atende.token_expires_at";

/** Replace {name} placeholders in a string from STRINGS. */
export function format(template, values) {
  return template.replace(/\{(\w+)\}/g, (whole, key) => (key in values ? String(values[key]) : whole));
}

/** A date with its time in full (medium date, short time), in the browser's locale. */
export const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

// ---------------------------------------------------------------------------------------------------------------
// The session and the API

/** A failed API call: the HTTP ``status`` (0 when the server was not reached), the problem's ``code`` (else
 * ``http_<status>``, or ``network_error``) and its detail as the message. */
export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail);
    this.status = status;
    this.code = code;
  }
}

/** End the session: forget the token and go to the sign-in page. */
export function goToLogin() {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(EXPIRES_KEY);
  location.replace("/login");
}

/** The session's access token; when there is none or it has expired, ends the session and returns null. */
export function sessionToken() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const expiresAt = Number(sessionStorage.getItem(EXPIRES_KEY) || 0);
  if (!token || (expiresAt && expiresAt < Date.now())) {
    goToLogin();
    return null;
  }
  return token;
}

/** Fetch with the session's token; a 401 ends the session. Network failures become ApiError. */
export async function authorizedFetch(path, { method = "GET", headers = {}, body } = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) {
    goToLogin();
    throw new ApiError(401, "no_token", "not signed in");
  }
  let response;
  try {
    response = await fetch(path, { method, headers: { Authorization: `Bearer ${token}`, ...headers }, body });
  } catch {
    throw new ApiError(0, "network_error", "could not reach the server"); // pages show their own words for it
  }
  if (response.status === 401) {
    goToLogin();
    throw new ApiError(401, "unauthorized", "session ended");
  }
  return response;
}

/** Call the API: JSON in (``body``) or a multipart form (``form``), JSON out. Errors become ApiError with the
 * problem's code. */
export async function api(path, { method = "GET", body, form } = {}) {
  const headers = { Accept: "application/json" };
  let payloadIn;
  if (form !== undefined) {
    payloadIn = form; // the browser sets the multipart boundary
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payloadIn = JSON.stringify(body);
  }
  const response = await authorizedFetch(path, { method, headers, body: payloadIn });
  const payload = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) {
    const detail = (payload && (payload.detail || payload.title)) || `HTTP ${response.status}`;
    throw new ApiError(response.status, (payload && payload.code) || `http_${response.status}`, detail);
  }
  return payload;
}

// ---------------------------------------------------------------------------------------------------------------
// DOM

/** Put a page's STRINGS into its template: the text of ``data-i18n`` elements, the placeholder of
 * ``data-i18n-placeholder`` ones and the aria-label of ``data-i18n-label`` ones (the template's words stay when
 * STRINGS has no such string). */
export function applyStrings(strings, root = document) {
  for (const node of root.querySelectorAll("[data-i18n]")) {
    const value = strings[node.dataset.i18n];
    if (typeof value === "string") node.textContent = value;
  }
  for (const node of root.querySelectorAll("[data-i18n-placeholder]")) {
    const value = strings[node.dataset.i18nPlaceholder];
    if (typeof value === "string") node.placeholder = value;
  }
  for (const node of root.querySelectorAll("[data-i18n-label]")) {
    const value = strings[node.dataset.i18nLabel];
    if (typeof value === "string") node.setAttribute("aria-label", value);
  }
}

/** A new element with an optional class and text. */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

/** An <option> of a <select>. */
export function option(value, text) {
  const node = el("option", null, text);
  node.value = String(value);
  return node;
}
