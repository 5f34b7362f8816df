// Shared pieces of the benchmarks: the project's own modules (loaded from `dist/`, the build the
// child-process nodes run), statistics, the results table, cleanup stacks, and starting Redis,
// fleets and HTTP clients on loopback.
import { type ChildProcess, execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { Pool } from "undici";
import { TERMINAL_STATUSES } from "../src/api/status.js";
import { clockTicks, type ProcStat, readProcStat } from "../src/runner/proc.js";
import type { LocalFleet } from "../src/topology/index.js";

// ---------------------------------------------------------------------------------------------
// The project's modules. Bench code is compiled to dist-bench/, but at run time it uses the same
// compiled modules as the nodes (dist/, from `npm run build`): the Lua scripts and the topology's
// paths (dist/cli.js, ops/haproxy.cfg) are found relative to those files.

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, "package.json")) && existsSync(join(dir, "src"))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error("bench: repository root not found");
    dir = up;
  }
}

export const ROOT = findRoot();
export const DIST = join(ROOT, "dist");

function distModule(path: string): string {
  const file = join(DIST, path);
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` first`);
  return pathToFileURL(file).href;
}

export const topology: typeof import("../src/topology/index.js") = await import(
  distModule("topology/index.js")
);
export const scripts: typeof import("../src/cluster/scripts.js") = await import(
  distModule("cluster/scripts.js")
);
export const keysModule: typeof import("../src/cluster/keys.js") = await import(
  distModule("cluster/keys.js")
);
export const jobStore: typeof import("../src/cluster/job-store.js") = await import(
  distModule("cluster/job-store.js")
);
export const auth: typeof import("../src/http/auth.js") = await import(distModule("http/auth.js"));
export const nodeTable: typeof import("../src/cluster/node-table.js") = await import(
  distModule("cluster/node-table.js")
);
export const haproxyModule: typeof import("../src/topology/haproxy.js") = await import(
  distModule("topology/haproxy.js")
);

// ---------------------------------------------------------------------------------------------
// Time and statistics

export { sleep };
export const now = () => performance.now();
/** CLOCK_MONOTONIC in ms: comparable between threads and processes on this machine. */
export const monoMs = () => Number(process.hrtime.bigint()) / 1e6;

export interface Summary {
  n: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function summarize(values: readonly number[]): Summary {
  const s = [...values].sort((a, b) => a - b);
  const sum = s.reduce((a, b) => a + b, 0);
  return {
    n: s.length,
    min: s[0] ?? Number.NaN,
    p50: percentile(s, 50),
    p90: percentile(s, 90),
    p99: percentile(s, 99),
    max: s[s.length - 1] ?? Number.NaN,
    mean: s.length ? sum / s.length : Number.NaN,
  };
}

export const fmtMs = (x: number, digits = 2) => (Number.isFinite(x) ? `${x.toFixed(digits)} ms` : "n/a");
export const fmtNum = (x: number, digits = 0) =>
  Number.isFinite(x)
    ? x.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : "n/a";
export const fmtPct = (x: number, digits = 2) =>
  Number.isFinite(x) ? `${(x * 100).toFixed(digits)}%` : "n/a";
export const fmtRatio = (x: number) => (Number.isFinite(x) ? `${x.toFixed(2)}x` : "n/a");
export const fmtMB = (kb: number) => `${(kb / 1024).toFixed(1)} MB`;

// ---------------------------------------------------------------------------------------------
// Results

export type Verdict = "met" | "missed";

export interface Row {
  measure: string;
  metric: string;
  value: string;
  baseline?: string;
  ratio?: string;
  target?: string;
  /** Only on rows that correspond to a docs/architecture.md ("Design rules") target. */
  verdict?: Verdict;
}

export type Mode = "quick" | "full";

export interface Ctx {
  mode: Mode;
  full: boolean;
  verbose: boolean;
  log(line: string): void;
  row(r: Row): void;
  /** The run's shared fleet (started on first use, stopped at the end of the run). */
  shared(): Promise<Shared>;
}

/**
 * One Redis and a 3-node fleet (node-1..3, default timings) behind HAProxy when it is installed,
 * shared by the measures that need "a fleet": starting nodes costs seconds on a busy machine.
 * Measures leave it as they found it (their jobs finished, their simulated nodes removed).
 */
export interface Shared {
  redis: BenchRedis;
  fleet: LocalFleet & { scratchPath: string };
  prefix: string;
  haproxy: boolean;
  token: string;
}

export async function startShared(stack: Stack, ctx: Ctx): Promise<Shared> {
  const t0 = now();
  const redis = await startRedis(stack);
  const haproxy = haproxyAvailable();
  const prefix = "bench";
  const fleet = await startFleet(stack, ctx, { nodes: 3, haproxy, redisUrl: redis.url, prefix });
  ctx.log(
    `  (shared fleet: redis + 3 nodes${haproxy ? " + HAProxy" : ""} started in ${((now() - t0) / 1000).toFixed(1)} s)`,
  );
  return { redis, fleet, prefix, haproxy, token: await fleet.adminToken("4h") };
}

export const verdict = (ok: boolean): Verdict => (ok ? "met" : "missed");

export function printTable(rows: readonly Row[], out: (s: string) => void = console.log): void {
  const cols: { key: keyof Row; title: string }[] = [
    { key: "measure", title: "measure" },
    { key: "metric", title: "metric" },
    { key: "value", title: "value" },
    { key: "baseline", title: "baseline" },
    { key: "ratio", title: "ratio" },
    { key: "target", title: "target" },
    { key: "verdict", title: "" },
  ];
  const cell = (r: Row, k: keyof Row) => {
    const v = r[k] ?? "";
    return k === "verdict" && v ? `target ${v}` : v;
  };
  const widths = cols.map((c) => Math.max(c.title.length, ...rows.map((r) => cell(r, c.key).length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  out(line(cols.map((c) => c.title)));
  out(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const r of rows) out(line(cols.map((c) => cell(r, c.key))));
}

// ---------------------------------------------------------------------------------------------
// Cleanup: every measure pushes what it starts onto a stack; close() runs every step (newest
// first) even when some fail. Stacks still open when the process is interrupted are closed too.

const openStacks = new Set<Stack>();

export class Stack {
  private readonly steps: { name: string; fn: () => unknown }[] = [];
  private closing: Promise<void> | undefined;

  constructor(readonly name: string) {
    openStacks.add(this);
  }

  defer(name: string, fn: () => unknown): void {
    this.steps.push({ name, fn });
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const step of this.steps.splice(0).reverse()) {
        try {
          await withTimeout(Promise.resolve().then(step.fn), 30_000, `${this.name}: cleanup "${step.name}"`);
        } catch (err) {
          console.error(`[${this.name}] cleanup "${step.name}" failed: ${(err as Error).message}`);
        }
      }
      openStacks.delete(this);
    })();
    return this.closing;
  }
}

export async function closeAllStacks(): Promise<void> {
  for (const s of [...openStacks].reverse()) await s.close();
}

export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `fn` until it returns a truthy value. */
export async function until<T>(
  what: string,
  fn: () => Promise<T> | T,
  timeoutMs = 15_000,
  everyMs = 25,
): Promise<NonNullable<T>> {
  const deadline = now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}

// ---------------------------------------------------------------------------------------------
// Processes

export function scratchDir(stack: Stack, name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `launcher-bench-${name}-`));
  stack.defer(`remove ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * VmRSS and VmHWM (peak RSS) of a process, and its anonymous (private: heap, stacks) resident memory
 * from smaps_rollup, in kB. RSS also counts the Node binary's pages shared with every other process.
 */
export function procMemory(pid: number): { rssKB: number; hwmKB: number; anonKB: number } {
  const text = readFileSync(`/proc/${pid}/status`, "utf8");
  const field = (name: string) =>
    Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(text)?.[1] ?? Number.NaN);
  let anonKB = Number.NaN;
  try {
    anonKB = Number(
      /^Anonymous:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"))?.[1] ?? Number.NaN,
    );
  } catch {}
  return { rssKB: field("VmRSS"), hwmKB: field("VmHWM"), anonKB };
}

/**
 * CPU time a process has used so far, in ms: the sum over its threads of /proc/<pid>/task/<tid>/schedstat
 * (nanosecond resolution). /proc/<pid>/schedstat alone is the main thread's: it misses a node's libuv
 * thread pool (file system calls: job dirs, spec and status files) and V8's GC helper threads.
 */
export function procCpuMs(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // the thread exited meanwhile
    }
  }
  return ns / 1e6;
}

/** The main thread's share of procCpuMs (/proc/<pid>/schedstat). */
export function procMainThreadCpuMs(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/schedstat`, "utf8").split(" ")[0]) / 1e6;
}

/**
 * Time (ms) the main thread spent runnable but waiting for a CPU (/proc/<pid>/schedstat, second
 * field): on a machine with fewer cores than busy processes, the delay the scheduler adds to a
 * process's event loop, which no change to its code removes.
 */
export function procMainThreadWaitMs(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/schedstat`, "utf8").split(" ")[1]) / 1e6;
}

/** /proc/<pid>/stat, parsed as the node's runner parses it; throws when the process is gone. */
function procStat(pid: number | "self"): ProcStat {
  const stat = readProcStat(pid === "self" ? process.pid : pid);
  if (!stat) throw new Error(`no /proc/${pid}/stat`);
  return stat;
}

/** Clock ticks (utime, cutime …) to milliseconds. */
const ticksToMs = (ticks: number): number => (ticks * 1000) / clockTicks();

/**
 * Page faults of a process so far (/proc/<pid>/stat): minor, and major (the page had to be read
 * back, e.g. code the kernel paged out while the process was idle), summed over its threads.
 */
export function procFaults(pid: number): { minor: number; major: number } {
  const { minflt, majflt } = procStat(pid);
  return { minor: minflt, major: majflt };
}

/** The machine's CPU counters (/proc/stat, all cores): busy and total, in clock ticks. */
export function machineCpuTicks(): { busy: number; total: number } {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  // idle and iowait are the only fields in which no core did work.
  return { busy: total - f[3]! - f[4]!, total };
}

/**
 * CPU time (ms) of the children a process has waited for (cutime + cstime in /proc/<pid>/stat):
 * a node's job supervisors and their jobs, a worker's spawned commands.
 */
export function procChildrenCpuMs(pid: number | "self"): number {
  const { cutime, cstime } = procStat(pid);
  return ticksToMs(cutime + cstime);
}

/**
 * CPU time (ms) of the job supervisor daemons under `scratchPath` (one per node, started at its
 * first job) with the jobs they have reaped: every job's processes are the daemon's children, not
 * the node's.
 */
export function supervisorDaemonsCpuMs(scratchPath: string): number {
  const { own, jobs } = supervisorDaemonsCpu(scratchPath);
  return own + jobs;
}

/**
 * The same, split: the daemons' own CPU (utime + stime: the event loop, `posix_spawn`, recording
 * exits) and the jobs they reaped (cutime + cstime: `sh -c true` itself), in ms.
 */
export function supervisorDaemonsCpu(scratchPath: string): { own: number; jobs: number } {
  let own = 0;
  let jobs = 0;
  for (const pid of pidsMatching((c) => c.includes("supervisor-") && c.includes(scratchPath))) {
    const stat = readProcStat(pid);
    if (!stat) continue; // gone meanwhile
    own += ticksToMs(stat.utime + stat.stime);
    jobs += ticksToMs(stat.cutime + stat.cstime);
  }
  return { own, jobs };
}

/** Pids of the processes whose command line (NUL-separated) passes `test`. */
export function pidsMatching(test: (cmdline: string) => boolean): number[] {
  const out: number[] = [];
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      if (test(readFileSync(`/proc/${pid}/cmdline`, "utf8"))) out.push(Number(pid));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** `some` CPU pressure (share of time runnable tasks waited for a CPU), averaged over 10 s and 60 s. */
export function cpuPressure(): string {
  try {
    const line = readFileSync("/proc/pressure/cpu", "utf8").split("\n")[0] ?? "";
    const avg10 = /avg10=([\d.]+)/.exec(line)?.[1] ?? "?";
    const avg60 = /avg60=([\d.]+)/.exec(line)?.[1] ?? "?";
    return `CPU pressure (PSI some) avg10 ${avg10}%, avg60 ${avg60}%`;
  } catch {
    return "CPU pressure: n/a";
  }
}

export const execFileP = promisify(execFile);

/** Sends SIGTERM (then SIGKILL) to a child we started and waits for it to exit. */
export async function stopProcess(proc: ChildProcess, timeoutMs = 5_000): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((r) => proc.once("exit", () => r()));
  proc.kill("SIGTERM");
  const t = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  await exited;
  clearTimeout(t);
}

// ---------------------------------------------------------------------------------------------
// Redis

export interface BenchRedis {
  url: string;
  port: number;
  pid: number;
  /** A plain connection, closed with the stack. */
  connect(name: string, opts?: { autoPipelining?: boolean }): Promise<Redis>;
  info(section: string): Promise<Record<string, string>>;
}

export function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\r\n")) {
    const i = line.indexOf(":");
    if (i > 0 && !line.startsWith("#")) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

/** A private redis-server on a free port, without persistence (no RDB, no AOF). */
export async function startRedis(stack: Stack): Promise<BenchRedis> {
  const port = await topology.freePort();
  const dir = scratchDir(stack, "redis");
  const server = await topology.startPrivateRedis({ dir, port, persistence: false });
  stack.defer("stop redis-server", () => server.stop());
  const url = `redis://127.0.0.1:${port}`;
  const connections: Redis[] = [];
  stack.defer("close redis connections", () => {
    for (const c of connections) c.disconnect();
  });
  const connect = async (name: string, opts: { autoPipelining?: boolean } = {}) => {
    const c = new Redis(url, {
      connectionName: name,
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      enableAutoPipelining: opts.autoPipelining ?? false,
    });
    c.on("error", () => undefined);
    connections.push(c);
    await c.connect();
    return c;
  };
  const admin = await until(
    "redis-server to answer",
    async () => {
      if (server.pid === undefined) throw new Error("redis-server exited");
      try {
        return await connect("bench-admin");
      } catch {
        return undefined;
      }
    },
    10_000,
    50,
  );
  return {
    url,
    port,
    pid: server.pid!,
    connect,
    info: async (section) => parseInfo(await admin.info(section)),
  };
}

/** Redis's own accounting at one moment: CPU seconds used, commands processed, per-command stats. */
export interface RedisSnapshot {
  at: number;
  cpuSec: number;
  commands: number;
  cmd: Record<string, { calls: number; usec: number }>;
}

export async function redisSnapshot(redis: BenchRedis): Promise<RedisSnapshot> {
  const [cpu, stats, cmds] = await Promise.all([
    redis.info("cpu"),
    redis.info("stats"),
    redis.info("commandstats"),
  ]);
  const cmd: RedisSnapshot["cmd"] = {};
  for (const [k, v] of Object.entries(cmds)) {
    if (!k.startsWith("cmdstat_")) continue;
    cmd[k.slice(8)] = {
      calls: Number(/calls=(\d+)/.exec(v)?.[1] ?? 0),
      usec: Number(/usec=(\d+)/.exec(v)?.[1] ?? 0),
    };
  }
  return {
    at: now(),
    cpuSec: Number(cpu.used_cpu_sys) + Number(cpu.used_cpu_user),
    commands: Number(stats.total_commands_processed),
    cmd,
  };
}

/** `redis-benchmark -q` output: "SET: 81234.56 requests per second, p50=…". */
export function parseBenchmark(out: string): Record<string, number> {
  const res: Record<string, number> = {};
  for (const line of out.split(/[\r\n]+/)) {
    const m = /^\s*(.+?): ([\d.]+) requests per second/.exec(line);
    if (m) res[m[1]!] = Number(m[2]);
  }
  return res;
}

export interface RedisBenchmark {
  /** Requests per second per test ("SET", "PING_MBULK", or the command line for a custom command). */
  rates: Record<string, number>;
  /**
   * Redis CPU per request during the run (INFO cpu over every request sent), in µs: the capacity of
   * the one Redis core in these requests is 1e6 / this, whatever redis-benchmark's own clients cost.
   */
  cpuUsPerRequest: number;
}

/**
 * The Redis baseline: `redis-benchmark -q` (50 clients, no pipelining, like one connection per
 * node) against the bench's Redis, `requests` per test; `args` are the tests (`-t set,ping`) or
 * one custom command.
 */
export async function redisBenchmark(
  redis: BenchRedis,
  requests: number,
  args: string[],
  tests = 1,
): Promise<RedisBenchmark> {
  const cpu0 = await redis.info("cpu");
  const c0 = Number(cpu0.used_cpu_sys) + Number(cpu0.used_cpu_user);
  const { stdout } = await execFileP("redis-benchmark", [
    ...["-h", "127.0.0.1", "-p", String(redis.port), "-q", "-n", String(requests)],
    ...args,
  ]);
  const cpu = await redis.info("cpu");
  const c1 = Number(cpu.used_cpu_sys) + Number(cpu.used_cpu_user);
  return { rates: parseBenchmark(stdout), cpuUsPerRequest: ((c1 - c0) * 1e6) / (requests * tests) };
}

export interface RedisDelta {
  /** Redis CPU seconds per wall second (1 = one core: all a single-threaded Redis has). */
  cpuShare: number;
  /** Commands per second, counting those run inside scripts. */
  opsPerSec: number;
  /** Calls per second and microseconds per call of one command (e.g. "evalsha", "zrange"). */
  command(name: string): { perSec: number; usecPerCall: number };
  /** Calls of every command in the window (commands run inside scripts count too). */
  calls: Record<string, number>;
  /** Redis CPU seconds used in the window. */
  cpuSec: number;
}

export function redisDelta(a: RedisSnapshot, b: RedisSnapshot): RedisDelta {
  const sec = (b.at - a.at) / 1000;
  const calls: Record<string, number> = {};
  for (const [name, y] of Object.entries(b.cmd)) {
    const d = y.calls - (a.cmd[name]?.calls ?? 0);
    if (d > 0) calls[name] = d;
  }
  return {
    calls,
    cpuSec: b.cpuSec - a.cpuSec,
    cpuShare: (b.cpuSec - a.cpuSec) / sec,
    opsPerSec: (b.commands - a.commands) / sec,
    command: (name) => {
      const x = a.cmd[name] ?? { calls: 0, usec: 0 };
      const y = b.cmd[name] ?? { calls: 0, usec: 0 };
      const calls = y.calls - x.calls;
      return { perSec: calls / sec, usecPerCall: calls ? (y.usec - x.usec) / calls : Number.NaN };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Fleets of child-process nodes (src/topology's startLocalFleet)

export interface FleetOptions {
  nodes: number;
  haproxy: boolean;
  redisUrl: string;
  prefix?: string;
  env?: Record<string, string>;
}

export async function startFleet(
  stack: Stack,
  ctx: Ctx,
  opts: FleetOptions,
): Promise<LocalFleet & { scratchPath: string }> {
  const scratchPath = scratchDir(stack, "fleet");
  const fleet = await topology.startLocalFleet({
    nodes: opts.nodes,
    basePort: await topology.findFreePortRange(opts.nodes),
    lbPort: await topology.freePort(),
    redisUrl: opts.redisUrl,
    scratchPath,
    haproxy: opts.haproxy,
    env: {
      LAUNCHER_KEY_PREFIX: opts.prefix ?? "bench",
      LAUNCHER_LOG_LEVEL: "warn",
      LAUNCHER_DRAIN_MS: "0",
      // Optional CPU profiles of the nodes over a window the measure chooses (bench/cpu-profile.cjs).
      ...profilerOptions(),
      ...opts.env,
    },
    nodeFlags: benchNodeFlags(),
    log: ctx.verbose ? (l) => ctx.log(`  fleet: ${l}`) : () => {},
    readyTimeoutMs: 60_000,
  });
  stack.defer("stop fleet", () => fleet.stop());
  return Object.assign(fleet, { scratchPath });
}

function profilerOptions(): Record<string, string> {
  const profile = process.env.BENCH_PROFILE_DIR;
  if (!profile) return {};
  return { BENCH_PROFILE_DIR: profile, NODE_OPTIONS: `--require ${join(ROOT, "bench", "cpu-profile.cjs")}` };
}

/**
 * BENCH_NODE_OPTIONS, when set, replaces the nodes' Node.js flags (NODE_FLAGS in
 * src/topology/node-command.ts), to measure another V8 setting against them in the same way:
 * `--max-semi-space-size=16` is V8's own young generation, an empty value Node's defaults.
 */
function benchNodeFlags(): string[] | undefined {
  const flags = process.env.BENCH_NODE_OPTIONS;
  return flags === undefined ? undefined : flags.split(/\s+/).filter(Boolean);
}

/** The flags the bench's nodes run with, as printed in its header. */
export function nodeFlagsInUse(): readonly string[] {
  return benchNodeFlags() ?? topology.NODE_FLAGS;
}

export function haproxyAvailable(): boolean {
  return haproxyPath() !== undefined;
}

/** The `haproxy` binary on PATH, if any. */
export function haproxyPath(): string | undefined {
  const dir = process.env.PATH?.split(":").find((d) => d && existsSync(join(d, "haproxy")));
  return dir && join(dir, "haproxy");
}

// ---------------------------------------------------------------------------------------------
// HTTP (undici, keep-alive)

export interface JsonAnswer<T> {
  status: number;
  body: T;
}

export class Http {
  readonly pool: Pool;

  constructor(
    readonly origin: string,
    private readonly token: string,
    stack: Stack,
    connections = 4,
  ) {
    this.pool = new Pool(origin, { connections, keepAliveTimeout: 60_000, pipelining: 1 });
    stack.defer(`close pool ${origin}`, () => this.pool.destroy());
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { authorization: `Bearer ${this.token}`, ...extra };
  }

  async json<T = Record<string, unknown>>(
    method: "GET" | "POST",
    path: string,
    body?: unknown,
  ): Promise<JsonAnswer<T>> {
    const res = await this.pool.request({
      method,
      path,
      headers: this.headers(body === undefined ? {} : { "content-type": "application/json" }),
      body: body === undefined ? null : JSON.stringify(body),
      headersTimeout: 30_000,
      bodyTimeout: 30_000,
    });
    const text = await res.body.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {}
    return { status: res.statusCode, body: parsed as T };
  }

  /** GET that must answer 2xx; returns the body text. */
  async text(path: string): Promise<string> {
    const res = await this.pool.request({
      method: "GET",
      path,
      headers: this.headers(),
      headersTimeout: 30_000,
    });
    const text = await res.body.text();
    if (res.statusCode >= 300) throw new Error(`GET ${path}: HTTP ${res.statusCode} ${text.slice(0, 200)}`);
    return text;
  }

  /**
   * Follows an NDJSON stream, calling `onLine` with each parsed message (and its arrival time)
   * until the stream ends or `signal` aborts. Resolves once the headers arrived; `done` settles
   * when the stream is over.
   */
  async stream(
    path: string,
    onLine: (msg: Record<string, unknown>, atMono: number) => void,
    signal: AbortSignal,
  ): Promise<{ status: number; done: Promise<void> }> {
    const res = await this.pool.request({
      method: "GET",
      path,
      headers: this.headers(),
      signal,
      headersTimeout: 30_000,
      bodyTimeout: 0,
    });
    if (res.statusCode !== 200) {
      const text = await res.body.text();
      throw new Error(`GET ${path}: HTTP ${res.statusCode} ${text.slice(0, 200)}`);
    }
    const done = (async () => {
      let buf = "";
      try {
        for await (const chunk of res.body) {
          const at = monoMs();
          buf += (chunk as Buffer).toString("utf8");
          let nl = buf.indexOf("\n");
          while (nl >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            nl = buf.indexOf("\n");
            if (line.trim()) onLine(JSON.parse(line) as Record<string, unknown>, at);
          }
        }
      } catch (err) {
        if (!signal.aborted) throw err;
      }
    })();
    return { status: res.statusCode, done };
  }
}

const TERMINAL: ReadonlySet<string> = new Set(TERMINAL_STATUSES);

/**
 * Follows the `*` status stream of the node at `url` until `stack` closes: the returned map gets
 * each job's first terminal status's arrival time (monoMs), and `onEnd` sees that message.
 */
export async function watchTerminalStatuses(
  stack: Stack,
  url: string,
  token: string,
  onEnd: (msg: Record<string, unknown> & { id: string }) => void = () => {},
): Promise<Map<string, number>> {
  const ends = new Map<string, number>();
  const abort = new AbortController();
  stack.defer("close a status stream", () => abort.abort());
  await new Http(url, token, stack, 1).stream(
    "/jobs/*/status",
    (msg, at) => {
      if (typeof msg.id === "string" && TERMINAL.has(String(msg.status)) && !ends.has(msg.id)) {
        ends.set(msg.id, at);
        onEnd(msg as Record<string, unknown> & { id: string });
      }
    },
    abort.signal,
  );
  return ends;
}

export interface SubmittedJob {
  id: string;
  status: string;
  pid?: number;
}

export async function submit(http: Http, job: Record<string, unknown>): Promise<SubmittedJob> {
  const res = await http.json<SubmittedJob>("POST", "/jobs", job);
  if (res.status !== 201)
    throw new Error(`POST /jobs on ${http.origin}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** Kills jobs through the API (they outlive their node otherwise), ignoring those already over. */
export async function killJobs(http: Http, ids: readonly string[]): Promise<void> {
  for (let i = 0; i < ids.length; i += 20) {
    await Promise.all(
      ids
        .slice(i, i + 20)
        .map((id) => http.json("POST", `/jobs/${id}/control`, { operation: "kill" }).catch(() => undefined)),
    );
  }
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, i: number) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
