// What the scenarios act on: the local fleet of real processes (the default), or a running compose
// deployment (FAILOVER_TARGET=compose) driven with `docker compose kill/stop/start`.
import { execFile, execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import type { Redis } from "ioredis";
import { signToken } from "../../../src/http/auth.js";
import { haproxyServerStates } from "../../../src/topology/haproxy.js";
import { REPO_ROOT } from "../../../src/topology/paths.js";
import { waitFor } from "../../../src/topology/readiness.js";
import type { NetnsFleet } from "./fleet.js";
import { TERMINAL } from "./load.js";
import { SWITCH_PAUSE_MS } from "./redis.js";

export interface Target {
  readonly kind: "local" | "compose";
  readonly lbUrl: string;
  /** HAProxy's stats page (its CSV at `;csv`). */
  readonly statsUrl: string;
  /** HAProxy server name of node i (= its LAUNCHER_NODE_ID). */
  readonly servers: readonly string[];
  /** An admin token: streams of `*` see every job. */
  readonly token: string;
  /** Redis of the fleet, for the full event check (XRANGE); undefined when only the API is reachable. */
  readonly redis?: Redis;
  readonly keyPrefix?: string;
  /** Whether this target runs a Sentinel set (the Sentinel scenario needs one). */
  readonly sentinel: boolean;
  killNode(i: number): Promise<void>;
  /** SIGTERM (graceful: the node drains) and wait for the exit. */
  termNode(i: number): Promise<void>;
  /** Start node i again and wait for its /readyz. */
  startNode(i: number): Promise<void>;
  cutNode(i: number): Promise<void>;
  healNode(i: number): Promise<void>;
  /** Stops Redis (the primary), leaves it down `downMs`, starts it again on the same data. */
  restartRedis(downMs: number): Promise<void>;
  /**
   * Fails the Sentinel primary over. `kill`: SIGKILLs it and waits for the promotion. `manual`:
   * pauses writes on it (CLIENT PAUSE WRITE), runs SENTINEL FAILOVER, and waits until the old
   * primary is a replica of the new one, in sync.
   */
  failoverRedis(mode: "kill" | "manual"): Promise<void>;
  /** A non-terminal job is "genuinely running" when its owner is up and ready and its process exists. */
  jobIsLive(id: string): Promise<boolean>;
  /** What Redis's ACL refused the fleet's users (ACL LOG); absent where the servers cannot be asked. */
  aclRefusals?(): Promise<string[]>;
  close(): Promise<void>;
}

function procAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The state follows the command name in parentheses; Z is a zombie (dead, not reaped).
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

export class LocalTarget implements Target {
  readonly kind = "local" as const;
  readonly redis: Redis;

  private constructor(
    readonly fleet: NetnsFleet,
    readonly token: string,
  ) {
    this.redis = fleet.redisClient();
    this.redis.on("error", () => undefined);
  }

  static async create(fleet: NetnsFleet, user: string): Promise<LocalTarget> {
    return new LocalTarget(fleet, await fleet.adminToken(user));
  }

  get lbUrl(): string {
    return this.fleet.lbUrl;
  }

  get statsUrl(): string {
    return this.fleet.statsUrl;
  }

  get servers(): readonly string[] {
    return this.fleet.nodeIds;
  }

  get keyPrefix(): string {
    return this.fleet.keyPrefix;
  }

  get sentinel(): boolean {
    return "killPrimary" in this.fleet.redis;
  }

  async killNode(i: number): Promise<void> {
    await this.fleet.stopNode(i, "SIGKILL");
  }

  async termNode(i: number): Promise<void> {
    const exit = await this.fleet.stopNode(i, "SIGTERM");
    if (exit.code !== 0)
      throw new Error(`${this.servers[i]} did not exit 0 after SIGTERM: ${JSON.stringify(exit)}`);
  }

  startNode(i: number): Promise<void> {
    return this.fleet.startNode(i);
  }

  async cutNode(i: number): Promise<void> {
    this.fleet.net.cut(i);
  }

  async healNode(i: number): Promise<void> {
    this.fleet.net.heal(i);
  }

  restartRedis(downMs: number): Promise<void> {
    return this.fleet.redis.restart(downMs);
  }

  async failoverRedis(mode: "kill" | "manual"): Promise<void> {
    const redis = this.fleet.redis;
    if (!("killPrimary" in redis)) throw new Error("this fleet has no Sentinel");
    const old = await redis.primaryPort();
    if (mode === "kill") await redis.killPrimary();
    else await redis.manualFailover();
    await redis.waitPromoted(old, 30_000);
    if (mode === "manual") await redis.waitReplicaInSync(60_000);
  }

  aclRefusals(): Promise<string[]> {
    return this.fleet.redis.aclRefusals();
  }

  async jobIsLive(id: string): Promise<boolean> {
    const [owner, pid, status] = await this.redis.hmget(
      `${this.keyPrefix}:job:${id}`,
      "owner",
      "pid",
      "status",
    );
    if (!owner || !status || TERMINAL.has(status)) return false;
    const i = this.servers.indexOf(owner);
    if (i < 0 || this.fleet.nodePid(i) === undefined || !(await this.fleet.nodeReady(i))) return false;
    return pid !== null && pid !== "" && procAlive(Number(pid));
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}

// ---------------------------------------------------------------------------------------------
// The compose deployment: docker-compose.yml (or docker-compose.sentinel.yml) already up.

const COMPOSE_NODES = ["node-a", "node-b", "node-c"];
const COMPOSE_NODE_IPS = ["172.30.59.11", "172.30.59.12", "172.30.59.13"];

/** `docker compose` (v2 plugin) or `docker-compose` (v1), whichever works. */
function composeCommand(): string[] | undefined {
  for (const cmd of [["docker", "compose"], ["docker-compose"]]) {
    try {
      execFileSync(cmd[0]!, [...cmd.slice(1), "version"], { stdio: "ignore" });
      return cmd;
    } catch {}
  }
  return undefined;
}

export interface ComposeSettings {
  file: string;
  lbUrl: string;
  statsUrl: string;
}

export function composeSettings(env = process.env): ComposeSettings {
  return {
    file: env.FAILOVER_COMPOSE_FILE ?? join(REPO_ROOT, "docker-compose.yml"),
    lbUrl: env.LAUNCHER_URL ?? "http://127.0.0.1:8080",
    statsUrl: env.FAILOVER_LB_STATS_URL ?? "http://127.0.0.1:8404/",
  };
}

/**
 * Why the compose target cannot run here (undefined when it can): Docker must answer, and the
 * deployment must be up with its three nodes and HAProxy running.
 */
export function composeUnavailable(s = composeSettings()): string | undefined {
  const cmd = composeCommand();
  if (!cmd) return "neither `docker compose` nor `docker-compose` is installed";
  try {
    execFileSync("docker", ["info"], { stdio: "ignore", timeout: 15_000 });
  } catch {
    return "Docker is not usable here (`docker info` fails: no Docker engine reachable)";
  }
  if (!existsSync(s.file)) return `compose file ${s.file} does not exist`;
  try {
    const running = execFileSync(
      cmd[0]!,
      [...cmd.slice(1), "-f", s.file, "ps", "--services", "--filter", "status=running"],
      {
        encoding: "utf8",
        timeout: 30_000,
      },
    );
    const missing = [...COMPOSE_NODES, "haproxy"].filter((svc) => !running.split("\n").includes(svc));
    if (missing.length > 0)
      return `the deployment of ${s.file} is not up (not running: ${missing.join(", ")})`;
  } catch (err) {
    return `\`compose ps\` failed: ${(err as Error).message}`;
  }
  return undefined;
}

/** The token: LAUNCHER_TOKEN, or one signed with LAUNCHER_AUTH_SECRET (environment or .env). */
async function composeToken(user: string): Promise<string> {
  if (process.env.LAUNCHER_TOKEN) return process.env.LAUNCHER_TOKEN;
  let secret = process.env.LAUNCHER_AUTH_SECRET;
  const dotenv = join(REPO_ROOT, ".env");
  if (!secret && existsSync(dotenv)) {
    secret = /^LAUNCHER_AUTH_SECRET=(.*)$/m.exec(readFileSync(dotenv, "utf8"))?.[1]?.trim();
  }
  if (!secret)
    throw new Error("set LAUNCHER_TOKEN or LAUNCHER_AUTH_SECRET (or put it in .env) for the compose target");
  return signToken(secret, { user, groups: ["launcher-admins"], ttl: "4h" });
}

export class ComposeTarget implements Target {
  readonly kind = "compose" as const;
  readonly servers = COMPOSE_NODES;
  readonly lbUrl: string;
  readonly statsUrl: string;
  readonly sentinel: boolean;
  private readonly cmd: string[];
  private readonly redisService: string;

  private constructor(
    private readonly settings: ComposeSettings,
    readonly token: string,
    services: string[],
  ) {
    this.cmd = composeCommand()!;
    this.lbUrl = settings.lbUrl;
    this.statsUrl = settings.statsUrl;
    this.sentinel = services.includes("sentinel-1");
    this.redisService = services.includes("redis") ? "redis" : "redis-primary";
  }

  static async create(settings: ComposeSettings, user: string): Promise<ComposeTarget> {
    const cmd = composeCommand();
    if (!cmd) throw new Error("docker compose is not installed");
    const services = execFileSync(cmd[0]!, [...cmd.slice(1), "-f", settings.file, "config", "--services"], {
      encoding: "utf8",
    })
      .split("\n")
      .filter(Boolean);
    return new ComposeTarget(settings, await composeToken(user), services);
  }

  private async compose(...args: string[]): Promise<string> {
    const { stdout } = await promisify(execFile)(
      this.cmd[0]!,
      [...this.cmd.slice(1), "-f", this.settings.file, ...args],
      {
        timeout: 120_000,
      },
    );
    return stdout;
  }

  private async container(service: string): Promise<string> {
    return (await this.compose("ps", "-q", service)).trim();
  }

  private async network(container: string): Promise<string> {
    const { stdout } = await promisify(execFile)("docker", [
      "inspect",
      "-f",
      "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}\n{{end}}",
      container,
    ]);
    const name = stdout.split("\n").find(Boolean);
    if (!name) throw new Error(`container ${container} is on no network`);
    return name;
  }

  /** Readiness as the load balancer sees it: the node's server UP in HAProxy's stats. */
  private async waitRouted(i: number): Promise<void> {
    await waitFor(
      `${this.servers[i]} UP in HAProxy`,
      async () =>
        (await haproxyServerStates(this.statsUrl)).some(
          (s) => s.name === this.servers[i] && s.status === "UP",
        ),
      { timeoutMs: 120_000 },
    );
  }

  async killNode(i: number): Promise<void> {
    await this.compose("kill", "-s", "SIGKILL", this.servers[i]!);
  }

  async termNode(i: number): Promise<void> {
    await this.compose("stop", "-t", "30", this.servers[i]!);
  }

  async startNode(i: number): Promise<void> {
    await this.compose("start", this.servers[i]!);
    await this.waitRouted(i);
  }

  private cutState = new Map<number, { container: string; network: string }>();

  async cutNode(i: number): Promise<void> {
    const container = await this.container(this.servers[i]!);
    const network = await this.network(container);
    await promisify(execFile)("docker", ["network", "disconnect", network, container]);
    this.cutState.set(i, { container, network });
  }

  async healNode(i: number): Promise<void> {
    const cut = this.cutState.get(i);
    if (!cut) return;
    await promisify(execFile)("docker", [
      "network",
      "connect",
      "--ip",
      COMPOSE_NODE_IPS[i]!,
      cut.network,
      cut.container,
    ]);
    this.cutState.delete(i);
  }

  async restartRedis(downMs: number): Promise<void> {
    await this.compose("stop", this.redisService);
    await new Promise((r) => setTimeout(r, downMs));
    await this.compose("start", this.redisService);
  }

  /** The sentinels' answer for the primary's address, e.g. `172.30.59.10`. */
  private async primaryIp(): Promise<string> {
    const out = await this.compose(
      ...["exec", "-T", "sentinel-1", "redis-cli", "-p", "26379"],
      ...["sentinel", "get-master-addr-by-name", "launcher"],
    );
    return out.split("\n")[0]!.trim();
  }

  async failoverRedis(mode: "kill" | "manual"): Promise<void> {
    if (!this.sentinel) throw new Error(`${this.settings.file} runs no Sentinel`);
    const old = await this.primaryIp();
    // docker-compose.sentinel.yml: the primary starts at .10, the replica at .14.
    const service = old === "172.30.59.14" ? "redis-replica" : "redis-primary";
    if (mode === "kill") {
      await this.compose("kill", "-s", "SIGKILL", service);
    } else {
      await this.compose(
        "exec",
        "-T",
        service,
        // As the ACL's admin: the compose files give redis-cli its password (REDISCLI_AUTH).
        ...["redis-cli", "--user", "admin"],
        "client",
        "pause",
        String(SWITCH_PAUSE_MS),
        "write",
      );
      await this.compose(
        "exec",
        "-T",
        "sentinel-1",
        "redis-cli",
        "-p",
        "26379",
        "sentinel",
        "failover",
        "launcher",
      );
    }
    await waitFor("the sentinels to promote the replica", async () => (await this.primaryIp()) !== old, {
      timeoutMs: 60_000,
    });
    if (mode === "manual") {
      const promoted = service === "redis-primary" ? "redis-replica" : "redis-primary";
      await waitFor(
        "the old primary to be a replica in sync",
        async () =>
          /^slave\d+:.*state=online/m.test(
            await this.compose(
              "exec",
              "-T",
              promoted,
              "redis-cli",
              "--user",
              "admin",
              "info",
              "replication",
            ).catch(() => ""),
          ),
        { timeoutMs: 60_000 },
      );
    }
  }

  async jobIsLive(id: string): Promise<boolean> {
    // Owner-only: answered by the owner only, so 200 means the owner is up and reachable.
    const headers = { authorization: `Bearer ${this.token}` };
    const job = await fetch(`${this.lbUrl}/jobs/${id}?fields=status`, {
      headers,
      signal: AbortSignal.timeout(5_000),
    });
    if (job.status !== 200 || TERMINAL.has(((await job.json()) as { status: string }).status)) return false;
    const net = await fetch(`${this.lbUrl}/jobs/${id}/network`, {
      headers,
      signal: AbortSignal.timeout(5_000),
    });
    await net.arrayBuffer();
    return net.status === 200;
  }

  async close(): Promise<void> {
    for (const i of [...this.cutState.keys()]) await this.healNode(i).catch(() => undefined);
  }
}
