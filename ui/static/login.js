// Atende login: POST /api/v1/auth/login, keep the access token in sessionStorage, go to the inbox.
import { applyStrings, EXPIRES_KEY, TOKEN_KEY } from "./common.js";

// Every string this page shows, in one place (to be translated later).
const STRINGS = {
  brand: "Atende",
  lead: "Sign in to your team's inbox",
  tenant: "Workspace",
  email: "Email",
  password: "Password",
  submit: "Sign in",
  signing_in: "Signing in…",
  missing_fields: "Fill in the workspace, email and password.",
  network_error: "Could not reach the server. Check your connection and try again.",
  unexpected: "Sign-in failed. Try again in a moment.",
  errors: {
    invalid_credentials: "Wrong workspace, email or password.",
    tenant_suspended: "This workspace is suspended. Contact your administrator.",
    tenant_not_found: "Wrong workspace, email or password.",
    rate_limited: "Too many attempts. Wait a minute and try again.",
    bad_request: "Check the fields and try again.",
  },
};

const TENANT_KEY = "atende.tenant"; // not a secret: remembered to prefill the next sign-in

/** The message to show for a failed login response body (problem+json) and HTTP status. */
function loginErrorMessage(problem, status) {
  const code = problem && typeof problem.code === "string" ? problem.code : null;
  if (code && Object.hasOwn(STRINGS.errors, code)) return STRINGS.errors[code];
  if (status === 401) return STRINGS.errors.invalid_credentials;
  if (status === 429) return STRINGS.errors.rate_limited;
  return STRINGS.unexpected;
}

function main() {
  applyStrings(STRINGS);
  const form = document.getElementById("login-form");
  const tenant = document.getElementById("login-tenant");
  const email = document.getElementById("login-email");
  const password = document.getElementById("login-password");
  const submit = document.getElementById("login-submit");
  const error = document.getElementById("login-error");

  tenant.value = localStorage.getItem(TENANT_KEY) || new URLSearchParams(location.search).get("tenant") || "";
  (tenant.value ? email : tenant).focus();

  function showError(message) {
    error.textContent = message;
    error.hidden = !message;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { tenant: tenant.value.trim().toLowerCase(), email: email.value.trim(), password: password.value };
    if (!body.tenant || !body.email || !body.password) {
      showError(STRINGS.missing_fields);
      return;
    }
    showError("");
    submit.disabled = true;
    submit.textContent = STRINGS.signing_in;
    try {
      let response;
      try {
        response = await fetch("/api/v1/auth/login", {
          method: "POST",
          headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify(body),
          credentials: "same-origin",
        });
      } catch {
        showError(STRINGS.network_error);
        return;
      }
      const payload = await response.json().catch(() => null);
      if (!response.ok || !payload || typeof payload.access_token !== "string") {
        showError(loginErrorMessage(payload, response.status));
        password.select();
        return;
      }
      sessionStorage.setItem(TOKEN_KEY, payload.access_token);
      sessionStorage.setItem(EXPIRES_KEY, String(Date.now() + Number(payload.expires_in || 0) * 1000));
      localStorage.setItem(TENANT_KEY, body.tenant);
      location.replace("/inbox");
    } finally {
      submit.disabled = false;
      submit.textContent = STRINGS.submit;
    }
  });
}

if (typeof document !== "undefined") main();

// For the Node tests in tests/integration/test_ui.py (a browser ignores a page module's exports).
export { STRINGS, loginErrorMessage };
