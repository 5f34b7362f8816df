// A stand-in for the Posit Job Launcher: spawns `node dist/cli.js plugin`, speaks the Plugin API
// framing on its stdin/stdout, and records every message. stdout must carry frames only: anything
// else (a log line, a broken frame) is recorded in `protocolErrors`, which tests expect empty.
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeFrame, FrameDecoder } from "../../src/plugin/framing.js";
import { FAST, TEST_SECRET } from "../helpers/nodes.js";
import { redisUrl } from "../helpers/redis.js";

// biome-ignore lint/suspicious/noExplicitAny: protocol messages are free-form JSON in tests
export type Message = Record<string, any>;

export interface PluginOptions {
  prefix: string;
  nodeId?: string;
  /** Extra command-line arguments. */
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Send the bootstrap request and wait for its answer (default true). */
  bootstrap?: boolean;
}

export interface Waiter {
  pred: (m: Message) => boolean;
  resolve: (m: Message) => void;
}

export class PluginDriver {
  readonly messages: Message[] = [];
  readonly protocolErrors: string[] = [];
  readonly nodeId: string;
  stderr = "";
  private readonly decoder = new FrameDecoder(64 * 1024 * 1024);
  private waiters: Waiter[] = [];
  private requestId = 0;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(
    readonly proc: ChildProcessWithoutNullStreams,
    nodeId: string,
  ) {
    this.nodeId = nodeId;
    proc.stdout.on("data", (chunk: Buffer) => {
      for (const event of this.decoder.push(chunk)) {
        if (event.kind !== "frame") {
          this.protocolErrors.push(`decoder: ${event.kind}`);
          continue;
        }
        let message: Message;
        try {
          message = JSON.parse(event.payload.toString("utf8")) as Message;
        } catch {
          this.protocolErrors.push(`not JSON: ${event.payload.toString("utf8").slice(0, 200)}`);
          continue;
        }
        this.messages.push(message);
        for (const w of [...this.waiters]) {
          if (w.pred(message)) {
            this.waiters = this.waiters.filter((x) => x !== w);
            w.resolve(message);
          }
        }
      }
    });
    proc.stderr.on("data", (chunk: Buffer) => {
      this.stderr += chunk.toString("utf8");
      if (process.env.LAUNCHER_TEST_LOG) process.stderr.write(chunk);
    });
    this.exited = new Promise((resolve) => proc.once("exit", (code, signal) => resolve({ code, signal })));
  }

  /** A fresh request id (1, 2, …); 0 is the heartbeat's. */
  nextId(): number {
    this.requestId += 1;
    return this.requestId;
  }

  send(message: Message): void {
    this.proc.stdin.write(encodeFrame(message, 64 * 1024 * 1024));
  }

  sendRaw(bytes: Buffer): void {
    this.proc.stdin.write(bytes);
  }

  /** The first message (already received or to come) matching `pred`, searching from `from`. */
  waitFor(
    pred: (m: Message) => boolean,
    opts: { timeoutMs?: number; from?: number; what?: string } = {},
  ): Promise<Message> {
    const found = this.messages.slice(opts.from ?? 0).find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        pred,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(
          new Error(
            `no ${opts.what ?? "matching message"} within ${opts.timeoutMs ?? 15_000} ms; stderr:\n${this.stderr.slice(-2000)}`,
          ),
        );
      }, opts.timeoutMs ?? 15_000);
      this.waiters.push(waiter);
    });
  }

  /** Sends a request (a fresh requestId unless given) and waits for the message answering it. */
  async request(message: Message, timeoutMs = 15_000): Promise<Message> {
    const requestId = (message.requestId as number | undefined) ?? this.nextId();
    const from = this.messages.length;
    this.send({ ...message, requestId });
    return this.waitFor((m) => m.requestId === requestId, {
      timeoutMs,
      from,
      what: `answer to request ${requestId}`,
    });
  }

  /** Every message of the stream opened by `requestId` (single- or multi-stream), in order. */
  streamMessages(requestId: number): Message[] {
    return this.messages.filter((m) => belongsTo(m, requestId));
  }

  /** Waits for a message of stream `requestId` matching `pred`. */
  waitForStream(requestId: number, pred: (m: Message) => boolean, timeoutMs = 15_000): Promise<Message> {
    return this.waitFor((m) => belongsTo(m, requestId) && pred(m), {
      timeoutMs,
      what: `message on stream ${requestId}`,
    });
  }

  /** Closes stdin (as the Launcher does when it stops) and waits for the exit. */
  async close(timeoutMs = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.stdin.end();
      const timer = setTimeout(() => this.proc.kill("SIGKILL"), timeoutMs);
      const result = await this.exited;
      clearTimeout(timer);
      return result;
    }
    return this.exited;
  }
}

export function belongsTo(m: Message, requestId: number): boolean {
  if (m.requestId === requestId) return true;
  return Array.isArray(m.sequences) && m.sequences.some((s: Message) => s.requestId === requestId);
}

/** The seqIds a stream received, in order. */
export function seqIds(messages: Message[], requestId: number): number[] {
  return messages.map((m) =>
    m.requestId === requestId && typeof m.seqId === "number"
      ? m.seqId
      : (m.sequences as Message[]).find((s) => s.requestId === requestId)?.seqId,
  );
}

export const BOOTSTRAP = { messageType: 1, version: { major: 3, minor: 5, patch: 0 } };

/** Starts a plugin process on the test Redis (HTTP on 127.0.0.1, any free port). */
export async function startPlugin(opts: PluginOptions): Promise<PluginDriver> {
  const nodeId = opts.nodeId ?? `plugin-${Math.random().toString(36).slice(2, 8)}`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    LAUNCHER_REDIS_URL: redisUrl(),
    LAUNCHER_KEY_PREFIX: opts.prefix,
    LAUNCHER_NODE_ID: nodeId,
    LAUNCHER_HOST: "127.0.0.1",
    LAUNCHER_PORT: "0",
    LAUNCHER_ADVERTISE_IP: "127.0.0.1",
    LAUNCHER_AUTH_SECRET: TEST_SECRET,
    LAUNCHER_UNPRIVILEGED: "1",
    LAUNCHER_SCRATCH_PATH: mkdtempSync(join(tmpdir(), "launcher-plugin-")),
    LAUNCHER_HEARTBEAT_MS: String(FAST.heartbeatMs),
    LAUNCHER_OFFLINE_AFTER_MS: String(FAST.offlineAfterMs),
    LAUNCHER_LOST_AFTER_MS: String(FAST.lostAfterMs),
    LAUNCHER_DRAIN_MS: String(FAST.drainMs),
    LAUNCHER_LOG_LEVEL: process.env.LAUNCHER_TEST_LOG ?? "warn",
    ...opts.env,
  };
  const args = [
    "dist/cli.js",
    "plugin",
    "--heartbeat-interval-seconds",
    "0",
    "--resource-poll-ms",
    "200",
    ...(opts.args ?? []),
  ];
  const proc = spawn(process.execPath, args, { env, stdio: ["pipe", "pipe", "pipe"] });
  const driver = new PluginDriver(proc, nodeId);
  if (opts.bootstrap !== false) {
    const answer = await driver.request(BOOTSTRAP, 20_000);
    if (answer.messageType !== 1)
      throw new Error(`bootstrap failed: ${JSON.stringify(answer)}\n${driver.stderr}`);
  }
  return driver;
}

/** A user request's fields. */
export function as(username: string, requestUsername = username === "*" ? "rstudio-server" : username) {
  return { username, requestUsername };
}

export { setTimeout as sleep } from "node:timers/promises";
