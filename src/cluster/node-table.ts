// Every node's view of the fleet: a cache of the Node records, kept fresh cheaply. Notices on the
// nodes channel bring joins and status changes at once; the heartbeats in the nodes zset are
// re-read in full only every few beats, and otherwise one node or one list at a time on demand.
import type { Redis } from "ioredis";
import { NodeStatus, type NodeView, onlineAtMs } from "../api/index.js";
import type { Keys } from "./keys.js";
import { whileAvailable } from "./redis.js";
import type { RedisClock } from "./redis-clock.js";

export interface NodeTableOptions {
  heartbeatMs: number;
  offlineAfterMs: number;
  /**
   * How often the whole node table is re-read (default: every `fullRefreshBeats(N)` heartbeats).
   * Between full reads a node reads only what it needs: one peer's heartbeat when routing to it, the
   * list when asked for it, and the silent nodes when looking for lost ones.
   */
  fullRefreshMs?: number;
}

/**
 * Heartbeats between a node's full re-reads of a table of `nodes` nodes: 10 in a fleet of up to 100,
 * then N/10. A re-read reads N entries and N nodes re-read, so a fixed period would cost Redis N²
 * entries per period across the fleet (10,000 nodes every 10 beats: 2.3 Redis cores); N/10 keeps it
 * at 10·N entries a beat (10,000 nodes: ~3% of one core). Joins and status changes come at once as
 * notices, routing reads the owner's heartbeat itself, and a reconnected subscriber re-reads in
 * full, so the periodic re-read is only the net under a notice lost some other way.
 */
export function fullRefreshBeats(nodes: number): number {
  return Math.max(10, Math.ceil(nodes / 10));
}

/** A node's record as last read. */
export interface NodeRecord {
  host: string;
  ipv4: string;
  port: string;
  status: string;
  runningJobs: number;
  slots: number;
  labels: Record<string, string>;
  queues: string[];
  epoch: string;
  settledEpoch: string;
  lastSeenMs: number;
  /** When (this host's clock) lastSeenMs was read from Redis. */
  readAt: number;
}

/** What placement and the cluster info read of a node: no heartbeat, so no per-call work. */
export type PlacementRecord = Readonly<Pick<NodeView, "id" | "status" | "queues" | "labels">>;

export class NodeTable {
  private readonly table = new Map<string, NodeRecord>();
  /** Bumped whenever a record is set or removed (joins, leaves, notices), never by a heartbeat. */
  private version = 0;
  private placement: { version: number; nodes: readonly PlacementRecord[] } | undefined;
  private lastFullRefresh = 0;
  private refreshing: Promise<void> | undefined;
  private readonly listeners = new Set<(nodeId: string) => void>();

  constructor(
    private readonly redis: Redis,
    private readonly sub: Redis,
    private readonly keys: Keys,
    private readonly clock: RedisClock,
    private readonly opts: NodeTableOptions,
  ) {}

  /** Listens for notices, then reads the whole table once. */
  async start(): Promise<void> {
    this.sub.on("message", (channel: string, nodeId: string) => {
      if (channel !== this.keys.nodesChannel) return;
      void this.refreshNode(nodeId)
        .then(() => {
          for (const fn of this.listeners) fn(nodeId);
        })
        .catch(() => undefined);
    });
    // Notices sent while the subscriber was away are lost (pub/sub is at-most-once): re-read.
    this.sub.on("ready", () => void this.refreshAll().catch(() => undefined));
    await this.sub.subscribe(this.keys.nodesChannel);
    await this.refreshAll();
  }

  /** Calls `fn` with a node's id after a notice about it (join, leave, status) was read; returns the unsubscribe. */
  onChange(fn: (nodeId: string) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Every node, with lastSeen at most half a heartbeat old (one read of the nodes set if needed). */
  async listNodes(): Promise<NodeView[]> {
    await this.refreshIfStale();
    return [...this.table.keys()].sort().map((id) => this.view(id, true)!);
  }

  /** One node with a fresh heartbeat reading (one ZSCORE if the cached one is older than half a beat). */
  async lookup(nodeId: string): Promise<NodeView | undefined> {
    const r = this.table.get(nodeId);
    if (!r) {
      await this.refreshNode(nodeId);
    } else if (this.clock.local() - r.readAt > this.opts.heartbeatMs / 2) {
      const score = await whileAvailable(this.redis.zscore(this.keys.nodes, nodeId));
      if (score === null) this.drop(nodeId);
      else if (this.staleRecord(r, Number(score))) await this.refreshNode(nodeId);
      else Object.assign(r, { lastSeenMs: Number(score), readAt: this.clock.local() });
    }
    return this.view(nodeId);
  }

  /** Changes with every change of the table's records (not their heartbeats): a cache key. */
  get changes(): number {
    return this.version;
  }

  /**
   * Every node's id, status, queues and labels, sorted by id, as last read: one array, rebuilt only
   * when the table changed. Every submission reads it (placement, the cluster info's default queue);
   * building the nodes' full views each time cost ~10 ms of CPU per job in a fleet of 1,000.
   */
  placementNodes(): readonly PlacementRecord[] {
    if (this.placement?.version !== this.version) {
      const nodes = [...this.table.entries()]
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([id, r]) => Object.freeze({ id, status: r.status, queues: r.queues, labels: r.labels }));
      this.placement = { version: this.version, nodes: Object.freeze(nodes) };
    }
    return this.placement.nodes;
  }

  /**
   * How many nodes are known and how many are online (onlineAt's rule), as last read: counted from
   * the records, no view built. Every health check asks (HAProxy's, twice a second per node); building
   * every node's view for it cost ~0.1 s of CPU per check at 10,000 nodes.
   */
  counts(): { online: number; total: number } {
    const now = this.clock.nowMs();
    let online = 0;
    for (const r of this.table.values()) {
      if (onlineAtMs(r.status, r.lastSeenMs, now, this.opts.offlineAfterMs)) online++;
    }
    return { online, total: this.table.size };
  }

  /** counts() after a re-read of every heartbeat, if the last is older than half a beat. */
  async freshCounts(): Promise<{ online: number; total: number }> {
    await this.refreshIfStale();
    return this.counts();
  }

  /** A full re-read when the last one is older than half a heartbeat. */
  private async refreshIfStale(): Promise<void> {
    if (this.clock.local() - this.lastFullRefresh > this.opts.heartbeatMs / 2) await this.refreshAll();
  }

  /** Every node known to the fleet, sorted by id, as last read (see listNodes for a fresh one). */
  nodes(): NodeView[] {
    return [...this.table.keys()].sort().map((id) => this.view(id)!);
  }

  node(nodeId: string): NodeView | undefined {
    return this.view(nodeId);
  }

  /** The raw record as last read (for settlement, which needs the epochs). */
  record(nodeId: string): Readonly<NodeRecord> | undefined {
    return this.table.get(nodeId);
  }

  /**
   * A node's view. `judged` (fresh reads only): a node silent past OFFLINE_AFTER, whose record still
   * says Online or Draining (it could not say otherwise: it died, or it drained and left), is shown
   * Offline, so `status` and `online` never contradict each other. Views from the cache keep the recorded status: a cached heartbeat may be
   * older than OFFLINE_AFTER while the node is fine, and placement only skips nodes known to be
   * Draining or Offline (the scripts check heartbeats themselves).
   */
  private view(id: string, judged = false): NodeView | undefined {
    const r = this.table.get(id);
    if (!r) return undefined;
    const lastSeen = new Date(r.lastSeenMs).toISOString();
    // The record's epoch ms, not lastSeen parsed back: every forwarded request looks its owner up.
    const online = onlineAtMs(r.status, r.lastSeenMs, this.clock.nowMs(), this.opts.offlineAfterMs);
    return {
      id,
      host: r.host,
      ipv4: r.ipv4,
      port: r.port,
      lastSeen,
      status: judged && !online && this.silent(r) ? NodeStatus.Offline : r.status,
      online,
      runningJobs: r.runningJobs,
      slots: r.slots,
      labels: r.labels,
      queues: r.queues,
    };
  }

  /** Whether a node's last heartbeat is older than OFFLINE_AFTER (Redis time). */
  private silent(r: NodeRecord): boolean {
    return this.clock.nowMs() - r.lastSeenMs >= this.opts.offlineAfterMs;
  }

  /** The periodic full re-read, when it is due (every heartbeat tick asks). */
  async refreshIfDue(): Promise<void> {
    const every = this.opts.fullRefreshMs ?? fullRefreshBeats(this.table.size) * this.opts.heartbeatMs;
    if (this.clock.local() - this.lastFullRefresh >= every) await this.refreshAll();
  }

  /** Periodic re-read: one sorted-set read for every lastSeen, full records only where needed. */
  refreshAll(): Promise<void> {
    this.refreshing ??= this.readAll().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async readAll(): Promise<void> {
    const readAt = this.clock.local();
    const flat = await whileAvailable(this.redis.zrange(this.keys.nodes, 0, -1, "WITHSCORES"));
    const seen = new Set<string>();
    const toRead: string[] = []; // new ids, and records to re-read (see staleRecord)
    for (let i = 0; i < flat.length; i += 2) {
      const id = flat[i]!;
      seen.add(id);
      const r = this.table.get(id);
      if (r && !this.staleRecord(r, Number(flat[i + 1])))
        Object.assign(r, { lastSeenMs: Number(flat[i + 1]), readAt });
      else toRead.push(id);
    }
    for (const id of [...this.table.keys()]) if (!seen.has(id)) this.drop(id);
    await Promise.all(toRead.map((id) => this.refreshNode(id)));
    this.lastFullRefresh = readAt;
  }

  /**
   * A node we last saw not Online whose heartbeat has moved on: it came back (or keeps draining),
   * so its record is re-read. Notices tell peers of status changes, but pub/sub is at-most-once, so
   * a missed notice must not leave a returned node looking Offline for ever.
   */
  private staleRecord(r: NodeRecord, lastSeenMs: number): boolean {
    return r.status !== NodeStatus.Online && lastSeenMs > r.lastSeenMs;
  }

  async refreshNode(nodeId: string): Promise<void> {
    // Requests route through lookup(): a Redis that is away is their 503 code 4, not a 500.
    const [h, score] = await whileAvailable(
      Promise.all([this.redis.hgetall(this.keys.node(nodeId)), this.redis.zscore(this.keys.nodes, nodeId)]),
    );
    if (!h.host) {
      this.drop(nodeId);
      return;
    }
    this.put(nodeId, {
      host: h.host,
      ipv4: h.ipv4 ?? "",
      port: h.port ?? "",
      status: h.status ?? NodeStatus.Offline,
      runningJobs: Number(h.runningJobs ?? 0),
      slots: Number(h.slots ?? 0),
      labels: parseJson(h.labels, {}),
      queues: parseJson(h.queues, []),
      epoch: h.epoch ?? "0",
      settledEpoch: h.settledEpoch ?? "",
      lastSeenMs: Number(score ?? h.lastSeenMs ?? 0),
      readAt: this.clock.local(),
    });
  }

  private put(nodeId: string, record: NodeRecord): void {
    this.table.set(nodeId, record);
    this.version++;
  }

  private drop(nodeId: string): void {
    if (this.table.delete(nodeId)) this.version++;
  }
}

/** A JSON field of a node record; `fallback` when missing (records of older nodes) or unreadable. */
function parseJson<T>(text: string | undefined, fallback: T): T {
  if (!text) return fallback;
  try {
    return JSON.parse(text) as T;
  } catch {
    return fallback;
  }
}
