// The nemesis: runs the seeded schedule (plan.ts) against the fleet of the failover harness. Each
// fault starts at its planned time; a fault whose target (a node, or Redis) is still busy with the
// previous one (a restart that took longer than planned) waits for it, so faults never stack on
// one target but do overlap across targets. Every start and end goes to the history.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { NetnsFleet } from "../failover/harness/fleet.js";
import { NODE_PORT } from "../failover/harness/fleet.js";
import type { LocalTarget } from "../failover/harness/target.js";
import type { History } from "./history.js";
import { describeFault, type Fault, isNodeFault, isRedisFault } from "./plan.js";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

/** Every process whose command line contains all of `parts` (from /proc). */
export function findProcesses(parts: string[]): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").join(" ");
    } catch {
      continue;
    }
    if (parts.every((p) => cmdline.includes(p))) pids.push(Number(entry));
  }
  return pids;
}

export interface NemesisOptions {
  /** The fleet's scratch directory: node i's supervisor daemon serves <scratch>/runner/<node id>. */
  scratch: string;
  /**
   * With Sentinel, restart-redis restarts the replica unless this is set: a restarted primary comes
   * back as a primary, takes writes until the sentinels demote it, and loses them when it resyncs
   * (docs/reliability.md, the bugs found).
   */
  restartPrimary: boolean;
  log: (line: string) => void;
}

export class Nemesis {
  readonly counts = new Map<string, number>();
  readonly errors: string[] = [];
  private readonly nodeLocks: Promise<void>[];
  private redisLock: Promise<void> = Promise.resolve();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly running = new Set<Promise<void>>();
  /** Cleanup of faults in progress (SIGCONT, iptables rules), for an early exit. */
  private readonly undo = new Map<number, () => void>();
  private stopped = false;

  constructor(
    private readonly fleet: NetnsFleet,
    private readonly target: LocalTarget,
    private readonly plan: Fault[],
    private readonly history: History,
    private readonly opts: NemesisOptions,
  ) {
    this.nodeLocks = fleet.nodeIds.map(() => Promise.resolve());
  }

  start(): void {
    const t0 = Date.now();
    for (const f of this.plan) {
      this.timers.push(
        setTimeout(
          () => {
            const p = this.schedule(f);
            this.running.add(p);
            void p.finally(() => this.running.delete(p));
          },
          Math.max(0, t0 + f.at - Date.now()),
        ),
      );
    }
  }

  /** Faults planned but not started yet are dropped; the ones in progress end (healed, resumed). */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  /** Synchronous cleanup for an exit in the middle of faults: resume what is paused, lift cuts. */
  undoAll(): void {
    for (const u of this.undo.values()) {
      try {
        u();
      } catch {}
    }
    this.undo.clear();
  }

  private schedule(f: Fault): Promise<void> {
    if (f.kind === "kill-supervisor") return this.exec(f);
    if (isNodeFault(f.kind)) {
      const i = f.node!;
      const p = this.nodeLocks[i]!.then(() => this.exec(f));
      this.nodeLocks[i] = p.catch(() => undefined);
      return p;
    }
    if (isRedisFault(f.kind)) {
      const p = this.redisLock.then(() => this.exec(f));
      this.redisLock = p.catch(() => undefined);
      return p;
    }
    return this.exec(f);
  }

  private async exec(f: Fault): Promise<void> {
    if (this.stopped) return;
    const base = { type: "fault" as const, n: f.n, kind: f.kind, node: f.node, ms: f.ms };
    this.history.write({ ...base, t: Date.now(), phase: "start" });
    this.opts.log(`fault ${describeFault(f, this.fleet.nodeIds)}`);
    try {
      const note = await this.inject(f);
      this.counts.set(f.kind, (this.counts.get(f.kind) ?? 0) + 1);
      this.history.write({ ...base, t: Date.now(), phase: "end", ...(note ? { note } : {}) });
    } catch (err) {
      const note = (err as Error).message.split("\n")[0]!.slice(0, 300);
      this.errors.push(`${describeFault(f, this.fleet.nodeIds)}: ${note}`);
      this.history.write({ ...base, t: Date.now(), phase: "error", note });
      this.opts.log(`fault #${f.n} ${f.kind} failed: ${note}`);
    }
  }

  private nodeNs(i: number): string {
    return this.fleet.net.node(i).ns;
  }

  private iptables(i: number, args: string[]): void {
    execFileSync("ip", ["netns", "exec", this.nodeNs(i), "iptables", "-w", ...args], { stdio: "ignore" });
  }

  /** iptables rules that cut node i off from Redis (and the sentinels), or from its peers. */
  private cutRules(i: number, from: "redis" | "peers"): string[][] {
    if (from === "redis") {
      // Everything between the node and the host except HAProxy's connections to the node's port:
      // the node reaches no Redis server and no sentinel, and still answers the load balancer.
      const host = this.fleet.net.hostIp;
      return [
        ["OUTPUT", "-d", host, "-p", "tcp", "!", "--sport", String(NODE_PORT), "-j", "DROP"],
        ["INPUT", "-s", host, "-p", "tcp", "!", "--dport", String(NODE_PORT), "-j", "DROP"],
      ];
    }
    const peers = this.fleet.nodeIds.flatMap((_, j) => (j === i ? [] : [this.fleet.net.node(j).ip]));
    return peers.flatMap((ip) => [
      ["OUTPUT", "-d", ip, "-j", "DROP"],
      ["INPUT", "-s", ip, "-j", "DROP"],
    ]);
  }

  /** Runs the fault; resolves with a note for the history when there is something to say. */
  private async inject(f: Fault): Promise<string | undefined> {
    const ms = f.ms ?? 0;
    switch (f.kind) {
      case "kill-node": {
        const i = f.node!;
        await this.fleet.stopNode(i, "SIGKILL");
        await sleep(ms);
        return this.restartNode(i);
      }
      case "pause-node": {
        const i = f.node!;
        const pid = this.fleet.nodePid(i);
        if (pid === undefined) return "node not running";
        signal(pid, "SIGSTOP");
        this.undo.set(f.n, () => signal(pid, "SIGCONT"));
        try {
          await sleep(ms);
        } finally {
          signal(pid, "SIGCONT");
          this.undo.delete(f.n);
        }
        return undefined;
      }
      case "cut-redis":
      case "cut-peers": {
        const i = f.node!;
        const rules = this.cutRules(i, f.kind === "cut-redis" ? "redis" : "peers");
        const lift = () => {
          for (const r of rules) {
            try {
              this.iptables(i, ["-D", ...r]);
            } catch {}
          }
        };
        this.undo.set(f.n, lift);
        try {
          for (const r of rules) this.iptables(i, ["-I", ...r]);
          await sleep(ms);
        } finally {
          lift();
          this.undo.delete(f.n);
        }
        return undefined;
      }
      case "kill-supervisor": {
        const i = f.node!;
        const stateDir = join(this.opts.scratch, "runner", this.fleet.nodeIds[i]!);
        // The node's resident supervisor daemon: `python3 -I -S <stateDir>/supervisor-<hash>.py
        // <stateDir> ...`, detached from the node (it outlives node restarts).
        const pids = findProcesses([`${stateDir}/supervisor-`, ".py"]);
        for (const pid of pids) signal(pid, "SIGKILL");
        return pids.length === 0 ? "no supervisor daemon running" : `killed pid ${pids.join(",")}`;
      }
      case "restart-redis": {
        const redis = this.fleet.redis;
        if ("restartReplica" in redis && !this.opts.restartPrimary) {
          await redis.restartReplica(ms);
          return "the replica";
        }
        await this.target.restartRedis(ms);
        return "the primary";
      }
      case "pause-redis": {
        const pid = await this.primaryPid();
        if (pid === undefined) return "no Redis primary found";
        signal(pid, "SIGSTOP");
        this.undo.set(f.n, () => signal(pid, "SIGCONT"));
        try {
          await sleep(ms);
        } finally {
          signal(pid, "SIGCONT");
          this.undo.delete(f.n);
        }
        return `paused pid ${pid}`;
      }
      case "sentinel-failover": {
        // A planned switch, as an operator makes one: only with a replica in sync. (Switching to a
        // replica that is still resyncing loses what the primary acknowledged since: seed 1.)
        const redis = this.fleet.redis;
        if ("waitReplicaInSync" in redis) await redis.waitReplicaInSync(60_000);
        await this.target.failoverRedis("manual");
        return undefined;
      }
    }
  }

  /** Starts node i again; a start that fails (e.g. Redis down meanwhile) is tried again. */
  private async restartNode(i: number): Promise<string | undefined> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.fleet.startNode(i);
        return attempt > 1 ? `started on attempt ${attempt}` : undefined;
      } catch (err) {
        if (attempt >= 5) throw err;
        await this.fleet.stopNode(i, "SIGKILL").catch(() => undefined);
        await sleep(1_000);
      }
    }
  }

  /** The pid of the Redis server that is primary now (its process title names its port). */
  private async primaryPid(): Promise<number | undefined> {
    const redis = this.fleet.redis;
    const pids = redis.pids();
    if (!("primaryPort" in redis)) return pids[0];
    const port = await redis.primaryPort();
    return pids.find((pid) => {
      try {
        const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
        return cmd.includes(`:${port}`) && !cmd.includes("sentinel");
      } catch {
        return false;
      }
    });
  }
}
