// The client side of the HTTP API for the CLI: requests, streams, and errors that say what failed
// ("cannot reach http://127.0.0.1:5559: ECONNREFUSED", "503 Service
// Unavailable from http://127.0.0.1:8080 (the load balancer found no node ready: is Redis up?)"),
// never a bare "fetch failed" nor a load balancer's HTML page.
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";

/** A mistake in the command line: exit status 2, before any request. */
export class UsageError extends Error {}

/** An answer that says "try again": the request may not have been served (a 503, or no connection). */
export class RetryableError extends Error {}

export interface Conn {
  url: string;
  token?: string;
}

let httpsFetch: Promise<typeof fetch> | undefined;

/**
 * The fetch for a URL. HTTPS verifies the node's certificate against the system's CAs (plus
 * NODE_EXTRA_CA_CERTS), or against LAUNCHER_TLS_CA_FILE instead when it is set (a private CA).
 */
function fetchFor(url: URL): Promise<typeof fetch> {
  const caFile = process.env.LAUNCHER_TLS_CA_FILE;
  if (url.protocol !== "https:" || !caFile) return Promise.resolve(fetch);
  httpsFetch ??= (async () => {
    let ca: Buffer;
    try {
      ca = readFileSync(caFile);
    } catch (err) {
      throw new UsageError(
        `LAUNCHER_TLS_CA_FILE: cannot read "${caFile}": ${(err as NodeJS.ErrnoException).code ?? err}`,
      );
    }
    // undici's own fetch with an Agent that trusts the CA (only loaded for this case).
    const undici = await import("undici");
    const dispatcher = new undici.Agent({ connect: { ca } });
    return ((input: string | URL, init?: RequestInit) =>
      undici.fetch(input, { ...(init as object), dispatcher })) as unknown as typeof fetch;
  })();
  return httpsFetch;
}

/** Connection failures worth another try (a certificate problem, say, is not). */
const TRANSIENT_NETWORK_ERRORS = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_CLOSED",
]);

/** The innermost cause of a fetch failure: code and message. */
function rootCause(err: unknown): { code?: string; message: string } {
  let e = err as { cause?: unknown; code?: string; message?: string } | undefined;
  let best: { code?: string; message: string } = { message: String((e as Error)?.message ?? err) };
  for (let depth = 0; e && depth < 5; depth++) {
    if (e.code || e.message) best = { ...(e.code ? { code: e.code } : {}), message: e.message ?? String(e) };
    e = e.cause as typeof e;
  }
  return best;
}

/**
 * The cause of a failed request: its code (ECONNREFUSED, ENOTFOUND, UNABLE_TO_VERIFY_LEAF_SIGNATURE,
 * ...), as the CLI has always said it and tests pin, or the cause's own message when it has none.
 */
export function describeCause(err: unknown): string {
  const { code, message } = rootCause(err);
  if (code) return code;
  return message === "fetch failed" || !message ? "the connection failed" : message;
}

/** A failure to talk to `origin`: retryable when transient. */
export function networkError(origin: string, err: unknown, what = "cannot reach"): Error {
  if (err instanceof UsageError) return err;
  const { code } = rootCause(err);
  const transient = code !== undefined && TRANSIENT_NETWORK_ERRORS.has(code);
  return new (transient ? RetryableError : Error)(`${what} ${origin}: ${describeCause(err)}`, { cause: err });
}

/** What a status code means when something other than a node (a load balancer, a proxy) answered. */
const PROXY_HINTS: Record<number, string> = {
  502: "the load balancer got no valid answer from a node",
  503: "the load balancer found no node ready: is Redis up?",
  504: "no node answered the load balancer in time",
};

/** Plain text from an HTML page: the h1 (or title), tags dropped, spaces folded. */
function htmlHeadline(html: string): string | undefined {
  const pick = /<h1[^>]*>([\s\S]*?)<\/h1>/i.exec(html) ?? /<title[^>]*>([\s\S]*?)<\/title>/i.exec(html);
  const text = pick?.[1]
    ?.replace(/<[^>]*>/g, "")
    .replace(/\s+/g, " ")
    .trim();
  return text || undefined;
}

/**
 * The words for an HTTP error answer. The API's JSON body gives `<status>: <message>`; anything
 * else (HAProxy's HTML 503, a proxy's text) is summarised in one line naming the status and who
 * answered, never dumped.
 */
export function describeHttpError(
  status: number,
  statusText: string,
  contentType: string,
  body: string,
  origin: string,
): string {
  const trimmed = body.trim();
  if (trimmed.startsWith("{")) {
    try {
      const parsed = JSON.parse(trimmed) as { message?: unknown; error?: unknown };
      if (typeof parsed.message === "string" && parsed.message) return `${status}: ${parsed.message}`;
      if (typeof parsed.error === "string" && parsed.error) return `${status}: ${parsed.error}`;
    } catch {}
  }
  const isHtml = /html/i.test(contentType) || /^<(!doctype|html|body|head)/i.test(trimmed);
  const headline = isHtml ? htmlHeadline(trimmed) : undefined;
  const reason = statusText || (headline?.replace(/^\d{3}\s*/, "") ?? "");
  const head = `${status}${reason ? ` ${reason}` : ""} from ${origin}`;
  if (isHtml) {
    const hint =
      PROXY_HINTS[status] ?? (headline ? `an HTML page: ${headline}` : "an HTML page, not the API");
    return `${head} (${hint})`;
  }
  const firstLine = trimmed.split("\n")[0]?.slice(0, 200) ?? "";
  return firstLine ? `${head}: ${firstLine}` : head;
}

/** An HTTP error answer of the API (or of something in front of it). */
export class HttpError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export interface CallOptions {
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export async function call(
  conn: Conn,
  method: string,
  path: string,
  opts: CallOptions = {},
): Promise<Response> {
  let url: URL;
  try {
    url = new URL(path, conn.url);
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error("not http(s)");
  } catch {
    throw new UsageError(`--url "${conn.url}" is not an http:// or https:// URL (or LAUNCHER_URL)`);
  }
  const send = await fetchFor(url);
  let res: Response;
  try {
    res = await send(url, {
      method,
      headers: {
        ...(conn.token ? { authorization: `Bearer ${conn.token}` } : {}),
        ...(opts.body !== undefined ? { "content-type": "application/json" } : {}),
        ...opts.headers,
      },
      ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  } catch (err) {
    if (opts.signal?.aborted) throw err;
    throw networkError(url.origin, err);
  }
  if (!res.ok) {
    let text = "";
    try {
      text = await res.text();
    } catch {}
    let message = describeHttpError(
      res.status,
      res.statusText,
      res.headers.get("content-type") ?? "",
      text,
      url.origin,
    );
    if (res.status === 401 && !conn.token) message += " (no token: set LAUNCHER_TOKEN or give --token)";
    throw new (res.status === 503 ? RetryableError : HttpError)(message, res.status);
  }
  return res;
}

/** The JSON body of an answer; a body that is not JSON says so, with who sent it. */
export async function readJson<T = unknown>(res: Response): Promise<T> {
  const origin = new URL(res.url || "http://unknown").origin;
  let text: string;
  try {
    text = await res.text();
  } catch (err) {
    throw networkError(origin, err, "lost the connection to");
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new Error(`${res.status} from ${origin} is not JSON: ${text.trim().split("\n")[0]?.slice(0, 200)}`);
  }
}

/**
 * The lines of a stream (NDJSON), each as its text and its parsed object. A final
 * `{"error":{…}}` line is thrown as an Error with the API's message; a cut connection as
 * "lost the connection to <origin>: <cause>".
 */
export async function* streamLines(res: Response): AsyncGenerator<{ line: string; msg: StreamMessage }> {
  const origin = new URL(res.url || "http://unknown").origin;
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  for (;;) {
    let chunk: Awaited<ReturnType<typeof reader.read>>;
    try {
      chunk = await reader.read();
    } catch (err) {
      throw networkError(origin, err, "lost the connection to");
    }
    if (chunk.done) break;
    buffered += chunk.value;
    let nl = buffered.indexOf("\n");
    while (nl >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      nl = buffered.indexOf("\n");
      if (line.trim() === "") continue;
      yield { line, msg: parseMessage(line) };
    }
  }
  if (buffered.trim() !== "") yield { line: buffered, msg: parseMessage(buffered) };
}

export interface StreamMessage {
  seqId?: number;
  error?: { code?: number; name?: string; message?: string };
  complete?: boolean;
  [key: string]: unknown;
}

function parseMessage(line: string): StreamMessage {
  try {
    return JSON.parse(line) as StreamMessage;
  } catch {
    return {};
  }
}

/** The message of a stream's final error line. */
export function streamErrorMessage(msg: StreamMessage): string {
  const e = msg.error ?? {};
  return `stream ended with an error: ${e.message ?? e.name ?? JSON.stringify(e)}`;
}

/** Pauses between submission attempts (ms); one attempt more than pauses. */
const SUBMIT_RETRY_PAUSES_MS = [250, 500, 1_000, 2_000, 4_000];

/**
 * A submission sent with an Idempotency-Key and sent again, with the same key, while the answer says
 * try again (503, or the node could not be reached): a repeat gets the job the first attempt made,
 * so retrying never runs a command twice.
 */
export async function submitWithRetries(conn: Conn, job: unknown): Promise<Response> {
  const headers = { "idempotency-key": randomUUID() };
  for (let attempt = 0; ; attempt++) {
    try {
      return await call(conn, "POST", "/jobs", { body: job, headers });
    } catch (err) {
      const pause = SUBMIT_RETRY_PAUSES_MS[attempt];
      if (!(err instanceof RetryableError) || pause === undefined) throw err;
      process.stderr.write(`${(err as Error).message}; retrying in ${pause} ms (same Idempotency-Key)\n`);
      await new Promise((r) => setTimeout(r, pause));
    }
  }
}
