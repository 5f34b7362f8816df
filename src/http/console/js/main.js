// The console's shell: sign-in, the header, the error banner and the hash router. Views are
// functions `(root, params, signal) => void` that stop everything they started when `signal` aborts.
import { api, onUnauthorized, session } from "./api.js";
import { duration, fill, h } from "./dom.js";
import { jobView } from "./job.js";
import { jobsView } from "./jobs.js";
import { nodesView } from "./nodes.js";
import { submitView } from "./submit.js";

const $ = (id) => document.getElementById(id);
const root = $("view");
const banner = $("banner");

/** Shows an error (or any message) above the view until the next navigation or `hideBanner()`. */
export function showBanner(text) {
  banner.textContent = text;
  banner.hidden = !text;
}

let current;

/** `#/jobs/abc?tags=x` → { view: "jobs", id: "abc", query: URLSearchParams }. */
function route() {
  const hash = location.hash.replace(/^#\/?/, "");
  const [path, search] = hash.split("?", 2);
  const [view, ...rest] = path.split("/").filter(Boolean);
  return {
    view: view ?? "nodes",
    id: rest.length ? decodeURIComponent(rest.join("/")) : undefined,
    query: new URLSearchParams(search ?? ""),
  };
}

function render() {
  current?.abort();
  current = new AbortController();
  showBanner("");
  if (!session.token) {
    signIn();
    return;
  }
  header();
  const { view, id, query } = route();
  for (const a of document.querySelectorAll("[data-nav]"))
    a.classList.toggle("active", a.dataset.nav === view);
  const signal = current.signal;
  if (view === "jobs" && id) jobView(root, id, signal);
  else if (view === "jobs") jobsView(root, query, signal);
  else if (view === "submit") submitView(root, signal);
  else nodesView(root, signal);
}

function header() {
  const claims = session.claims() ?? {};
  const groups = Array.isArray(claims.groups) && claims.groups.length ? ` (${claims.groups.join(", ")})` : "";
  const left = typeof claims.exp === "number" ? claims.exp * 1000 - Date.now() : undefined;
  const expiry =
    left === undefined ? "" : left > 0 ? ` · token expires in ${duration(left)}` : " · token expired";
  $("who").textContent = claims.sub ? `${claims.sub}${groups}${expiry}` : "";
  $("nav").hidden = false;
  $("sign-out").hidden = false;
}

function signIn(message) {
  $("nav").hidden = true;
  $("sign-out").hidden = true;
  $("who").textContent = "";
  const input = h("textarea", {
    id: "token",
    name: "token",
    rows: 4,
    required: true,
    spellcheck: "false",
    autocomplete: "off",
    placeholder: "eyJhbGciOi…",
  });
  const error = h("p", { class: "error", role: "alert", hidden: !message }, message ?? "");
  const form = h(
    "form",
    {
      class: "card sign-in",
      onsubmit: async (event) => {
        event.preventDefault();
        session.set(input.value);
        try {
          await api("nodes"); // the node checks the token
          location.hash = "#/nodes";
          render();
        } catch (err) {
          if (err.status !== 401) session.clear();
          error.textContent = err.message;
          error.hidden = false;
        }
      },
    },
    h("h1", {}, "Sign in"),
    h(
      "p",
      {},
      "Paste a token (a JWT signed with the fleet's secret), e.g. from ",
      h("code", {}, 'launcher-fleet token --user "$USER"'),
      ". Or open ",
      h("code", {}, "/ui/#token=<JWT>"),
      ". It is kept in this tab only (sessionStorage).",
    ),
    h("label", { for: "token" }, "Token"),
    input,
    error,
    h("button", { type: "submit", id: "sign-in" }, "Sign in"),
  );
  fill(root, form);
  input.focus();
}

/** `#token=<JWT>` signs in; the fragment never reaches a server, and is removed from the address bar. */
function takeTokenFromFragment() {
  const match = /^#(?:.*&)?token=([^&]+)/.exec(location.hash);
  if (!match) return;
  session.set(decodeURIComponent(match[1]));
  history.replaceState(null, "", `${location.pathname}${location.search}#/nodes`);
}

onUnauthorized((err) => {
  session.clear();
  current?.abort();
  signIn(`The node refused the token: ${err.message}`);
});

$("sign-out").addEventListener("click", () => {
  session.clear();
  history.replaceState(null, "", `${location.pathname}${location.search}`);
  render();
});
window.addEventListener("hashchange", () => {
  takeTokenFromFragment();
  render();
});
takeTokenFromFragment();
render();
