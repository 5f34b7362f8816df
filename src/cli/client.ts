// The API client commands (jobs, nodes, cluster-info). On a terminal they print tables and text;
// piped, or with --json, the API's JSON exactly as before (one document, or one object per line for
// streams). `jobs output` prints the job's text either way (frames with --json). Errors go to
// stderr in words, exit status 1 (2 for a usage mistake, found before any request). Spec flags
// (--env, --mount, --port) are checked before any request.
import { type ParseArgsConfig, parseArgs } from "node:util";
import { isSpecError, type Job, parseEnvSpec, parseMountSpec, parsePortSpec } from "../api/index.js";
import { age, clip, clock, keyValues, list, table } from "./format.js";
import { helpFor, JOBS, NODES } from "./help.js";
import {
  type Conn,
  call,
  HttpError,
  networkError,
  RetryableError,
  readJson,
  type StreamMessage,
  streamErrorMessage,
  streamLines,
  submitWithRetries,
  UsageError,
} from "./http.js";

export type ClientCommand = "jobs" | "nodes" | "cluster-info";

export interface Globals {
  url?: string;
  token?: string;
  json: boolean;
  table: boolean;
  help: boolean;
  /** Everything else, in order. */
  rest: string[];
}

const VALUE_GLOBALS = new Set(["--url", "--token"]);
const BOOLEAN_GLOBALS: Record<string, "json" | "table" | "help"> = {
  "--json": "json",
  "--table": "table",
  "--help": "help",
  "-h": "help",
};

/** Takes the global options out of `argv`, wherever they are (up to a `--`). */
export function parseGlobals(argv: string[]): Globals {
  const g: Globals = { json: false, table: false, help: false, rest: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      g.rest.push(...argv.slice(i));
      break;
    }
    const [flag, inline] = a.split(/=(.*)/s, 2) as [string, string | undefined];
    if (VALUE_GLOBALS.has(flag)) {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      if (flag === "--url") g.url = v;
      else g.token = v;
    } else if (inline === undefined && BOOLEAN_GLOBALS[a]) {
      g[BOOLEAN_GLOBALS[a]] = true;
    } else g.rest.push(a);
  }
  return g;
}

interface Ctx {
  conn: Conn;
  /** Tables and text (a terminal, or --table), or JSON. */
  human: boolean;
  /** --json was given (as opposed to JSON because stdout is piped). */
  json: boolean;
}

const out = (s: string) => process.stdout.write(s);
const printJson = (v: unknown) => out(`${JSON.stringify(v, null, 2)}\n`);

// ---- jobs ------------------------------------------------------------------------------------

type JobView = Partial<Job> & { id: string; node?: string; [k: string]: unknown };

/** The exit status that a job's end maps to, and the words for it (undefined: nothing to say). */
export function jobOutcome(job: JobView): { code: number; why?: string } {
  const exit = typeof job.exitCode === "number" ? job.exitCode : undefined;
  const msg = job.statusMessage ? `: ${job.statusMessage}` : "";
  switch (job.status) {
    case "Finished":
      return exit
        ? { code: exit & 255 || 1, why: `job ${job.id} Finished with exit code ${exit}` }
        : { code: 0 };
    case "Failed":
      return {
        code: exit ? exit & 255 || 1 : 1,
        why: `job ${job.id} Failed${exit !== undefined ? ` (exit code ${exit})` : ""}${msg}`,
      };
    case "Killed":
      return {
        code: 137,
        why: `job ${job.id} Killed${exit !== undefined ? ` (exit code ${exit})` : ""}${msg}`,
      };
    case "Canceled":
      return { code: 1, why: `job ${job.id} Canceled${msg}` };
    default:
      return { code: 1, why: `job ${job.id} is ${job.status ?? "in an unknown state"}${msg}` };
  }
}

const TERMINAL = new Set(["Finished", "Failed", "Killed", "Canceled"]);

function jobRows(jobs: JobView[]): string {
  if (jobs.length === 0) return "no jobs\n";
  return table(
    ["ID", "NAME", "USER", "STATUS", "EXIT", "NODE", "SUBMITTED", "TAGS"],
    jobs.map((j) => [
      j.id,
      clip(j.name, 24),
      j.user ?? "",
      j.status ?? "",
      j.exitCode !== undefined ? String(j.exitCode) : "",
      j.node ?? j.host ?? "",
      age(j.submissionTime),
      clip(list(j.tags), 30),
    ]),
  );
}

function jobDetails(j: JobView): string {
  const env = (j.environment ?? []).map((e) => `${e.name}=${e.value}`).join(" ");
  const known = new Set([
    "id",
    "name",
    "status",
    "statusMessage",
    "exitCode",
    "user",
    "command",
    "exe",
    "args",
    "node",
    "host",
    "pid",
    "tags",
    "submissionTime",
    "lastUpdateTime",
    "environment",
    "workingDirectory",
    "stdoutFile",
    "stderrFile",
    "queues",
    "cluster",
  ]);
  const rest = Object.entries(j)
    .filter(([k, v]) => !known.has(k) && v !== undefined && !(Array.isArray(v) && v.length === 0))
    .map(([k, v]): [string, string] => [k, typeof v === "string" ? v : JSON.stringify(v)]);
  return keyValues([
    ["id", j.id],
    ["name", j.name],
    ["status", j.status],
    ["message", j.statusMessage],
    ["exit code", j.exitCode !== undefined ? String(j.exitCode) : undefined],
    ["user", j.user],
    ["command", j.command],
    ["exe", j.exe],
    ["args", j.args?.length ? JSON.stringify(j.args) : undefined],
    ["node", j.node],
    ["host", j.host],
    ["pid", j.pid !== undefined ? String(j.pid) : undefined],
    ["tags", list(j.tags)],
    ["queues", list(j.queues)],
    ["cluster", j.cluster],
    ["submitted", j.submissionTime && `${j.submissionTime} (${age(j.submissionTime)})`],
    ["updated", j.lastUpdateTime && `${j.lastUpdateTime} (${age(j.lastUpdateTime)})`],
    ["environment", env],
    ["working dir", j.workingDirectory],
    ["stdout file", j.stdoutFile],
    ["stderr file", j.stderrFile],
    ...rest,
  ]);
}

function parseSpecs<T>(items: string[] | undefined, parse: (s: string) => T): T[] | undefined {
  return items?.map((s) => parse(s));
}

function query(params: Record<string, string[] | string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    for (const item of Array.isArray(v) ? v : v === undefined ? [] : [v]) q.append(k, item);
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

const jobPath = (id: string, tail = "") => `/jobs/${encodeURIComponent(id)}${tail}`;

function oneId(sub: string, positionals: string[]): string {
  const id = positionals[0];
  if (!id) throw new UsageError(`jobs ${sub}: a job id is required (launcher-fleet jobs ${sub} --help)`);
  if (positionals.length > 1) throw new UsageError(`jobs ${sub}: unexpected "${positionals[1]}"`);
  return id;
}

async function submit(ctx: Ctx, argv: string[]): Promise<number> {
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
      wait: { type: "boolean" },
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
  const created = await readJson<JobView>(await submitWithRetries(ctx.conn, job));
  if (!values.wait) {
    if (ctx.human) out(jobDetails(created));
    else printJson(created);
    return 0;
  }
  // Like `docker run`: stdout carries the job's output only; what we say goes to stderr.
  if (ctx.human) process.stderr.write(`job ${created.id} submitted (${created.status ?? "?"})\n`);
  return follow(ctx, created.id, { output: !ctx.json });
}

/**
 * Follows a job to its end: its status stream (resumed with ?since= after a lost connection) and,
 * with `output`, its output as text. Then the final job decides the exit status.
 */
async function follow(ctx: Ctx, id: string, opts: { output: boolean }): Promise<number> {
  // Ctrl-C leaves the job running, and says how to get back to it or stop it.
  process.once("SIGINT", () => {
    process.stderr.write(
      `\nstopped following job ${id}, which goes on: \`launcher-fleet jobs wait ${id}\` follows it again, ` +
        `\`launcher-fleet jobs control ${id} stop\` stops it\n`,
    );
    process.exit(130);
  });
  const stopOutput = new AbortController();
  const output = opts.output
    ? printOutput(ctx, id, "both", stopOutput.signal).catch((err: unknown) => {
        if (stopOutput.signal.aborted) return;
        process.stderr.write(
          `the output stream stopped: ${(err as Error).message} (\`jobs output ${id}\` prints it all)\n`,
        );
      })
    : Promise.resolve();
  let ran: boolean;
  try {
    ran = await waitForEnd(ctx, id);
  } catch (err) {
    stopOutput.abort();
    throw err;
  }
  // The output stream ends by itself after the last byte of a job that ran; a job that never ran
  // (canceled while queued) has none to wait for.
  if (!ran) stopOutput.abort();
  await output;
  const job = await readJson<JobView>(await call(ctx.conn, "GET", jobPath(id)));
  const outcome = jobOutcome(job);
  if (ctx.json) printJson(job);
  if (outcome.why) process.stderr.write(`${outcome.why}\n`);
  return outcome.code;
}

/** Reads the job's status stream until it ends; true when the job was seen Running. */
async function waitForEnd(ctx: Ctx, id: string): Promise<boolean> {
  let since: string | undefined;
  let ran = false;
  // Once the job was followed, a lost connection (a node restarting behind the load balancer) is
  // followed again from the last event; a first attempt that fails is the answer.
  let followed = false;
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await call(ctx.conn, "GET", jobPath(id, `/status${query({ since })}`));
      followed = true;
      for await (const { msg } of streamLines(res)) {
        if (msg.error) throw new Error(streamErrorMessage(msg));
        if (typeof msg.eventId === "string") since = msg.eventId;
        if (msg.status === "Running") ran = true;
        if (typeof msg.status === "string" && TERMINAL.has(msg.status)) {
          if (msg.status !== "Canceled") ran = true;
          return ran;
        }
      }
      // The stream ended without a terminal status (the node is going away): look again.
      const job = await readJson<JobView>(await call(ctx.conn, "GET", jobPath(id)));
      if (job.status && TERMINAL.has(job.status)) return ran || job.status !== "Canceled";
      await new Promise((r) => setTimeout(r, 1_000));
    } catch (err) {
      if (!(err instanceof RetryableError) || !followed || attempt >= 10) throw err;
      process.stderr.write(`${(err as Error).message}; following job ${id} again in 1 s\n`);
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }
}

/**
 * Writes the job's output as text: its stdout on stdout, its stderr on stderr. The stream replays
 * from the start, so after a lost connection (the answering node went away behind the load
 * balancer) it is read again and what was already written, counted per output type, is skipped.
 */
async function printOutput(ctx: Ctx, id: string, type: string, signal?: AbortSignal): Promise<number> {
  const written: Record<string, number> = {};
  let connected = false;
  for (let attempt = 0; ; attempt++) {
    const seen: Record<string, number> = {};
    try {
      const res = await call(ctx.conn, "GET", jobPath(id, `/output${query({ outputType: type })}`), {
        ...(signal ? { signal } : {}),
      });
      connected = true;
      for await (const { msg } of streamLines(res)) {
        if (msg.error) throw new Error(streamErrorMessage(msg));
        if (typeof msg.output !== "string") continue;
        const kind = typeof msg.outputType === "string" ? msg.outputType : "stdout";
        const before = seen[kind] ?? 0;
        seen[kind] = before + msg.output.length;
        const fresh = msg.output.slice(Math.max(0, (written[kind] ?? 0) - before));
        if (fresh === "") continue;
        written[kind] = seen[kind];
        (kind === "stderr" ? process.stderr : process.stdout).write(fresh);
      }
      return 0;
    } catch (err) {
      if (signal?.aborted || !(err instanceof RetryableError) || !connected || attempt >= 10) throw err;
      process.stderr.write(`${(err as Error).message}; reading the output of job ${id} again in 1 s\n`);
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }
}

/** Prints a stream: NDJSON lines as they come (JSON mode), or `render(msg)` lines (human). */
async function printStream(
  ctx: Ctx,
  res: Response,
  render: (msg: StreamMessage) => string | undefined,
): Promise<number> {
  for await (const { line, msg } of streamLines(res)) {
    if (msg.error) {
      if (!ctx.human) out(`${line}\n`);
      process.stderr.write(`${streamErrorMessage(msg)}\n`);
      return 1;
    }
    if (!ctx.human) out(`${line}\n`);
    else {
      const text = render(msg);
      if (text !== undefined) out(`${text}\n`);
    }
  }
  return 0;
}

function statusLine(m: StreamMessage): string | undefined {
  if (m.resync) return "(events were missed: starting again from the current status)";
  if (typeof m.status !== "string") return undefined;
  const name = typeof m.name === "string" && m.name ? ` ${m.name}` : "";
  const message = typeof m.statusMessage === "string" && m.statusMessage ? `  ${m.statusMessage}` : "";
  return `${clock(m.lastUpdateTime)}  ${m.id}${name}  ${m.status}${message}`;
}

function resourceLine(m: StreamMessage): string | undefined {
  if (m.complete) return "(the job has ended)";
  const n = (k: string, digits: number) =>
    typeof m[k] === "number" ? (m[k] as number).toFixed(digits) : "?";
  return `cpu ${n("cpuPercent", 1)}%  cpu time ${n("cpuTime", 2)} s  resident ${n("residentMemory", 1)} MB  virtual ${n("virtualMemory", 1)} MB`;
}

async function jobs(ctx: Ctx, argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const positional = (options: NonNullable<ParseArgsConfig["options"]> = {}) =>
    parseArgs({ args: rest, allowPositionals: true, options });
  switch (sub) {
    case "submit":
      return submit(ctx, rest);
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
      const body = await readJson<{ jobs: JobView[] }>(await call(ctx.conn, "GET", `/jobs${q}`));
      if (ctx.human) out(jobRows(body.jobs));
      else printJson(body);
      return 0;
    }
    case "get": {
      const { values, positionals } = positional({ fields: { type: "string" } });
      const id = oneId(sub, positionals);
      const job = await readJson<JobView>(
        await call(ctx.conn, "GET", jobPath(id, query({ fields: values.fields as string | undefined }))),
      );
      if (ctx.human) out(jobDetails(job));
      else printJson(job);
      return 0;
    }
    case "control": {
      const { positionals } = positional();
      const [id, operation] = positionals;
      if (!id || !operation || positionals.length > 2)
        throw new UsageError("jobs control: ID suspend|resume|stop|kill|cancel");
      const body = await readJson<{ statusMessage?: string }>(
        await call(ctx.conn, "POST", jobPath(id, "/control"), { body: { operation } }),
      );
      if (ctx.human) out(`${body.statusMessage ?? `${operation}: done`}\n`);
      else printJson(body);
      return 0;
    }
    case "status": {
      const { positionals } = positional();
      const id = positionals[0] ?? "*";
      return printStream(ctx, await call(ctx.conn, "GET", jobPath(id, "/status")), statusLine);
    }
    case "output": {
      const { values, positionals } = positional({ type: { type: "string", default: "both" } });
      const id = oneId(sub, positionals);
      const type = values.type as string;
      if (ctx.json) {
        const res = await call(ctx.conn, "GET", jobPath(id, `/output${query({ outputType: type })}`));
        return printStream(ctx, res, () => undefined);
      }
      return printOutput(ctx, id, type);
    }
    case "wait": {
      const id = oneId(sub, positional().positionals);
      await waitForEnd(ctx, id);
      const job = await readJson<JobView>(await call(ctx.conn, "GET", jobPath(id)));
      const outcome = jobOutcome(job);
      if (ctx.human) {
        out(
          `job ${job.id} ${job.status}${job.exitCode !== undefined ? ` (exit code ${job.exitCode})` : ""}\n`,
        );
        if (outcome.why && outcome.code !== 0 && job.statusMessage) process.stderr.write(`${outcome.why}\n`);
      } else {
        printJson(job);
        if (outcome.why) process.stderr.write(`${outcome.why}\n`);
      }
      return outcome.code;
    }
    case "network": {
      const id = oneId(sub, positional().positionals);
      const body = await readJson<{ host?: string; ipAddresses?: string[] }>(
        await call(ctx.conn, "GET", jobPath(id, "/network")),
      );
      if (ctx.human)
        out(
          keyValues([
            ["host", body.host],
            ["addresses", list(body.ipAddresses)],
          ]),
        );
      else printJson(body);
      return 0;
    }
    case "resources":
    case "resource":
    case "resource-util": {
      const id = oneId("resources", positional().positionals);
      return printStream(ctx, await call(ctx.conn, "GET", jobPath(id, "/resource-util")), resourceLine);
    }
    default:
      throw new UsageError(
        sub === undefined
          ? `jobs: a subcommand is required (${Object.keys(JOBS).join(", ")}); see launcher-fleet jobs --help`
          : `jobs: unknown subcommand "${sub}" (${Object.keys(JOBS).join(", ")})`,
      );
  }
}

// ---- nodes, cluster-info -----------------------------------------------------------------------

interface NodeView {
  id: string;
  host?: string;
  ipv4?: string;
  port?: string;
  status?: string;
  online?: boolean;
  lastSeen?: string;
  runningJobs?: number;
  slots?: number;
  labels?: Record<string, string>;
  queues?: string[];
}

function nodeRows(nodes: NodeView[]): string {
  if (nodes.length === 0) return "no nodes\n";
  return table(
    ["ID", "STATUS", "ONLINE", "ADDRESS", "HOST", "JOBS/SLOTS", "LAST SEEN", "QUEUES", "LABELS"],
    nodes.map((n) => [
      n.id,
      n.status ?? "",
      n.online === undefined ? "" : n.online ? "yes" : "no",
      n.ipv4 ? `${n.ipv4}:${n.port ?? ""}` : "",
      n.host ?? "",
      `${n.runningJobs ?? "?"}/${n.slots ? n.slots : "-"}`,
      age(n.lastSeen),
      list(n.queues),
      Object.entries(n.labels ?? {})
        .map(([k, v]) => (v ? `${k}=${v}` : k))
        .join(","),
    ]),
  );
}

function nodeChangeLine(m: StreamMessage): string | undefined {
  if (Array.isArray(m.nodes)) return nodeRows(m.nodes as NodeView[]).trimEnd();
  const now = new Date().toISOString();
  if (typeof m.removed === "string") return `${clock(now)}  ${m.removed}  removed`;
  const v = m.node as NodeView | undefined;
  if (!v) return undefined;
  const jobs = `${v.runningJobs ?? "?"}/${v.slots ? v.slots : "-"}`;
  return `${clock(now)}  ${v.id}  ${v.status ?? "?"}  online ${v.online ? "yes" : "no"}  jobs/slots ${jobs}`;
}

async function nodes(ctx: Ctx, argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { watch: { type: "boolean", short: "w" } },
  });
  const [sub = "list", id, extra] = positionals;
  switch (sub) {
    case "list": {
      if (id !== undefined) throw new UsageError(`nodes list: unexpected "${id}"`);
      if (values.watch)
        return printStream(ctx, await call(ctx.conn, "GET", "/nodes?watch=true"), nodeChangeLine);
      const body = await readJson<{ nodes: NodeView[] }>(await call(ctx.conn, "GET", "/nodes"));
      if (ctx.human) out(nodeRows(body.nodes));
      else printJson(body);
      return 0;
    }
    case "drain": {
      if (!id || extra !== undefined) throw new UsageError("nodes drain: one node id is required");
      const body = await readJson<{ id?: string; status?: string }>(
        await call(ctx.conn, "POST", `/nodes/${encodeURIComponent(id)}/drain`),
      );
      if (ctx.human)
        out(
          `${body.id ?? id}: ${body.status ?? "Draining"} (it takes no new jobs and exits after LAUNCHER_DRAIN_MS; running jobs keep running)\n`,
        );
      else printJson(body);
      return 0;
    }
    default:
      throw new UsageError(`nodes: unknown subcommand "${sub}" (${Object.keys(NODES).join(", ")})`);
  }
}

interface ClusterInfo {
  supportsContainers?: boolean;
  queues?: string[];
  defaultQueue?: string;
  resourceLimits?: { type?: string; defaultValue?: string; maxValue?: string }[];
  placementConstraints?: { name?: string; value?: string }[];
  config?: { name?: string; valueType?: string; value?: string }[];
  resourceProfiles?: { name?: string; displayName?: string }[];
}

async function clusterInfo(ctx: Ctx, argv: string[]): Promise<number> {
  parseArgs({ args: argv, options: {} });
  const info = await readJson<ClusterInfo>(await call(ctx.conn, "GET", "/cluster-info"));
  if (!ctx.human) {
    printJson(info);
    return 0;
  }
  const none = (items: string[]) => (items.length ? items.join(", ") : "none");
  out(
    keyValues([
      ["queues", none((info.queues ?? []).map((q) => (q === info.defaultQueue ? `${q} (default)` : q)))],
      ["containers", info.supportsContainers ? "supported" : "not supported"],
      ["placement constraints", none((info.placementConstraints ?? []).map((c) => `${c.name}=${c.value}`))],
      [
        "resource limits",
        none(
          (info.resourceLimits ?? []).map(
            (l) =>
              `${l.type}${l.defaultValue !== undefined || l.maxValue !== undefined ? ` (default ${l.defaultValue ?? "-"}, max ${l.maxValue ?? "-"})` : ""}`,
          ),
        ),
      ],
      ["resource profiles", none((info.resourceProfiles ?? []).map((p) => p.displayName ?? p.name ?? "?"))],
      ["config options", none((info.config ?? []).map((c) => `${c.name} (${c.valueType})`))],
    ]),
  );
  return 0;
}

// ---- entry ---------------------------------------------------------------------------------------

/** Runs a client command; `argv` is everything after the command's name (global options anywhere). */
export async function runClient(command: ClientCommand, argv: string[]): Promise<number> {
  try {
    const g = parseGlobals(argv);
    if (g.help) {
      const sub = command === "cluster-info" ? undefined : g.rest.find((a) => !a.startsWith("-"));
      const text = helpFor(command, sub);
      if (text === undefined) throw new UsageError(`${command}: unknown subcommand "${sub}"`);
      out(text);
      return 0;
    }
    if (g.json && g.table) throw new UsageError("--json and --table exclude each other");
    const token = g.token ?? (process.env.LAUNCHER_TOKEN || undefined);
    const ctx: Ctx = {
      conn: {
        url: g.url ?? (process.env.LAUNCHER_URL || "http://127.0.0.1:5559"),
        ...(token ? { token } : {}),
      },
      human: g.table || (!g.json && process.stdout.isTTY === true),
      json: g.json,
    };
    // A reader that goes away (`| head`) ends us quietly.
    process.stdout.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EPIPE") process.exit(0);
    });
    switch (command) {
      case "jobs":
        return await jobs(ctx, g.rest);
      case "nodes":
        return await nodes(ctx, g.rest);
      case "cluster-info":
        return await clusterInfo(ctx, g.rest);
    }
  } catch (err) {
    const bad =
      err instanceof UsageError ||
      isSpecError(err) ||
      (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS");
    let message = (err as Error).message;
    if (!(err instanceof HttpError || err instanceof RetryableError || bad) && message === "fetch failed")
      message = networkError(process.env.LAUNCHER_URL || "the API", err).message;
    process.stderr.write(`${message}\n`);
    if ((err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS"))
      process.stderr.write(`(launcher-fleet ${command} --help lists the options)\n`);
    return bad ? 2 : 1;
  }
}
