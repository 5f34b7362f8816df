// The compose topology (Redis, N nodes, HAProxy) from real processes on this machine: what
// `npm run fleet` runs, and what the topology and failover test suites start.
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { join, resolve } from "node:path";
import { SETTING_ENV_NAMES, SETTINGS } from "../config.js";
import { signToken, type TokenOptions } from "../http/auth.js";
import { type RunningHaproxy, startHaproxy } from "./haproxy.js";
import { nodeArgs } from "./node-command.js";
import { CLI_PATH, findOnPath } from "./paths.js";
import { freePort, isPortFree } from "./ports.js";
import { type Child, describeExit, type ExitInfo, spawnLogged, stopChild, tailFile } from "./process.js";
import { isReady, redisPing, waitFor } from "./readiness.js";
import { type PrivateRedis, startPrivateRedis } from "./redis.js";

export interface LocalFleetOptions {
  /** Number of nodes (default 3), with ids node-1, node-2, ... */
  nodes?: number;
  /** Node i (0-based) listens on basePort + i (default 5559). */
  basePort?: number;
  /** HAProxy's frontend port on 127.0.0.1 (default 8080). */
  lbPort?: number;
  /** An existing Redis; without it a private redis-server (AOF on) runs in <scratch>/fleet/redis. */
  redisUrl?: string;
  /** LAUNCHER_AUTH_SECRET of every node; generated when not given. */
  secret?: string;
  /** Shared LAUNCHER_SCRATCH_PATH (default ./.launcher-scratch); fleet files go to <scratch>/fleet. */
  scratchPath?: string;
  /** Run HAProxy in front (default: when `haproxy` is on PATH). true fails if it is missing. */
  haproxy?: boolean;
  /** Listen and advertise address per node (default 127.0.0.1 for all), e.g. 127.0.0.2, 127.0.0.3. */
  nodeIps?: string[];
  /** Extra node settings (LAUNCHER_KEY_PREFIX, LAUNCHER_DRAIN_MS...). Identity settings are fixed. */
  env?: Record<string, string>;
  /** Progress lines for a person watching. */
  log?: (line: string) => void;
  /** How long a node may take to report ready (default 60 s). */
  readyTimeoutMs?: number;
  /**
   * Watch the fleet (what `npm run fleet` does): a node that crashes is reported and started again
   * after a back-off (1 s, doubling to 30 s; reset once it has run for a minute), a node that exits
   * 0 on its own (drained through the API) is reported and left stopped; the private redis-server is
   * reported and started again when it dies, an external Redis reported when it stops and starts
   * answering. Off by default: tests kill nodes and Redis on purpose.
   */
  supervise?: boolean;
  /**
   * Without `secret`: keep the generated secret in `<scratch>/fleet/auth-secret` (mode 0600) and use
   * it again at the next start, so tokens minted for this fleet stay valid across restarts.
   */
  persistSecret?: boolean;
  /** The nodes' Node.js flags, in place of NODE_FLAGS (src/topology/node-command.ts); [] for Node's defaults. */
  nodeFlags?: readonly string[];
}

export interface FleetNode {
  /** LAUNCHER_NODE_ID: node-1, node-2, ... */
  readonly id: string;
  readonly url: string;
  readonly ip: string;
  readonly port: number;
  /** The running process, or undefined while the node is stopped. */
  readonly pid: number | undefined;
  /** Its pino JSON log (appended across restarts). */
  readonly logFile: string;
}

export interface LocalFleet {
  readonly redisUrl: string;
  readonly secret: string;
  /** The private redis-server's pid while it runs (undefined with an external Redis). */
  readonly redisPid: number | undefined;
  /** The file holding `secret` (with `persistSecret`), and whether this start created it. */
  readonly secretFile?: { path: string; created: boolean };
  readonly scratchPath: string;
  /** HAProxy's URL when it runs. */
  readonly lbUrl?: string;
  /** HAProxy's stats page (CSV at `<statsUrl>;csv`) when it runs. */
  readonly lbStatsUrl?: string;
  readonly nodes: readonly FleetNode[];
  /** A token of the admin group for the current OS user (default lifetime 12 h). */
  adminToken(ttl?: string): Promise<string>;
  /** Any token signed with the fleet's secret. */
  token(opts: TokenOptions): Promise<string>;
  /** Signals node i (0-based) and waits for it to exit; SIGTERM drains first. */
  stopNode(i: number, signal?: NodeJS.Signals): Promise<ExitInfo>;
  /** Starts node i again with the same id, address and settings, and waits until it is ready. */
  startNode(i: number): Promise<void>;
  /** Restarts the private redis-server (same port and data). Fails when `redisUrl` was given. */
  restartRedis(signal?: NodeJS.Signals): Promise<void>;
  /** Stops everything (nodes drain), idempotent; every step runs even if one fails. */
  stop(): Promise<void>;
}

interface Slot {
  id: string;
  ip: string;
  port: number;
  url: string;
  logFile: string;
  child?: Child;
  /** Set while we stop it on purpose, so its exit is not reported as a crash. */
  stopping: boolean;
  /** Crash restarts in a row (for the back-off), and the pending one. */
  restarts: number;
  restartTimer?: NodeJS.Timeout;
}

/** Back-off before restarting a crashed node: 1 s, 2 s, 4 s, ... at most 30 s. */
export function restartDelayMs(restartsInARow: number): number {
  return Math.min(1_000 * 2 ** restartsInARow, 30_000);
}
/** A node that ran this long before crashing starts its back-off again from 1 s. */
const STABLE_AFTER_MS = 60_000;

/** The URL with its password hidden, for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (!u.password) return url;
    u.password = "***";
    return u.toString().replace(/\/$/, "");
  } catch {
    return url;
  }
}

/**
 * The fleet's secret from `file`, or a new one written there (mode 0600). A file readable by others
 * is made private again (said in the log); one holding less than 32 bytes is refused.
 */
function persistentSecret(file: string, log: (line: string) => void): { secret: string; created: boolean } {
  if (existsSync(file)) {
    const mode = statSync(file).mode & 0o777;
    if (mode & 0o077) {
      chmodSync(file, 0o600);
      log(`secret: ${file} was readable by others (mode ${mode.toString(8)}): now 0600`);
    }
    const secret = readFileSync(file, "utf8").replace(/\r?\n$/, "");
    if (Buffer.byteLength(secret) < 32)
      throw new Error(
        `${file}: the fleet's secret must be at least 32 bytes (delete the file for a new one)`,
      );
    return { secret, created: false };
  }
  const secret = randomBytes(32).toString("hex");
  writeFileSync(file, `${secret}\n`, { mode: 0o600, flag: "wx" });
  return { secret, created: true };
}

/** The node identity that the fleet sets itself; `opts.env` cannot override these. */
const IDENTITY: readonly string[] = [SETTINGS.nodeId, SETTINGS.port, SETTINGS.host, SETTINGS.advertiseIp].map(
  (s) => s.env,
);
/** Every node setting's variable name (the `_FILE` forms included), from the settings table. */
export const NODE_SETTING_VARS = SETTING_ENV_NAMES;

/**
 * The environment children inherit: this process's, without LAUNCHER_* variables, so a fleet is
 * defined by its options alone (a developer's LAUNCHER_REDIS_SENTINELS cannot leak into a test).
 */
function baseEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("LAUNCHER_")));
}

function nodeSlots(count: number, basePort: number, ips: string[] | undefined, logsDir: string): Slot[] {
  if (ips && ips.length < count) throw new Error(`nodeIps has ${ips.length} addresses for ${count} nodes`);
  return Array.from({ length: count }, (_, i) => {
    const id = `node-${i + 1}`;
    const ip = ips?.[i] ?? "127.0.0.1";
    const port = basePort + i;
    return {
      id,
      ip,
      port,
      url: `http://${ip}:${port}`,
      logFile: join(logsDir, `${id}.log`),
      stopping: false,
      restarts: 0,
    };
  });
}

async function assertPortsFree(ports: { host: string; port: number; what: string }[]): Promise<void> {
  for (const p of ports) {
    if (!(await isPortFree(p.port, p.host))) {
      throw new Error(`${p.what}: port ${p.port} on ${p.host} is in use (choose other ports)`);
    }
  }
}

function resolveHaproxy(wanted: boolean | undefined): string | undefined {
  if (wanted === false) return undefined;
  const binary = findOnPath("haproxy");
  if (wanted === true && !binary) throw new Error("haproxy is not on PATH (apt-get install haproxy)");
  return binary;
}

export async function startLocalFleet(opts: LocalFleetOptions = {}): Promise<LocalFleet> {
  const log = opts.log ?? (() => {});
  const scratchPath = resolve(opts.scratchPath ?? ".launcher-scratch");
  const fleetDir = join(scratchPath, "fleet");
  const logsDir = join(fleetDir, "logs");
  mkdirSync(logsDir, { recursive: true });
  if (!existsSync(CLI_PATH)) throw new Error(`${CLI_PATH} is missing: run \`npm run build\` first`);

  const slots = nodeSlots(opts.nodes ?? 3, opts.basePort ?? 5559, opts.nodeIps, logsDir);
  const lbPort = opts.lbPort ?? 8080;
  const haproxyBinary = resolveHaproxy(opts.haproxy);
  await assertPortsFree([
    ...slots.map((s) => ({ host: s.ip, port: s.port, what: s.id })),
    ...(haproxyBinary ? [{ host: "127.0.0.1", port: lbPort, what: "HAProxy" }] : []),
  ]);

  const env = baseEnv();
  const drainMs = Number(opts.env?.[SETTINGS.drainMs.env] ?? SETTINGS.drainMs.default);
  const alarm = (line: string) => log(`*** ${line}`);
  const supervise = opts.supervise === true;
  let secretFile: LocalFleet["secretFile"];
  let secret = opts.secret;
  if (secret === undefined && opts.persistSecret) {
    const path = join(fleetDir, "auth-secret");
    const kept = persistentSecret(path, log);
    secret = kept.secret;
    secretFile = { path, created: kept.created };
    log(`secret: ${kept.created ? "new, saved in" : "the one kept in"} ${path} (mode 0600)`);
  }
  secret ??= randomBytes(32).toString("hex");
  const adminGroup = opts.env?.[SETTINGS.adminGroup.env] ?? SETTINGS.adminGroup.default;
  let redis: PrivateRedis | undefined;
  let haproxy: RunningHaproxy | undefined;
  let redisUrl = opts.redisUrl;

  const nodeEnv = (slot: Slot): NodeJS.ProcessEnv => {
    const extra = Object.fromEntries(Object.entries(opts.env ?? {}).filter(([k]) => !IDENTITY.includes(k)));
    return {
      ...env,
      [SETTINGS.redisUrl.env]: redisUrl,
      [SETTINGS.authSecret.env]: secret,
      [SETTINGS.scratchPath.env]: scratchPath,
      // A development fleet: every job runs as whoever started it (one trust domain). A multi-user
      // host runs its nodes as root without this, so each job runs as its own user.
      [SETTINGS.unprivileged.env]: "1",
      ...extra,
      [SETTINGS.nodeId.env]: slot.id,
      [SETTINGS.port.env]: String(slot.port),
      [SETTINGS.host.env]: slot.ip,
      [SETTINGS.advertiseIp.env]: slot.ip,
    };
  };

  const launchNode = async (slot: Slot): Promise<void> => {
    if (slot.child && !slot.child.hasExited()) throw new Error(`${slot.id} is already running`);
    const started = Date.now();
    log(`${slot.id}: starting on ${slot.url} (log: ${slot.logFile})`);
    const child = spawnLogged(process.execPath, nodeArgs(opts.nodeFlags), {
      env: nodeEnv(slot),
      logFile: slot.logFile,
    });
    slot.child = child;
    slot.stopping = false;
    void child.exited.then((exit) => {
      if (slot.stopping || slot.child !== child) return;
      if (!supervise) {
        log(`${slot.id}: exited unexpectedly (${describeExit(exit)})`);
        return;
      }
      if (stopped) return;
      if (exit.code === 0) {
        // A node exits 0 by itself only when drained through the API (POST /nodes/{id}/drain).
        alarm(`${slot.id}: exited (exit code 0, drained): not restarted; restart the fleet to bring it back`);
        return;
      }
      if (Date.now() - started > STABLE_AFTER_MS) slot.restarts = 0;
      const delay = restartDelayMs(slot.restarts);
      slot.restarts++;
      alarm(
        `${slot.id}: crashed (${describeExit(exit)}); restarting it in ${delay / 1000} s ` +
          `(restart ${slot.restarts} in a row; log: ${slot.logFile})`,
      );
      slot.restartTimer = setTimeout(() => {
        slot.restartTimer = undefined;
        if (stopped) return;
        // A failed start is reported by the exit handler of the new process, which tries again.
        launchNode(slot).catch((err: unknown) =>
          alarm(`${slot.id}: restart failed: ${(err as Error).message}`),
        );
      }, delay);
      slot.restartTimer.unref?.();
    });
    await waitFor(`${slot.id} at ${slot.url}/readyz`, () => isReady(`${slot.url}/readyz`), {
      timeoutMs: opts.readyTimeoutMs ?? 60_000,
      failure: () => (child.hasExited() ? `exited during startup:\n${tailFile(slot.logFile)}` : undefined),
    });
    log(`${slot.id}: ready (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  };

  const stopNode = async (slot: Slot, signal: NodeJS.Signals): Promise<ExitInfo> => {
    clearTimeout(slot.restartTimer);
    slot.restartTimer = undefined;
    if (!slot.child) return { code: null, signal: null };
    if (slot.child.hasExited()) return slot.child.exited;
    slot.stopping = true;
    log(`${slot.id}: ${signal}`);
    // SIGTERM drains for LAUNCHER_DRAIN_MS before closing; anything slower than that plus a margin is hung.
    const exit = await stopChild(slot.child, signal, signal === "SIGTERM" ? drainMs + 15_000 : 10_000);
    log(`${slot.id}: stopped (${describeExit(exit)})`);
    return exit;
  };

  let stopped: Promise<void> | undefined;
  let redisWatch: NodeJS.Timeout | undefined;
  /** Set while the private Redis is restarted on purpose (restartRedis) or by the watch. */
  let redisRestarting = false;
  const stopAll = async () => {
    clearInterval(redisWatch);
    const errors: unknown[] = [];
    const step = async (fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (err) {
        errors.push(err);
      }
    };
    // Nodes first, while Redis is up: a draining node records itself Draining/Offline there.
    await Promise.all(slots.map((s) => step(() => stopNode(s, "SIGTERM"))));
    if (haproxy) await step(() => haproxy!.stop());
    if (redis) await step(() => redis!.stop());
    process.off("exit", killOnExit);
    if (errors.length > 0) throw errors[0];
  };
  const stop = () => {
    stopped ??= stopAll();
    return stopped;
  };
  // If this process exits without stop() (an uncaught error, process.exit), children must not
  // outlive it: they run in their own process groups, so nothing else would signal them.
  const killOnExit = () => {
    for (const c of [...slots.map((s) => s.child), haproxy, redis]) {
      const pid = c?.pid;
      try {
        if (pid !== undefined) process.kill(pid, "SIGTERM");
      } catch {
        // already gone
      }
    }
  };
  process.on("exit", killOnExit);

  /**
   * Watches Redis while the fleet runs: the private redis-server is started again when it dies
   * (same port and data); an external one is only reported when it stops and starts answering.
   */
  function watchRedis(): NodeJS.Timeout {
    let answering = true;
    let checking = false;
    let failures = 0;
    const target = redis ? { host: "127.0.0.1", port: redis.port } : hostPortOf(redisUrl!);
    const shown = redis ? `redis-server on port ${redis.port}` : redactUrl(redisUrl!);
    /** PING: a Redis that is there but does not answer (stopped, hung, unreachable) is reported too. */
    const ping = async () => {
      if (!target) return;
      const ok = await redisPing(target.host, target.port);
      if (ok === answering) return;
      answering = ok;
      if (ok) log(`redis: ${shown} answers again`);
      else alarm(`redis: ${shown} does not answer PING: the nodes cannot serve until it does`);
    };
    const timer = setInterval(() => {
      if (checking || stopped || redisRestarting) return;
      checking = true;
      void (async () => {
        if (redis) {
          if (redis.pid !== undefined) return ping();
          answering = true;
          alarm(
            `redis: redis-server on port ${redis.port} DIED (see ${join(logsDir, "redis.log")}); ` +
              "the nodes cannot serve until it is back: starting it again (same port, same data)",
          );
          redisRestarting = true;
          try {
            // The process is gone: "restart" only starts it again (SIGKILL: no exit status to check).
            await redis.restart("SIGKILL");
            failures = 0;
            log(`redis: redis-server is back on port ${redis.port}`);
          } catch (err) {
            failures++;
            alarm(`redis: could not start redis-server again: ${(err as Error).message}`);
            await new Promise((r) => setTimeout(r, restartDelayMs(failures)));
          } finally {
            redisRestarting = false;
          }
        } else await ping();
      })().finally(() => {
        checking = false;
      });
    }, 1_000);
    timer.unref?.();
    return timer;
  }

  try {
    if (!redisUrl) {
      const port = (await isPortFree(6379)) ? 6379 : await freePort();
      log(`redis: starting redis-server on port ${port} (data: ${join(fleetDir, "redis")})`);
      redis = await startPrivateRedis({
        dir: join(fleetDir, "redis"),
        port,
        logFile: join(logsDir, "redis.log"),
        env,
      });
      redisUrl = redis.url;
    }
    await Promise.all(slots.map(launchNode));
    if (supervise) redisWatch = watchRedis();
    if (haproxyBinary) {
      log(`haproxy: starting on 127.0.0.1:${lbPort}`);
      haproxy = await startHaproxy({
        binary: haproxyBinary,
        host: "127.0.0.1",
        port: lbPort,
        statsPort: await freePort(),
        servers: slots.map((s) => ({ name: s.id, address: `${s.ip}:${s.port}` })),
        configFile: join(fleetDir, "haproxy.cfg"),
        logFile: join(logsDir, "haproxy.log"),
        env,
      });
      log(`haproxy: ready (stats: ${haproxy.statsUrl})`);
    }
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }

  const slotAt = (i: number): Slot => {
    const slot = slots[i];
    if (!slot) throw new Error(`no node ${i}: the fleet has nodes 0..${slots.length - 1}`);
    return slot;
  };
  const token = (t: TokenOptions) => signToken({ authSecret: secret }, t);
  return {
    redisUrl: redisUrl!,
    secret,
    ...(secretFile ? { secretFile } : {}),
    get redisPid() {
      return redis?.pid;
    },
    scratchPath,
    ...(haproxy ? { lbUrl: haproxy.url, lbStatsUrl: haproxy.statsUrl } : {}),
    nodes: slots.map(toFleetNode),
    token,
    adminToken: (ttl = "12h") => token({ user: userInfo().username, groups: [adminGroup], ttl }),
    stopNode: (i, signal = "SIGTERM") => stopNode(slotAt(i), signal),
    startNode: (i) => launchNode(slotAt(i)),
    restartRedis: async (signal = "SIGTERM") => {
      if (!redis) throw new Error("restartRedis: the fleet uses an external Redis (redisUrl was given)");
      log(`redis: restarting (${signal})`);
      redisRestarting = true;
      try {
        await redis.restart(signal);
      } finally {
        redisRestarting = false;
      }
    },
    stop,
  };
}

/** The read-only public view of a slot; `pid` follows restarts. */
function toFleetNode(slot: Slot): FleetNode {
  return {
    id: slot.id,
    url: slot.url,
    ip: slot.ip,
    port: slot.port,
    logFile: slot.logFile,
    get pid() {
      return slot.child && !slot.child.hasExited() ? slot.child.pid : undefined;
    },
  };
}

/** Host and port of a `redis://` URL, for PING; undefined for other schemes (TLS, unix sockets). */
function hostPortOf(url: string): { host: string; port: number } | undefined {
  try {
    const u = new URL(url);
    if (u.protocol !== "redis:") return undefined;
    return { host: u.hostname || "127.0.0.1", port: Number(u.port || 6379) };
  } catch {
    return undefined;
  }
}
