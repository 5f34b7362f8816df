// The compose topology from real processes, for the failover suite: Redis (standalone with AOF, or
// a Sentinel set), N nodes (`node dist/cli.js node`, each in its own network namespace on a shared
// bridge, so that one can be cut off), and HAProxy with ops/haproxy.cfg rendered for these
// addresses. src/topology's startLocalFleet() runs nodes on loopback addresses of this namespace,
// which cannot be cut off one by one, so this composes the same building blocks differently.
import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Redis } from "ioredis";
import { signToken } from "../../../src/http/auth.js";
import { type RunningHaproxy, startHaproxy } from "../../../src/topology/haproxy.js";
import { CLI_PATH, findOnPath } from "../../../src/topology/paths.js";
import { freePort } from "../../../src/topology/ports.js";
import {
  type Child,
  describeExit,
  type ExitInfo,
  spawnLogged,
  stopChild,
  tailFile,
} from "../../../src/topology/process.js";
import { isReady, waitFor } from "../../../src/topology/readiness.js";
import { FleetNetwork } from "./netns.js";
import { type FleetRedis, type SentinelRedis, startSentinelRedis, startStandaloneRedis } from "./redis.js";

export const NODE_PORT = 5559;
const EXIT_SIGNALS = ["SIGINT", "SIGTERM"] as const;
export const ADMIN_GROUP = "launcher-admins";

export interface NetnsFleetOptions {
  nodes: number;
  redis: "standalone" | "sentinel";
  /** Scratch directory: node state, job output, Redis data, logs/. */
  dir: string;
  /** Node settings (timings, key prefix, log level). */
  env: Record<string, string>;
  log?: (line: string) => void;
}

interface Slot {
  id: string;
  ns: string;
  ip: string;
  url: string;
  logFile: string;
  child?: Child;
}

/** This process's environment without LAUNCHER_* variables: the fleet is defined by its options. */
function baseEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("LAUNCHER_")));
}

export class NetnsFleet {
  readonly secret = randomBytes(32).toString("hex");
  readonly keyPrefix: string;
  private haproxy: RunningHaproxy | undefined;
  private stopped: Promise<void> | undefined;
  /** A signal that would end this process without "exit" handlers (vitest stopping a worker). */
  private readonly exitOnSignal = (signal: NodeJS.Signals) => {
    process.exit(signal === "SIGINT" ? 130 : 143);
  };
  /** Children run in their own process groups: if this process dies without stop(), end them. */
  private readonly killOnExit = () => {
    const pids = [...this.slots.map((s) => s.child?.pid), this.haproxy?.pid, ...this.redis.pids()];
    for (const pid of pids) {
      try {
        if (pid !== undefined) process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  };

  private constructor(
    readonly net: FleetNetwork,
    readonly redis: FleetRedis | SentinelRedis,
    private readonly slots: Slot[],
    private readonly opts: NetnsFleetOptions,
  ) {
    this.keyPrefix = opts.env.LAUNCHER_KEY_PREFIX ?? "launcher";
  }

  static async start(opts: NetnsFleetOptions): Promise<NetnsFleet> {
    const haproxyBinary = findOnPath("haproxy");
    if (!haproxyBinary) throw new Error("haproxy is not on PATH (apt-get install haproxy)");
    const logsDir = join(opts.dir, "logs");
    mkdirSync(logsDir, { recursive: true });
    const net = FleetNetwork.create(opts.nodes);
    const env = baseEnv();
    let redis: FleetRedis | SentinelRedis | undefined;
    let fleet: NetnsFleet | undefined;
    try {
      const keyPrefix = opts.env.LAUNCHER_KEY_PREFIX ?? "launcher";
      const redisOpts = { dir: opts.dir, logsDir, hostIp: net.hostIp, env, keyPrefix };
      redis =
        opts.redis === "sentinel"
          ? await startSentinelRedis(redisOpts)
          : await startStandaloneRedis(redisOpts);
      const slots = Array.from({ length: opts.nodes }, (_, i): Slot => {
        const { ns, ip } = net.node(i);
        const id = `node-${i + 1}`;
        return { id, ns, ip, url: `http://${ip}:${NODE_PORT}`, logFile: join(logsDir, `${id}.log`) };
      });
      fleet = new NetnsFleet(net, redis, slots, opts);
      process.on("exit", fleet.killOnExit);
      for (const sig of EXIT_SIGNALS) process.once(sig, fleet.exitOnSignal);
      await Promise.all(slots.map((_, i) => fleet!.startNode(i)));
      fleet.haproxy = await startHaproxy({
        binary: haproxyBinary,
        host: "127.0.0.1",
        port: await freePort(),
        statsPort: await freePort(),
        servers: slots.map((s) => ({ name: s.id, address: `${s.ip}:${NODE_PORT}` })),
        configFile: join(opts.dir, "haproxy.cfg"),
        logFile: join(logsDir, "haproxy.log"),
        env,
      });
      return fleet;
    } catch (err) {
      if (fleet) await fleet.stop().catch(() => undefined);
      else {
        await redis?.stop().catch(() => undefined);
        net.destroy();
      }
      throw err;
    }
  }

  get lbUrl(): string {
    return this.haproxy!.url;
  }

  get statsUrl(): string {
    return this.haproxy!.statsUrl;
  }

  get nodeIds(): string[] {
    return this.slots.map((s) => s.id);
  }

  nodeUrl(i: number): string {
    return this.slot(i).url;
  }

  nodePid(i: number): number | undefined {
    const c = this.slot(i).child;
    return c && !c.hasExited() ? c.pid : undefined;
  }

  logFile(i: number): string {
    return this.slot(i).logFile;
  }

  adminToken(user: string): Promise<string> {
    return signToken(this.secret, { user, groups: [ADMIN_GROUP], ttl: "4h" });
  }

  /** A client of the fleet's Redis for checks (XRANGE of the events, job owners). */
  redisClient(): Redis {
    return this.redis.client();
  }

  private slot(i: number): Slot {
    const s = this.slots[i];
    if (!s) throw new Error(`no node ${i}`);
    return s;
  }

  private nodeEnv(slot: Slot): NodeJS.ProcessEnv {
    return {
      ...baseEnv(),
      ...this.redis.nodeEnv,
      LAUNCHER_AUTH_SECRET: this.secret,
      LAUNCHER_UNPRIVILEGED: "1",
      LAUNCHER_SCRATCH_PATH: this.opts.dir,
      ...this.opts.env,
      LAUNCHER_NODE_ID: slot.id,
      LAUNCHER_HOST: slot.ip,
      LAUNCHER_PORT: String(NODE_PORT),
      LAUNCHER_ADVERTISE_IP: slot.ip,
    };
  }

  /** Starts node i (in its namespace, same id, address and scratch path) and waits for /readyz. */
  async startNode(i: number): Promise<void> {
    const slot = this.slot(i);
    if (slot.child && !slot.child.hasExited()) throw new Error(`${slot.id} is already running`);
    const started = Date.now();
    // `ip netns exec` enters the namespace and execs: the child's pid is the node's.
    const child = spawnLogged("ip", ["netns", "exec", slot.ns, process.execPath, CLI_PATH, "node"], {
      env: this.nodeEnv(slot),
      logFile: slot.logFile,
    });
    slot.child = child;
    await waitFor(`${slot.id} at ${slot.url}/readyz`, () => isReady(`${slot.url}/readyz`), {
      timeoutMs: 60_000,
      failure: () => (child.hasExited() ? `exited during startup:\n${tailFile(slot.logFile)}` : undefined),
    });
    this.opts.log?.(`${slot.id}: ready in ${Date.now() - started} ms`);
  }

  /** Signals node i and waits for it to exit (SIGTERM drains first). */
  async stopNode(i: number, signal: NodeJS.Signals): Promise<ExitInfo> {
    const slot = this.slot(i);
    if (!slot.child) return { code: null, signal: null };
    const drainMs = Number(this.opts.env.LAUNCHER_DRAIN_MS ?? 3_000);
    const exit = await stopChild(slot.child, signal, signal === "SIGTERM" ? drainMs + 15_000 : 10_000);
    this.opts.log?.(`${slot.id}: ${signal} -> ${describeExit(exit)}`);
    return exit;
  }

  nodeReady(i: number): Promise<boolean> {
    return isReady(`${this.slot(i).url}/readyz`);
  }

  /** Stops everything (nodes drain); idempotent, and every step runs even if one fails. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      const results: PromiseSettledResult<unknown>[] = await Promise.allSettled(
        this.slots.map((_, i) => this.stopNode(i, "SIGTERM")),
      );
      results.push(...(await Promise.allSettled([this.haproxy?.stop(), this.redis.stop()])));
      process.off("exit", this.killOnExit);
      for (const sig of EXIT_SIGNALS) process.off(sig, this.exitOnSignal);
      this.net.destroy();
      const failed = results.find((r) => r.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;
    })();
    return this.stopped;
  }
}
