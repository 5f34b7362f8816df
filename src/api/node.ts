/**
 * Fleet nodes (Go: `api.Node`, types.go:857-870).
 */
import { parseRfc3339 } from "./rfc3339.js";

/** Node status values used by the fleet. */
export const NodeStatus = {
  Online: "Online",
  Draining: "Draining",
  Offline: "Offline",
} as const;
export type NodeStatus = (typeof NodeStatus)[keyof typeof NodeStatus];

/** The seed's Node JSON: `port` is a string and `lastSeen` an RFC 3339 time. */
export interface Node {
  host: string;
  ipv4: string;
  port: string;
  lastSeen: string;
  status: string;
}

/** A node as shown by `GET /nodes` and `/status`: the seed's Node plus fleet bookkeeping. */
export interface NodeView extends Node {
  id: string;
  /** The fleet's liveness verdict (see {@link onlineAt}). */
  online: boolean;
  /**
   * `GET /nodes`: jobs placed on the node and not yet finished (each holds one of its slots), read
   * fresh from Redis. A node's own `/status`: the job processes it runs.
   */
  runningJobs: number;
  /** LAUNCHER_MAX_RUNNING_JOBS: the jobs it runs at once (0: no limit). */
  slots: number;
  /** LAUNCHER_NODE_LABELS: what placement constraints match (label name → value). */
  labels: Record<string, string>;
  /** LAUNCHER_QUEUES: the queues whose jobs it runs. */
  queues: string[];
}

/** Go `Node.Online()`: true only for the exact string `Online` (`online` is false). */
export function nodeOnline(n: Pick<Node, "status">): boolean {
  return n.status === NodeStatus.Online;
}

/**
 * The fleet's liveness rule: the node says `Online` AND its last heartbeat is younger than
 * `offlineAfterMs` at `nowMs`. `nowMs` should be the Redis server's clock so every node judges
 * alike. A missing or unparsable `lastSeen` counts as not online.
 */
export function onlineAt(
  n: Pick<Node, "status" | "lastSeen">,
  nowMs: number,
  offlineAfterMs: number,
): boolean {
  if (!nodeOnline(n) || typeof n.lastSeen !== "string") return false;
  const seen = parseRfc3339(n.lastSeen);
  return seen !== undefined && onlineAtMs(n.status, seen.epochMs, nowMs, offlineAfterMs);
}

/** onlineAt for a heartbeat already in epoch ms (the node table's records): nothing to parse. */
export function onlineAtMs(
  status: string,
  lastSeenMs: number,
  nowMs: number,
  offlineAfterMs: number,
): boolean {
  return status === NodeStatus.Online && nowMs - lastSeenMs < offlineAfterMs;
}
