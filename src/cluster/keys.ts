// Every Redis key and channel the fleet uses, in one place. All start with the fleet's prefix,
// so fleets with different prefixes share one Redis without seeing each other.

import { createHash } from "node:crypto";

export interface Keys {
  readonly prefix: string;
  /** Hash: `spec` (immutable job JSON), `owner`, `user`, `ver`, and the mutable fields (status, pid, …). */
  job(id: string): string;
  /** Sorted set of every job id, scored by submission time (ms). */
  readonly jobsAll: string;
  /** Sorted set of one user's job ids, scored by submission time (ms). */
  jobsByUser(user: string): string;
  /** Set of the unfinished jobs a node owns (settled by a peer when the node is lost). */
  nodeJobs(nodeId: string): string;
  /** Sorted set of terminal job ids, scored by their last update (ms), for expiry. */
  readonly expiry: string;
  /** Stream of status events: the fleet-wide, ordered history clients resume from. */
  readonly events: string;
  /** String: id of the newest status event, so each publish can name its predecessor. */
  readonly eventsLast: string;
  /** Pub/sub channel: `<eventId>\n<previousEventId>\n<event JSON>`. */
  readonly eventsChannel: string;
  /** Hash: a node's record (host, ipv4, port, status, epoch, lastSeenMs, runningJobs, …). */
  node(nodeId: string): string;
  /** Sorted set of node ids, scored by last heartbeat (Redis server time, ms). */
  readonly nodes: string;
  /** Pub/sub channel: a node id whose record changed (join, leave, status). */
  readonly nodesChannel: string;
  /** List of job ids placed on a node by a peer, for the node to take and start. */
  nodeInbox(nodeId: string): string;
  /** Set of one user's placed, unfinished jobs (fleet-wide, for LAUNCHER_MAX_RUNNING_JOBS_PER_USER). */
  userActive(user: string): string;
  /** Hash: queue class id → its descriptor JSON (`{"q":[queues],"c":[[label,value]…],"u":user}`). */
  readonly queueClasses: string;
  /** Sorted set of the queued job ids of one class, scored by their queue sequence number. */
  queueClass(classId: string): string;
  /** Sorted set of the non-empty classes, scored by their head's sequence number (oldest first). */
  readonly queueHeads: string;
  /** String: the fleet queue's sequence counter (submission order across classes). */
  readonly queueSeq: string;
  /**
   * Hash: a submission's Idempotency-Key, per user: `job` (the id it created) and `digest` (of its
   * request). Expires after LAUNCHER_JOB_EXPIRY_HOURS. The key's text is hashed, so any text fits.
   */
  idempotency(user: string, key: string): string;
  /** Pub/sub channel: `*` when jobs were queued fleet-wide, or the id of a node whose inbox got a job. */
  readonly queueChannel: string;
  /**
   * Key prefixes for the scripts that reach keys they only find inside Redis (the job hashes of
   * the ids in a set): `scriptPrefixes.job + id` is `job(id)`, and so on. TypeScript passes them in
   * as ARGV, so this file stays the one place that spells a key.
   */
  readonly scriptPrefixes: {
    readonly job: string;
    readonly node: string;
    readonly jobsByUser: string;
    readonly userActive: string;
    readonly queueClass: string;
  };
  /** `scriptPrefixes.node + id + scriptSuffixes.nodeJobs` is `nodeJobs(id)`; likewise the inbox. */
  readonly scriptSuffixes: { readonly nodeJobs: string; readonly nodeInbox: string };
}

export function fleetKeys(prefix: string): Keys {
  const p = prefix;
  // The keys named by an id are a prefix and the id, so scripts can build them the same way.
  const scriptPrefixes = {
    job: `${p}:job:`,
    node: `${p}:node:`,
    jobsByUser: `${p}:jobs:user:`,
    userActive: `${p}:active:user:`,
    queueClass: `${p}:queue:class:`,
  };
  const scriptSuffixes = { nodeJobs: ":jobs", nodeInbox: ":inbox" };
  return {
    prefix: p,
    job: (id) => scriptPrefixes.job + id,
    jobsAll: `${p}:jobs`,
    jobsByUser: (user) => scriptPrefixes.jobsByUser + user,
    nodeJobs: (nodeId) => scriptPrefixes.node + nodeId + scriptSuffixes.nodeJobs,
    expiry: `${p}:jobs:expiry`,
    events: `${p}:events`,
    eventsLast: `${p}:events:last`,
    eventsChannel: `${p}:events:ch`,
    node: (nodeId) => scriptPrefixes.node + nodeId,
    nodes: `${p}:nodes`,
    nodesChannel: `${p}:nodes:ch`,
    nodeInbox: (nodeId) => scriptPrefixes.node + nodeId + scriptSuffixes.nodeInbox,
    userActive: (user) => scriptPrefixes.userActive + user,
    queueClasses: `${p}:queue:classes`,
    queueClass: (classId) => scriptPrefixes.queueClass + classId,
    queueHeads: `${p}:queue:heads`,
    queueSeq: `${p}:queue:seq`,
    idempotency: (user, key) => `${p}:idem:${createHash("sha256").update(`${user}\n${key}`).digest("hex")}`,
    queueChannel: `${p}:queue:ch`,
    scriptPrefixes,
    scriptSuffixes,
  };
}
