// The nemesis's schedule, made from the seed alone before the run starts: the same seed, length,
// node count, LOST_AFTER and Redis kind give the same list of faults, which the runner prints and
// saves. Faults overlap: up to two nodes are hit at a time (a node is never hit by two node faults
// at once), one Redis fault runs at a time, and supervisor kills land whenever they come up,
// including on a node that is paused, cut off or down.
import { Prng } from "./prng.js";

export const FAULT_KINDS = [
  "kill-node",
  "pause-node",
  "kill-supervisor",
  "cut-redis",
  "cut-peers",
  "restart-redis",
  "pause-redis",
  "sentinel-failover",
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface Fault {
  /** Its index in the schedule. */
  n: number;
  /** When it starts, ms after the workload started. */
  at: number;
  kind: FaultKind;
  /** The node it hits (node faults and kill-supervisor). */
  node?: number;
  /** How long the node or Redis stays down, paused or cut (ms); absent for instantaneous faults. */
  ms?: number;
}

export interface PlanOptions {
  seed: number;
  durationMs: number;
  nodes: number;
  lostAfterMs: number;
  sentinel: boolean;
  /** Mean gap between two faults (ms). */
  meanGapMs: number;
}

/** How long a fault keeps its target busy in the plan (its down time plus recovery). */
function busyMs(f: Fault): number {
  switch (f.kind) {
    case "kill-node":
      return (f.ms ?? 0) + 6_000; // a restart: boot and /readyz
    case "pause-node":
    case "cut-redis":
    case "cut-peers":
      return (f.ms ?? 0) + 1_500;
    case "restart-redis":
      return (f.ms ?? 0) + 2_000;
    case "pause-redis":
      return (f.ms ?? 0) + 500;
    case "sentinel-failover":
      return 12_000;
    case "kill-supervisor":
      return 0;
  }
}

const NODE_FAULTS: readonly FaultKind[] = ["kill-node", "pause-node", "cut-redis", "cut-peers"];
const REDIS_FAULTS: readonly FaultKind[] = ["restart-redis", "pause-redis", "sentinel-failover"];

export function isNodeFault(kind: FaultKind): boolean {
  return NODE_FAULTS.includes(kind);
}

export function isRedisFault(kind: FaultKind): boolean {
  return REDIS_FAULTS.includes(kind);
}

export function makePlan(o: PlanOptions): Fault[] {
  const rng = new Prng(o.seed ^ 0x9e3779b9);
  const weights: Partial<Record<FaultKind, number>> = {
    "kill-node": 12,
    "pause-node": 10,
    "kill-supervisor": 22,
    "cut-redis": 12,
    "cut-peers": 12,
    "restart-redis": 8,
    "pause-redis": 12,
    ...(o.sentinel ? { "sentinel-failover": 8 } : {}),
  };
  const nodeBusy = Array.from({ length: o.nodes }, () => 0);
  let redisBusy = 0;
  const plan: Fault[] = [];
  let t = 3_000;
  while (t < o.durationMs) {
    const kind = rng.weighted(weights);
    const f: Fault = { n: plan.length, at: Math.round(t), kind };
    if (kind === "kill-supervisor") {
      f.node = rng.int(0, o.nodes - 1);
    } else if (isNodeFault(kind)) {
      const busy = nodeBusy.filter((b) => b > t).length;
      const free = nodeBusy.flatMap((b, i) => (b <= t ? [i] : []));
      // At most two nodes hit at once: one always answers (and can settle a lost peer's jobs).
      if (busy >= Math.min(2, o.nodes - 1) || free.length === 0) {
        t += rng.range(0.2, 1.8) * o.meanGapMs;
        continue;
      }
      f.node = rng.pick(free);
      if (kind === "kill-node") f.ms = Math.round(rng.range(300, 5_000));
      else if (kind === "pause-node")
        f.ms = Math.round(
          rng.next() < 0.7 ? o.lostAfterMs + rng.range(500, 3_000) : rng.range(500, o.lostAfterMs / 2),
        );
      else if (kind === "cut-redis")
        f.ms = Math.round(
          rng.next() < 0.2 ? o.lostAfterMs + rng.range(500, 3_000) : rng.range(500, o.lostAfterMs / 2),
        );
      else f.ms = Math.round(rng.range(500, 6_000));
      nodeBusy[f.node] = t + busyMs(f);
    } else {
      if (redisBusy > t) {
        t += rng.range(0.2, 1.8) * o.meanGapMs;
        continue;
      }
      if (kind === "restart-redis") f.ms = Math.round(rng.range(200, 3_000));
      // Sentinel fails a primary over after 1 s of silence: a pause stays below that.
      else if (kind === "pause-redis") f.ms = Math.round(rng.range(200, o.sentinel ? 700 : 3_000));
      redisBusy = t + busyMs(f);
    }
    plan.push(f);
    t += rng.range(0.2, 1.8) * o.meanGapMs;
  }
  return plan;
}

export function describeFault(f: Fault, nodeIds: readonly string[]): string {
  const target = f.node === undefined ? "" : ` ${nodeIds[f.node] ?? `node ${f.node}`}`;
  const ms = f.ms === undefined ? "" : ` ${f.ms} ms`;
  return `#${f.n} +${(f.at / 1000).toFixed(1)}s ${f.kind}${target}${ms}`;
}
