// The API client commands: every one prints JSON on stdout, and exits non-zero with the API's
// error message on stderr. Spec flags (--env, --mount, --port) are checked before any request.
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { isSpecError, type Job, parseEnvSpec, parseMountSpec, parsePortSpec } from "../api/index.js";

class UsageError extends Error {}

interface Conn {
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

/** An answer that says "try again": the request may not have been served (a 503, or no connection). */
class RetryableError extends Error {}

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

async function call(
  conn: Conn,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  const url = new URL(path, conn.url);
  const send = await fetchFor(url);
  let res: Response;
  try {
    res = await send(url, {
      method,
      headers: {
        ...(conn.token ? { authorization: `Bearer ${conn.token}` } : {}),
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
        ...headers,
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch (err) {
    // fetch says only "fetch failed"; the cause names the refusal or the certificate problem.
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    if (!cause) throw err;
    const transient = cause.code !== undefined && TRANSIENT_NETWORK_ERRORS.has(cause.code);
    throw new (transient ? RetryableError : Error)(
      `cannot reach ${url.origin}: ${cause.code ?? cause.message ?? "fetch failed"}`,
      { cause: err },
    );
  }
  if (!res.ok) {
    const text = await res.text();
    let message = text;
    try {
      message = (JSON.parse(text) as { message?: string }).message ?? text;
    } catch {}
    throw new (res.status === 503 ? RetryableError : Error)(`${res.status}: ${message}`);
  }
  return res;
}

/** Pauses between submission attempts (ms); one attempt more than pauses. */
const SUBMIT_RETRY_PAUSES_MS = [250, 500, 1_000, 2_000, 4_000];

/**
 * A submission sent with an Idempotency-Key and sent again, with the same key, while the answer says
 * try again (503, or the node could not be reached): a repeat gets the job the first attempt made,
 * so retrying never runs a command twice.
 */
async function submitWithRetries(conn: Conn, job: unknown): Promise<Response> {
  const headers = { "idempotency-key": randomUUID() };
  for (let attempt = 0; ; attempt++) {
    try {
      return await call(conn, "POST", "/jobs", job, headers);
    } catch (err) {
      const pause = SUBMIT_RETRY_PAUSES_MS[attempt];
      if (!(err instanceof RetryableError) || pause === undefined) throw err;
      process.stderr.write(`${(err as Error).message}; retrying in ${pause} ms (same Idempotency-Key)\n`);
      await new Promise((r) => setTimeout(r, pause));
    }
  }
}

async function printJson(res: Response): Promise<void> {
  process.stdout.write(`${JSON.stringify(await res.json(), null, 2)}\n`);
}

/** Streams print one JSON object per line as they arrive. */
async function printStream(res: Response): Promise<number> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let failed = false;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    if (value.includes('"error":')) failed = true;
    process.stdout.write(value);
  }
  return failed ? 1 : 0;
}

function query(params: Record<string, string[] | string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    for (const item of Array.isArray(v) ? v : v === undefined ? [] : [v]) q.append(k, item);
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

function parseSpecs<T>(list: string[] | undefined, parse: (s: string) => T): T[] | undefined {
  return list?.map((s) => parse(s));
}

async function submit(conn: Conn, argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      command: { type: "string" },
      exe: { type: "string" },
      arg: { type: "string", multiple: true },
      name: { type: "string" },
      tag: { type: "string", multiple: true },
      env: { type: "string", multiple: true },
      mount: { type: "string", multiple: true },
      port: { type: "string", multiple: true },
      stdin: { type: "string" },
      workdir: { type: "string" },
      stdout: { type: "string" },
      stderr: { type: "string" },
      user: { type: "string" },
    },
  });
  if (!values.command === !values.exe)
    throw new UsageError("jobs submit: give exactly one of --command or --exe");
  const job: Omit<Job, "id"> = {
    ...(values.command ? { command: values.command } : {}),
    ...(values.exe ? { exe: values.exe } : {}),
    ...(values.arg ? { args: values.arg } : {}),
    ...(values.name ? { name: values.name } : {}),
    ...(values.tag ? { tags: values.tag } : {}),
    ...(values.stdin !== undefined ? { stdin: values.stdin } : {}),
    ...(values.workdir ? { workingDirectory: values.workdir } : {}),
    ...(values.stdout ? { stdoutFile: values.stdout } : {}),
    ...(values.stderr ? { stderrFile: values.stderr } : {}),
    ...(values.user ? { user: values.user } : {}),
  };
  const environment = parseSpecs(values.env, parseEnvSpec);
  const mounts = parseSpecs(values.mount, parseMountSpec);
  const exposedPorts = parseSpecs(values.port, parsePortSpec);
  Object.assign(job, environment && { environment }, mounts && { mounts }, exposedPorts && { exposedPorts });
  await printJson(await submitWithRetries(conn, job));
  return 0;
}

async function jobs(conn: Conn, argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case "submit":
      return submit(conn, rest);
    case "list": {
      const { values } = parseArgs({
        args: rest,
        options: {
          tag: { type: "string", multiple: true },
          status: { type: "string", multiple: true },
          "start-time": { type: "string" },
          "end-time": { type: "string" },
          // The first names of --start-time and --end-time, kept working.
          since: { type: "string" },
          until: { type: "string" },
          fields: { type: "string" },
          user: { type: "string" },
        },
      });
      const q = query({
        tags: values.tag,
        statuses: values.status,
        startTime: values["start-time"] ?? values.since,
        endTime: values["end-time"] ?? values.until,
        fields: values.fields,
        user: values.user,
      });
      await printJson(await call(conn, "GET", `/jobs${q}`));
      return 0;
    }
    case "get": {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { fields: { type: "string" } },
      });
      const id = positionals[0];
      if (!id) throw new UsageError("jobs get: a job id is required");
      await printJson(
        await call(conn, "GET", `/jobs/${encodeURIComponent(id)}${query({ fields: values.fields })}`),
      );
      return 0;
    }
    case "control": {
      const [id, operation] = rest;
      if (!id || !operation) throw new UsageError("jobs control: ID suspend|resume|stop|kill|cancel");
      await printJson(await call(conn, "POST", `/jobs/${encodeURIComponent(id)}/control`, { operation }));
      return 0;
    }
    case "status": {
      const id = rest[0] ?? "*";
      return printStream(await call(conn, "GET", `/jobs/${encodeURIComponent(id)}/status`));
    }
    case "output": {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { type: { type: "string", default: "both" } },
      });
      const id = positionals[0];
      if (!id) throw new UsageError("jobs output: a job id is required");
      return printStream(
        await call(
          conn,
          "GET",
          `/jobs/${encodeURIComponent(id)}/output${query({ outputType: values.type })}`,
        ),
      );
    }
    default:
      throw new UsageError(
        `jobs: unknown subcommand "${sub ?? ""}" (submit, list, get, control, status, output)`,
      );
  }
}

/** Splits the shared --url/--token options from the rest. */
function connection(argv: string[]): { conn: Conn; rest: string[] } {
  const rest: string[] = [];
  let url = process.env.LAUNCHER_URL || "http://127.0.0.1:5559";
  let token = process.env.LAUNCHER_TOKEN;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] = a.split(/=(.*)/s, 2) as [string, string | undefined];
    if (flag === "--url" || flag === "--token") {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      if (flag === "--url") url = v;
      else token = v;
    } else rest.push(a);
  }
  return { conn: { url, ...(token ? { token } : {}) }, rest };
}

export async function runClient(command: "jobs" | "nodes", argv: string[]): Promise<number> {
  try {
    const { conn, rest } = connection(argv);
    if (command === "nodes") {
      await printJson(await call(conn, "GET", "/nodes"));
      return 0;
    }
    return await jobs(conn, rest);
  } catch (err) {
    const bad =
      err instanceof UsageError ||
      isSpecError(err) ||
      (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS");
    process.stderr.write(`${(err as Error).message}\n`);
    return bad ? 2 : 1;
  }
}
