// Redis for the failover fleet: a standalone redis-server with AOF (fsync always), or a Sentinel
// set (primary + replica + three sentinels, like docker-compose.sentinel.yml). Every server listens
// on 127.0.0.1 (for this process) and on the host's bridge address (for the nodes in their
// namespaces), and is a child process that can be killed and started again on the same data.
// Servers load the shipped ACL (ops/redis-acl.sh): the nodes log in as the fleet's user (its URL in
// a file, LAUNCHER_REDIS_URL_FILE), a replica as `replication`, the sentinels as `sentinel`, this
// process as `admin`; the default user is off. What Redis refused anyone is kept (ACL LOG).
import { mkdirSync, writeFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { Redis } from "ioredis";
import { freePort } from "../../../src/topology/ports.js";
import { type Child, describeExit, spawnLogged, stopChild, tailFile } from "../../../src/topology/process.js";
import { redisPing, waitFor } from "../../../src/topology/readiness.js";
import { aclRedisUrl, type FleetAcl, fleetAcl, writeAclFile } from "../../helpers/redis-acl.js";

export const MASTER_NAME = "launcher";
/** How long writes are paused on the primary for a manual switch (the switch takes about 1 s). */
export const SWITCH_PAUSE_MS = 10_000;
const LOCAL = "127.0.0.1";

export interface ServerOptions {
  name: string;
  args: string[];
  port: number;
  logFile: string;
  env: NodeJS.ProcessEnv;
  /** Log in as this user to see the server up (a server whose default user is off). */
  auth?: { username: string; password: string };
}

/** True when `AUTH <user> <password>` then PING succeed on host:port. */
function authPing(
  host: string,
  port: number,
  auth: { username: string; password: string },
): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, host);
    let got = "";
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1_000, () => done(false));
    sock.once("connect", () => sock.write(`AUTH ${auth.username} ${auth.password}\r\nPING\r\n`));
    sock.on("data", (d) => {
      got += d.toString();
      if (got.includes("\r\n", got.indexOf("\r\n") + 2)) done(got === "+OK\r\n+PONG\r\n");
    });
    sock.once("error", () => done(false));
  });
}

/** One redis-server (or sentinel) process that can be stopped and started again. */
export class RedisProcess {
  private child: Child | undefined;

  constructor(private readonly opts: ServerOptions) {}

  get port(): number {
    return this.opts.port;
  }

  get running(): boolean {
    return this.child !== undefined && !this.child.hasExited();
  }

  get pid(): number | undefined {
    return this.running ? this.child!.pid : undefined;
  }

  async start(): Promise<void> {
    if (this.running) throw new Error(`${this.opts.name} is already running`);
    const child = spawnLogged("redis-server", this.opts.args, {
      env: this.opts.env,
      logFile: this.opts.logFile,
    });
    this.child = child;
    const auth = this.opts.auth;
    const up = () => (auth ? authPing(LOCAL, this.opts.port, auth) : redisPing(LOCAL, this.opts.port));
    await waitFor(`${this.opts.name} on port ${this.opts.port}`, up, {
      timeoutMs: 30_000,
      failure: () =>
        child.hasExited()
          ? `exited; see ${this.opts.logFile}\n${tailFile(this.opts.logFile, 10)}`
          : undefined,
    });
  }

  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    if (!this.child) return;
    const exit = await stopChild(this.child, signal, 10_000);
    if (signal === "SIGTERM" && exit.code !== 0 && exit.signal === null) {
      throw new Error(`${this.opts.name} stopped with ${describeExit(exit)}; see ${this.opts.logFile}`);
    }
  }
}

/**
 * A server's config file (the ACL; with Sentinel the replication login, which any server needs once
 * it is demoted) and its command line. The file keeps passwords off the command line, and is what
 * Sentinel's CONFIG REWRITE updates.
 */
function serverArgs(dir: string, port: number, binds: string[], acl: FleetAcl): string[] {
  const conf = join(dir, "redis.conf");
  const lines = [`aclfile ${writeAclFile(acl, dir)}`];
  if (acl.passwords.replication)
    lines.push("masteruser replication", `masterauth ${acl.passwords.replication}`);
  writeFileSync(conf, `${lines.join("\n")}\n`, { mode: 0o600 });
  return [
    conf,
    ...["--port", String(port), "--bind", ...binds, "--dir", dir],
    // AOF, fsync on every write: a killed Redis loses nothing a node acknowledged.
    ...["--appendonly", "yes", "--appendfsync", "always", "--save", ""],
    ...["--protected-mode", "no", "--daemonize", "no", "--loglevel", "notice"],
  ];
}

export interface FleetRedis {
  /** What the nodes use: LAUNCHER_* settings. */
  readonly nodeEnv: Record<string, string>;
  /**
   * Every command, key or channel Redis refused anyone (the fleet's user, a replica, a sentinel):
   * the ACL LOG of each running server, plus what was read from servers before they were stopped.
   */
  aclRefusals(): Promise<string[]>;
  /** A client for this process (follows a Sentinel failover). */
  client(): Redis;
  /** Stops the primary (SIGTERM: AOF flushed), leaves it down `downMs`, starts it on the same data. */
  restart(downMs: number): Promise<void>;
  stop(): Promise<void>;
  /** Pids of the running servers (killed if this process exits without stop()). */
  pids(): number[];
}

export interface RedisSetOptions {
  dir: string;
  logsDir: string;
  /** The host's address on the fleet network, where the nodes reach Redis. */
  hostIp: string;
  env: NodeJS.ProcessEnv;
  /** The nodes' LAUNCHER_KEY_PREFIX: the ACL's key and channel patterns. */
  keyPrefix: string;
}

/**
 * The nodes' Redis URL (with the fleet user's password) in a file of its own, mode 600:
 * LAUNCHER_REDIS_URL_FILE, so the password is in no environment or command line.
 */
function urlFile(opts: RedisSetOptions, acl: FleetAcl, port: number): Record<string, string> {
  const file = join(opts.dir, "redis-url");
  writeFileSync(file, `${aclRedisUrl(acl, opts.hostIp, port)}\n`, { mode: 0o600 });
  return { LAUNCHER_REDIS_URL_FILE: file };
}

const adminLogin = (acl: FleetAcl) => ({ username: "admin", password: acl.passwords.admin });

/** Collects the ACL LOG of servers (as admin), each entry as one line naming the server. */
class AclRefusals {
  private readonly seen: string[] = [];

  constructor(private readonly acl: FleetAcl) {}

  /** The server's ACL LOG now (call before stopping a server: the log lives in its memory). */
  async read(name: string, port: number): Promise<string[]> {
    const r = new Redis({
      host: LOCAL,
      port,
      ...adminLogin(this.acl),
      lazyConnect: true,
      maxRetriesPerRequest: 0,
    });
    r.on("error", () => undefined);
    try {
      await r.connect();
      const log = (await r.call("ACL", "LOG", "128")) as unknown[][];
      return log.map((flat) => {
        const e = new Map<string, unknown>();
        for (let i = 0; i < flat.length; i += 2) e.set(String(flat[i]), flat[i + 1]);
        return `${name}: ${e.get("username")} refused ${e.get("reason")} '${e.get("object")}' (${e.get("count")}x, ${e.get("context")})`;
      });
    } finally {
      r.disconnect();
    }
  }

  async keep(name: string, port: number): Promise<void> {
    this.seen.push(...(await this.read(name, port).catch(() => [])));
  }

  async all(running: { name: string; port: number }[]): Promise<string[]> {
    const now = await Promise.all(running.map((s) => this.read(s.name, s.port)));
    return [...this.seen, ...now.flat()];
  }
}

export async function startStandaloneRedis(opts: RedisSetOptions): Promise<FleetRedis> {
  const port = await freePort();
  const dir = join(opts.dir, "redis");
  mkdirSync(dir, { recursive: true });
  const acl = fleetAcl(opts.keyPrefix);
  const refusals = new AclRefusals(acl);
  const server = new RedisProcess({
    name: "redis-server",
    args: serverArgs(dir, port, [LOCAL, opts.hostIp], acl),
    port,
    logFile: join(opts.logsDir, "redis.log"),
    env: opts.env,
    auth: adminLogin(acl),
  });
  await server.start();
  return {
    nodeEnv: urlFile(opts, acl, port),
    aclRefusals: () => refusals.all(server.running ? [{ name: "redis-server", port }] : []),
    client: () =>
      new Redis({ host: LOCAL, port, ...adminLogin(acl), maxRetriesPerRequest: 2, lazyConnect: false }),
    restart: async (downMs) => {
      await refusals.keep("redis-server", port);
      await server.stop("SIGTERM");
      await new Promise((r) => setTimeout(r, downMs));
      await server.start();
    },
    stop: () => server.stop(),
    pids: () => (server.pid ? [server.pid] : []),
  };
}

export interface SentinelRedis extends FleetRedis {
  /** The port of the current primary, as the sentinels report it. */
  primaryPort(): Promise<number>;
  /** SIGKILLs the current primary; resolves with when it died (ms) and its port. */
  killPrimary(): Promise<{ at: number; port: number }>;
  /** `SENTINEL FAILOVER`: a switch with both servers up. */
  manualFailover(): Promise<void>;
  /** Resolves when every sentinel names a primary other than `oldPort`. */
  waitPromoted(oldPort: number, timeoutMs: number): Promise<void>;
  /** Resolves when the sentinels see a replica that is connected to the primary and in sync. */
  waitReplicaInSync(timeoutMs: number): Promise<void>;
  /** Stops the server that is not the primary now (SIGTERM), leaves it down `downMs`, starts it. */
  restartReplica(downMs: number): Promise<void>;
}

/** Sentinel settings for a test: failover after 1 s of silence (well below LOST_AFTER). */
function sentinelConf(port: number, hostIp: string, primaryPort: number, dir: string, acl: FleetAcl): string {
  return [
    `port ${port}`,
    `bind ${LOCAL} ${hostIp}`,
    `dir ${dir}`,
    "protected-mode no",
    `sentinel monitor ${MASTER_NAME} ${hostIp} ${primaryPort} 2`,
    // How the sentinels log in to the servers (the ACL's `sentinel` user).
    `sentinel auth-user ${MASTER_NAME} sentinel`,
    `sentinel auth-pass ${MASTER_NAME} ${acl.passwords.sentinel}`,
    `sentinel down-after-milliseconds ${MASTER_NAME} 1000`,
    `sentinel failover-timeout ${MASTER_NAME} 10000`,
    `sentinel parallel-syncs ${MASTER_NAME} 1`,
    "",
  ].join("\n");
}

export async function startSentinelRedis(opts: RedisSetOptions): Promise<SentinelRedis> {
  const [p1, p2, ...sPorts] = await Promise.all([1, 2, 3, 4, 5].map(() => freePort()));
  const acl = fleetAcl(opts.keyPrefix, { replication: true, sentinel: true });
  const refusals = new AclRefusals(acl);
  const servers = new Map<number, RedisProcess>();
  const sentinels: RedisProcess[] = [];
  const logFile = (name: string) => join(opts.logsDir, `${name}.log`);
  const dataDir = (name: string) => {
    const d = join(opts.dir, name);
    mkdirSync(d, { recursive: true });
    return d;
  };
  // The replica announces the bridge address: it is what the sentinels hand to the nodes.
  const announce = (port: number) => [
    "--replica-announce-ip",
    opts.hostIp,
    "--replica-announce-port",
    String(port),
  ];
  const primary = new RedisProcess({
    name: "redis-primary",
    args: [...serverArgs(dataDir("redis-primary"), p1!, [LOCAL, opts.hostIp], acl), ...announce(p1!)],
    port: p1!,
    logFile: logFile("redis-primary"),
    env: opts.env,
    auth: adminLogin(acl),
  });
  const replica = new RedisProcess({
    name: "redis-replica",
    args: [
      ...serverArgs(dataDir("redis-replica"), p2!, [LOCAL, opts.hostIp], acl),
      ...announce(p2!),
      ...["--replicaof", opts.hostIp, String(p1)],
    ],
    port: p2!,
    logFile: logFile("redis-replica"),
    env: opts.env,
    auth: adminLogin(acl),
  });
  servers.set(p1!, primary);
  servers.set(p2!, replica);
  const stopAll = async () => {
    const results = await Promise.allSettled([...sentinels, primary, replica].map((s) => s.stop("SIGTERM")));
    const failed = results.find((r) => r.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
  };
  try {
    await primary.start();
    await replica.start();
    for (const [i, port] of sPorts.entries()) {
      const dir = dataDir(`sentinel-${i + 1}`);
      const conf = join(dir, "sentinel.conf");
      writeFileSync(conf, sentinelConf(port, opts.hostIp, p1!, dir, acl), { mode: 0o600 });
      const s = new RedisProcess({
        name: `sentinel-${i + 1}`,
        args: [conf, "--sentinel"],
        port,
        logFile: logFile(`sentinel-${i + 1}`),
        env: opts.env,
      });
      sentinels.push(s);
      await s.start();
    }
  } catch (err) {
    await stopAll().catch(() => undefined);
    throw err;
  }

  /** One command on one server (as admin) or sentinel (no login: the sentinels have no ACL). */
  const ask = async <T>(port: number, fn: (r: Redis) => Promise<T>): Promise<T> => {
    const r = new Redis({
      host: LOCAL,
      port,
      ...(servers.has(port) ? adminLogin(acl) : {}),
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      connectTimeout: 1_000,
    });
    r.on("error", () => undefined);
    try {
      await r.connect();
      return await fn(r);
    } finally {
      r.disconnect();
    }
  };
  const masterOf = async (sentinelPort: number): Promise<number | undefined> => {
    try {
      const addr = (await ask(sentinelPort, (r) =>
        r.call("SENTINEL", "get-master-addr-by-name", MASTER_NAME),
      )) as [string, string] | null;
      return addr ? Number(addr[1]) : undefined;
    } catch {
      return undefined;
    }
  };
  // A failover needs every sentinel to know the replica and the other sentinels.
  await waitFor(
    "sentinels to discover the replica and each other",
    async () => {
      for (const s of sentinels) {
        const info = (await ask(s.port, (r) => r.call("SENTINEL", "master", MASTER_NAME)).catch(
          () => [],
        )) as string[];
        const field = (k: string) => Number(info[info.indexOf(k) + 1] ?? -1);
        if (field("num-slaves") < 1 || field("num-other-sentinels") < 2) return false;
      }
      return true;
    },
    { timeoutMs: 30_000 },
  ).catch(async (err) => {
    await stopAll().catch(() => undefined);
    throw err;
  });

  const sentinelList = sPorts.map((p) => `${opts.hostIp}:${p}`).join(",");
  const primaryPort = async () => {
    for (const s of sentinels) {
      const port = await masterOf(s.port);
      if (port !== undefined) return port;
    }
    throw new Error("no sentinel answered get-master-addr-by-name");
  };
  return {
    nodeEnv: {
      // With Sentinel the URL gives the nodes' login only; the sentinels name the primary.
      ...urlFile(opts, acl, p1!),
      LAUNCHER_REDIS_SENTINELS: sentinelList,
      LAUNCHER_REDIS_MASTER_NAME: MASTER_NAME,
    },
    aclRefusals: () =>
      refusals.all(
        [
          { name: "redis-primary", port: p1!, server: primary },
          { name: "redis-replica", port: p2!, server: replica },
        ].filter((s) => s.server.running),
      ),
    client: () =>
      new Redis({
        sentinels: sPorts.map((port) => ({ host: LOCAL, port })),
        name: MASTER_NAME,
        ...adminLogin(acl),
        // The sentinels name the primary by its bridge address, which this process reaches too.
        maxRetriesPerRequest: 2,
        // Follow a switch at once (the old primary keeps answering, with stale data, until demoted).
        failoverDetector: true,
      }),
    primaryPort,
    killPrimary: async () => {
      const port = await primaryPort();
      const server = servers.get(port);
      if (!server) throw new Error(`the primary on port ${port} is not one of ours`);
      await refusals.keep(port === p1 ? "redis-primary" : "redis-replica", port);
      await server.stop("SIGKILL");
      return { at: Date.now(), port };
    },
    manualFailover: async () => {
      // Writes paused on the primary first, so the replica has everything when it is promoted and
      // nothing is written to the old primary before the nodes follow the switch.
      await ask(await primaryPort(), (r) => r.call("CLIENT", "PAUSE", String(SWITCH_PAUSE_MS), "WRITE"));
      await ask(sentinels[0]!.port, (r) => r.call("SENTINEL", "failover", MASTER_NAME));
    },
    waitPromoted: (oldPort, timeoutMs) =>
      waitFor(
        `a new primary instead of port ${oldPort}`,
        async () => {
          const seen = await Promise.all(sentinels.map((s) => masterOf(s.port)));
          return seen.every((p) => p !== undefined && p !== oldPort);
        },
        { timeoutMs },
      ),
    waitReplicaInSync: (timeoutMs) =>
      waitFor(
        "a replica in sync with the primary",
        async () => {
          const primary = await primaryPort().catch(() => undefined);
          if (primary === undefined) return false;
          const info = await ask(primary, (r) => r.info("replication")).catch(() => "");
          // slave0:ip=...,port=...,state=online,offset=...,lag=0
          return /^slave\d+:.*state=online/m.test(info);
        },
        { timeoutMs },
      ),
    restart: async (downMs) => {
      const port = await primaryPort();
      const server = servers.get(port);
      await refusals.keep(port === p1 ? "redis-primary" : "redis-replica", port);
      await server?.stop("SIGTERM");
      await new Promise((r) => setTimeout(r, downMs));
      await server?.start();
    },
    restartReplica: async (downMs) => {
      const port = await primaryPort();
      const other = port === p1 ? p2! : p1!;
      const server = servers.get(other)!;
      await refusals.keep(other === p1 ? "redis-primary" : "redis-replica", other);
      await server.stop("SIGTERM");
      await new Promise((r) => setTimeout(r, downMs));
      await server.start();
    },
    stop: stopAll,
    pids: () => [...sentinels, primary, replica].flatMap((s) => (s.pid ? [s.pid] : [])),
  };
}
