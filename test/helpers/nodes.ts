// Real nodes for tests: in-process (fast, port 0) or child processes (when a test must SIGKILL one).
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { loadSettings, type Settings } from "../../src/config.js";
import { signToken } from "../../src/http/auth.js";
import { type LauncherNode, startNode } from "../../src/node.js";
import { ndjsonLines } from "./ndjson.js";
import { redisUrl } from "./redis.js";
import { freePort } from "./redis-server.js";

export const TEST_SECRET = "test-secret-please-ignore-it-is-only-for-tests";
export const ADMIN_GROUP = "launcher-admins";

/** Fast timings so liveness tests take seconds, not minutes. */
export const FAST = {
  heartbeatMs: 100,
  offlineAfterMs: 500,
  lostAfterMs: 2_000,
  drainMs: 200,
} as const;

export function testSettings(prefix: string, overrides: Partial<Settings> = {}): Settings {
  // Fake user names (alice, bob): every job runs as the test's own user. Tests of the privileged
  // mode create real users and set `unprivileged: false`.
  const base = loadSettings(
    { LAUNCHER_AUTH_SECRET: TEST_SECRET, LAUNCHER_UNPRIVILEGED: "1" },
    {},
    { advertiseIp: "127.0.0.1" },
  );
  return {
    ...base,
    redisUrl: redisUrl(),
    keyPrefix: prefix,
    nodeId: `node-${Math.random().toString(36).slice(2, 8)}`,
    host: "127.0.0.1",
    port: 0,
    authSecret: TEST_SECRET,
    scratchPath: mkdtempSync(join(tmpdir(), "launcher-scratch-")),
    logLevel: "silent",
    ...FAST,
    ...overrides,
  };
}

export function token(
  user: string,
  opts: { admin?: boolean; groups?: string[]; ttl?: string } = {},
): Promise<string> {
  const groups = [...(opts.groups ?? []), ...(opts.admin ? [ADMIN_GROUP] : [])];
  return signToken(TEST_SECRET, { user, groups, ttl: opts.ttl ?? "1h" });
}

export interface TestNode {
  node: LauncherNode;
  url: string;
  settings: Settings;
  close(): Promise<void>;
}

export async function startTestNode(prefix: string, overrides: Partial<Settings> = {}): Promise<TestNode> {
  const settings = testSettings(prefix, overrides);
  const level = process.env.LAUNCHER_TEST_LOG ?? "silent";
  const node = await startNode(settings, {
    logger: pino({ level, base: { nodeId: settings.nodeId } }),
    resourcePollMs: 200,
    expiryIntervalMs: 200,
  });
  return { node, url: node.url, settings, close: () => node.close() };
}

export interface ApiResponse<T = unknown> {
  status: number;
  body: T;
}

/** One JSON request. */
export async function api<T = Record<string, unknown>>(
  base: string,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<ApiResponse<T>> {
  const res = await fetch(new URL(path, base), {
    method,
    headers: {
      ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
      ...(opts.body !== undefined ? { "content-type": "application/json" } : {}),
      ...opts.headers,
    },
    ...(opts.body !== undefined
      ? { body: typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body) }
      : {}),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {}
  return { status: res.status, body: body as T };
}

/**
 * Reads an NDJSON stream until `until` says stop (or the stream ends, or `timeoutMs` passes),
 * then closes the connection.
 */
export async function readStream<T = Record<string, unknown>>(
  base: string,
  path: string,
  opts: {
    token?: string;
    headers?: Record<string, string>;
    until?: (msg: T, all: T[]) => boolean;
    timeoutMs?: number;
    onOpen?: () => void;
  } = {},
): Promise<{ status: number; messages: T[]; ended: boolean }> {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), opts.timeoutMs ?? 10_000);
  const messages: T[] = [];
  let ended = false;
  let status = 0;
  try {
    const res = await fetch(new URL(path, base), {
      headers: { ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}), ...opts.headers },
      signal: ctrl.signal,
    });
    status = res.status;
    opts.onOpen?.();
    if (!res.ok || !res.body) {
      const text = await res.text();
      try {
        messages.push(JSON.parse(text) as T);
      } catch {}
      return { status, messages, ended: true };
    }
    ended = true;
    for await (const line of ndjsonLines(res.body)) {
      const msg = JSON.parse(line) as T;
      messages.push(msg);
      if (opts.until?.(msg, messages)) {
        ended = false;
        break;
      }
    }
  } catch (err) {
    if (!ctrl.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
    ctrl.abort();
  }
  return { status, messages, ended };
}

export async function until<T>(
  fn: () => Promise<T> | T,
  opts: { timeoutMs?: number; everyMs?: number } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, opts.everyMs ?? 25));
  }
}

export interface ChildNode {
  proc: ChildProcess;
  url: string;
  settings: Settings;
  /** Sends a signal and waits for the process to exit; resolves with its exit code or signal. */
  stop(signal?: NodeJS.Signals): Promise<number | string | null>;
  /** The node's recent log output (for error messages). */
  output(): string;
}

/**
 * A node as a real child process (`node dist/cli.js node`), for crash tests: extra environment,
 * a boot deadline suited to a busy machine, its output kept, and the process killed when it does
 * not come up.
 */
export async function startChildNode(
  settings: Settings,
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<ChildNode> {
  const port = settings.port || (await freePort());
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    LAUNCHER_REDIS_URL: settings.redisUrl,
    LAUNCHER_KEY_PREFIX: settings.keyPrefix,
    LAUNCHER_NODE_ID: settings.nodeId,
    LAUNCHER_HOST: settings.host,
    LAUNCHER_PORT: String(port),
    LAUNCHER_ADVERTISE_IP: settings.advertiseIp,
    LAUNCHER_AUTH_SECRET: settings.authSecret,
    LAUNCHER_UNPRIVILEGED: settings.unprivileged ? "1" : "0",
    LAUNCHER_SCRATCH_PATH: settings.scratchPath,
    LAUNCHER_HEARTBEAT_MS: String(settings.heartbeatMs),
    LAUNCHER_OFFLINE_AFTER_MS: String(settings.offlineAfterMs),
    LAUNCHER_LOST_AFTER_MS: String(settings.lostAfterMs),
    LAUNCHER_DRAIN_MS: String(settings.drainMs),
    LAUNCHER_EVENT_RETENTION: String(settings.eventRetention),
    LAUNCHER_LOG_LEVEL: process.env.LAUNCHER_TEST_LOG ?? "warn",
    ...opts.env,
  };
  const proc = spawn(process.execPath, ["dist/cli.js", "node"], { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-20_000);
    if (process.env.LAUNCHER_TEST_LOG) process.stderr.write(d);
  };
  proc.stdout.on("data", keep);
  proc.stderr.on("data", keep);
  const url = `http://${settings.advertiseIp}:${port}`;
  const stop = (signal: NodeJS.Signals = "SIGTERM") =>
    new Promise<number | string | null>((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null)
        return resolve(proc.exitCode ?? proc.signalCode);
      proc.once("exit", (code, sig) => resolve(code ?? sig));
      proc.kill(signal);
    });
  try {
    await until(
      async () => {
        if (proc.exitCode !== null) throw new Error(`child node exited with ${proc.exitCode}`);
        try {
          return (await fetch(`${url}/readyz`)).status === 200;
        } catch {
          return false;
        }
      },
      { timeoutMs: opts.timeoutMs ?? 40_000, everyMs: 50 },
    );
  } catch (err) {
    await stop("SIGKILL");
    throw new Error(`${(err as Error).message}; node output:\n${out}`);
  }
  return { proc, url, settings: { ...settings, port }, stop, output: () => out };
}
