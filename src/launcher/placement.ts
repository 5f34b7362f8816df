// Where a job may run: the Launcher's placement vocabulary (a job's `queues` and
// `placementConstraints`, a node's queues and labels) as the fleet queue's classes and checks.
// Pure functions; the atomic choice among nodes is made in Redis (create_job.lua, claim_jobs.lua).
import { createHash } from "node:crypto";
import {
  ApiError,
  type ClusterInfo,
  ErrCode,
  type Job,
  type NodeView,
  type PlacementConstraint,
} from "../api/index.js";

/** The queue of jobs that name none, unless the cluster configuration names another. */
export const DEFAULT_QUEUE = "default";

/** What placement needs of a node. */
export type PlacementNode = Pick<NodeView, "id" | "queues" | "labels">;

/** The queues a job may run in: those it names (any one will do), else the default queue. */
export function jobQueues(job: Pick<Job, "queues">, defaultQueue: string): string[] {
  const named = [...new Set((job.queues ?? []).filter((q) => q !== ""))].sort();
  return named.length > 0 ? named : [defaultQueue];
}

/** Constraints as [label, value] pairs, sorted; value "" means "has the label, any value". */
function constraintPairs(constraints: readonly PlacementConstraint[] | undefined): [string, string][] {
  const pairs = (constraints ?? []).map((c): [string, string] => [c.name, c.value ?? ""]);
  const unique = new Map(pairs.map((p) => [JSON.stringify(p), p]));
  return [...unique.values()].sort(([a, x], [b, y]) => (a === b ? (x < y ? -1 : 1) : a < b ? -1 : 1));
}

/** Whether a node runs jobs of one of `queues` and has every label the constraints ask for. */
export function eligible(
  node: Pick<PlacementNode, "queues" | "labels">,
  queues: readonly string[],
  constraints: readonly PlacementConstraint[] | undefined,
): boolean {
  if (!queues.some((q) => node.queues.includes(q))) return false;
  return constraintPairs(constraints).every(([name, value]) => {
    const have = node.labels[name];
    return have !== undefined && (value === "" || have === value);
  });
}

/**
 * A job's queue class: jobs with the same queues, constraints and user wait in one sorted set, so
 * a claim looks at one head per class. The descriptor is what claim_jobs.lua reads.
 */
export function queueClass(
  queues: readonly string[],
  constraints: readonly PlacementConstraint[] | undefined,
  user: string,
): { id: string; descriptor: string } {
  const descriptor = JSON.stringify({ q: queues, c: constraintPairs(constraints), u: user });
  return { id: createHash("sha1").update(descriptor).digest("hex").slice(0, 16), descriptor };
}

/** Describes what a queued job waits for, for its status message. */
export function waitingFor(queues: readonly string[], constraints?: readonly PlacementConstraint[]): string {
  const labels = constraintPairs(constraints).map(([n, v]) => (v === "" ? n : `${n}=${v}`));
  const where = `a node serving queue ${queues.map((q) => JSON.stringify(q)).join(" or ")}`;
  return `Queued: waiting for a free slot on ${where}${labels.length ? ` with ${labels.join(", ")}` : ""}`;
}

export function waitingForUser(user: string, cap: number): string {
  return `Queued: user ${JSON.stringify(user)} already has ${cap} jobs placed in the fleet (LAUNCHER_MAX_RUNNING_JOBS_PER_USER=${cap})`;
}

/** What placement reads of the fleet: the nodes as last seen, and a fresh read (the Registry). */
export interface FleetView {
  placementNodes(): readonly Pick<NodeView, "queues" | "labels">[];
  listNodes(): Promise<readonly Pick<NodeView, "queues" | "labels" | "online">[]>;
}

/** The queues of `queues` that no node of `nodes` serves. */
function unservedQueues(nodes: readonly Pick<NodeView, "queues">[], queues: readonly string[]): string[] {
  return queues.filter((q) => !nodes.some((n) => n.queues.includes(q)));
}

/** Whether some node of `nodes` could run the job: every queue it names is served, and a node serving one has its labels. */
function placeable(
  nodes: readonly Pick<NodeView, "queues" | "labels">[],
  queues: readonly string[],
  constraints: readonly PlacementConstraint[] | undefined,
): boolean {
  return unservedQueues(nodes, queues).length === 0 && nodes.some((n) => eligible(n, queues, constraints));
}

/**
 * Why no node of `nodes` could ever run the job, or undefined when one could: every queue it names is
 * served by some node, and one that serves one of them has every label it asks for, online or not (a
 * job for a node that is away waits in the fleet queue). The refusal is a 400 only when the view is live (some node in it is online): a
 * view with no live node (empty while this node starts or while Redis lost the records, or every
 * record stale for a moment) cannot tell a queue nobody serves from one whose nodes it cannot see
 * now, so it is a 503 to repeat (docs/reliability.md, bug 7).
 */
export function placementRefusal(
  nodes: readonly Pick<NodeView, "queues" | "labels" | "online">[],
  queues: readonly string[],
  constraints: readonly PlacementConstraint[] | undefined,
): ApiError | undefined {
  // Every queue named must be one a known node serves ("any one will do" is about where the job runs):
  // the queues are part of the job's fleet-queue class, and free names would let one user make a new
  // class per submission (docs/architecture.md, "How many classes user input can make").
  if (placeable(nodes, queues, constraints)) return undefined;
  const unserved = unservedQueues(nodes, queues);
  const wanted = constraintPairs(constraints).map(([n, v]) => (v === "" ? n : `${n}=${v}`));
  const named = (unserved.length > 0 ? unserved : queues).map((q) => JSON.stringify(q)).join(" or ");
  if (!nodes.some((n) => n.online)) {
    const field = unserved.length > 0 ? "queues" : "placementConstraints";
    const labels = unserved.length > 0 || wanted.length === 0 ? "" : ` with the labels ${wanted.join(", ")}`;
    return new ApiError(
      ErrCode.PluginRestarted,
      `${field}: no node is up to serve queue ${named}${labels} (no node of the fleet is online now); try again`,
    );
  }
  if (unserved.length > 0) {
    const known = [...new Set(nodes.flatMap((n) => n.queues))].sort();
    return new ApiError(
      ErrCode.InvalidRequest,
      `queues: no node of the fleet serves ${named} (queues served: ${known.join(", ") || "none"})`,
    );
  }
  return new ApiError(
    ErrCode.InvalidRequest,
    `placementConstraints: no node serving the job's queue has the labels ${wanted.join(", ")}`,
  );
}

/**
 * Refuses a job no node could ever run, before it exists: `placementRefusal` on the nodes as last
 * seen, and, only when that refuses, again on a fresh read, so a refusal never rests on a stale or
 * empty cache: 400 InvalidRequest when the fleet is up and no known node serves the job, 503
 * PluginRestarted when no node is online to tell.
 */
export async function checkPlaceable(
  fleet: FleetView,
  queues: readonly string[],
  constraints: readonly PlacementConstraint[] | undefined,
): Promise<void> {
  if (placeable(fleet.placementNodes(), queues, constraints)) return;
  const refusal = placementRefusal(await fleet.listNodes(), queues, constraints);
  if (refusal) throw refusal;
}

/**
 * The cluster info a client sees: the configured one, with the queues and label constraints of
 * every registered node added, and a default queue (the configured one, else `default` when a node
 * serves it, else the first queue).
 */
export function fleetClusterInfo(configured: ClusterInfo, nodes: readonly PlacementNode[]): ClusterInfo {
  const advertised = [...new Set(nodes.flatMap((n) => n.queues))].sort();
  const queues = [...new Set([...configured.queues, ...advertised])];
  const seen = new Set(configured.placementConstraints.map((c) => JSON.stringify([c.name, c.value ?? ""])));
  const constraints = [...configured.placementConstraints];
  for (const n of nodes) {
    for (const [name, value] of Object.entries(n.labels).sort()) {
      const key = JSON.stringify([name, value]);
      if (!seen.has(key)) {
        seen.add(key);
        constraints.push({ name, value });
      }
    }
  }
  const defaultQueue =
    configured.defaultQueue || (queues.includes(DEFAULT_QUEUE) ? DEFAULT_QUEUE : queues[0]);
  return {
    ...configured,
    queues,
    ...(defaultQueue ? { defaultQueue } : {}),
    placementConstraints: constraints,
  };
}
