// The public HTTP API, as the console uses it: the token, JSON requests, and NDJSON streams read with
// fetch and a stream reader (EventSource cannot send an Authorization header). Every URL is relative
// to where the console is served (…/ui/ → …/), so it works directly and behind a proxy alike.

/** The API's root: this module is …/ui/js/api.js. */
const BASE = new URL("../../", import.meta.url);
const TOKEN_KEY = "launcher-fleet.token";

/** An answer that is not a success, or a stream's final error line, in words. */
export class ApiError extends Error {
  constructor(message, { status, code, retryable } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.retryable = retryable ?? false;
  }
}

export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY) ?? "";
  },
  set(token) {
    sessionStorage.setItem(TOKEN_KEY, token.trim());
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
  },
  /** The token's claims (sub, groups, exp), read without checking: the node checks it. */
  claims() {
    try {
      const part = this.token.split(".")[1] ?? "";
      const json = atob(
        part
          .replace(/-/g, "+")
          .replace(/_/g, "/")
          .padEnd(Math.ceil(part.length / 4) * 4, "="),
      );
      return JSON.parse(new TextDecoder().decode(Uint8Array.from(json, (c) => c.charCodeAt(0))));
    } catch {
      return undefined;
    }
  },
};

/** Called with the ApiError of any 401: the token was refused (main.js signs out). */
let unauthorized = () => {};
export function onUnauthorized(fn) {
  unauthorized = fn;
}

/** The server's clock minus this browser's (from the Date header), for ages of server times. */
export let clockSkewMs = 0;

export function apiUrl(path, query) {
  const url = new URL(path, BASE);
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value === undefined || value === null || value === "") continue;
    for (const v of Array.isArray(value) ? value : [value]) url.searchParams.append(key, String(v));
  }
  return url.pathname + url.search;
}

function headers(extra) {
  const h = { ...extra };
  if (session.token) h.authorization = `Bearer ${session.token}`;
  return h;
}

/** The API's error body says what went wrong; a proxy's or a broken answer gets its HTTP status. */
async function errorFrom(res) {
  const text = await res.text().catch(() => "");
  let message;
  let code;
  try {
    const body = JSON.parse(text);
    message = body.message ?? body.error?.message;
    code = body.code ?? body.error?.code;
  } catch {}
  if (!message) {
    const plain = text
      .replace(/<[^>]*>/g, " ")
      .replace(/\s+/g, " ")
      .trim();
    message = `${res.status} ${res.statusText || "error"}${plain ? `: ${plain.slice(0, 200)}` : ""}`;
  }
  // 5xx (a node restarting, offline or draining; a proxy with no node) and 408 are worth retrying.
  const retryable = res.status >= 500 || res.status === 408 || res.status === 429;
  const err = new ApiError(message, { status: res.status, code, retryable });
  if (res.status === 401) unauthorized(err);
  return err;
}

function unreachable(err) {
  return new ApiError(`Cannot reach the fleet: ${err?.message ?? err}`, { retryable: true });
}

function noteClock(res) {
  const date = Date.parse(res.headers.get("date") ?? "");
  if (!Number.isNaN(date)) clockSkewMs = date + 500 - Date.now();
}

/** A JSON request; resolves to the parsed body, or throws an ApiError saying what went wrong. */
export async function api(path, { method = "GET", query, body, signal, headers: extra } = {}) {
  let res;
  try {
    res = await fetch(apiUrl(path, query), {
      method,
      signal,
      cache: "no-store",
      headers: headers({
        accept: "application/json",
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
        ...extra,
      }),
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch (err) {
    if (signal?.aborted) throw err;
    throw unreachable(err);
  }
  noteClock(res);
  if (!res.ok) throw await errorFrom(res);
  return res.status === 204 ? undefined : res.json();
}

/**
 * Reads one NDJSON stream to its end, calling `onMessage` for each object. `onOpen` is called once
 * the answer is a 200. A final `{"error":…}` line is thrown as an ApiError. A plain JSON answer
 * (one object, no stream) is one message.
 */
export async function readStream(path, { query, signal, onOpen, onMessage }) {
  let res;
  try {
    res = await fetch(apiUrl(path, query), {
      signal,
      cache: "no-store",
      headers: headers({ accept: "application/x-ndjson" }),
    });
  } catch (err) {
    if (signal?.aborted) throw err;
    throw unreachable(err);
  }
  noteClock(res);
  if (!res.ok) throw await errorFrom(res);
  onOpen?.();
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  const line = (text) => {
    if (text.trim() === "") return;
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      throw new ApiError(`Unexpected answer from ${path}: ${text.slice(0, 120)}`);
    }
    if (message.error) {
      const { code, message: words } = message.error;
      // 4 PluginRestarted (a node went away) and 5 Timeout (the client was too slow): resume.
      throw new ApiError(words ?? "The stream ended with an error", {
        code,
        retryable: code === 4 || code === 5,
      });
    }
    onMessage(message);
  };
  try {
    for (;;) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch (err) {
        if (signal?.aborted) throw err;
        throw new ApiError(`The connection was lost: ${err?.message ?? err}`, { retryable: true });
      }
      if (chunk.done) break;
      buffer += chunk.value;
      for (let nl = buffer.indexOf("\n"); nl >= 0; nl = buffer.indexOf("\n")) {
        const text = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        line(text);
      }
    }
    line(buffer);
  } finally {
    reader.cancel().catch(() => {});
  }
}

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(t);
      resolve();
    });
  });

/**
 * Follows a stream and reconnects when it breaks, until `signal` aborts. `query()` is asked before
 * each connection (for `?since=`). `onState(state, text)` reports "live", "retrying" and "ended"
 * (and "failed" for an error that retrying cannot fix). A stream that ends by itself is done when
 * `done()` says so; otherwise it is opened again after `againMs` (a node without `?watch=1` answers
 * the plain list: that makes it a poll).
 */
export function follow(
  path,
  { signal, query, onOpen, onMessage, onState, done = () => true, againMs = 2000 },
) {
  const report = onState ?? (() => {});
  (async () => {
    let delay = 500;
    while (!signal.aborted) {
      let wait;
      try {
        await readStream(path, {
          query: query?.(),
          signal,
          onOpen: () => {
            delay = 500;
            report("live", "live");
            onOpen?.();
          },
          onMessage,
        });
        if (done()) {
          report("ended", "ended");
          return;
        }
        wait = againMs;
      } catch (err) {
        if (signal.aborted) return;
        if (!(err instanceof ApiError) || !err.retryable) {
          report("failed", err.message ?? String(err));
          return;
        }
        wait = delay;
        delay = Math.min(delay * 2, 10_000);
        report("retrying", `${err.message}; retrying in ${Math.round(wait / 1000) || 1} s`);
      }
      await sleep(wait, signal);
    }
  })();
}

/** A fresh Idempotency-Key (getRandomValues works on plain-HTTP origins, randomUUID does not). */
export function idempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `ui-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}
