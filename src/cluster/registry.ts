// The node registry: each node's record in Redis, its heartbeat, and every node's view of the
// fleet. Liveness is judged on Redis server time only, so skewed host clocks don't matter.
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { NodeStatus, type NodeView, onlineAt } from "../api/index.js";
import type { JobStore } from "./job-store.js";
import type { Keys } from "./keys.js";
import type { ScriptedRedis } from "./scripts.js";

export interface SelfInfo {
  nodeId: string;
  host: string;
  ipv4: string;
  port: string;
}

export interface RegistryOptions {
  heartbeatMs: number;
  offlineAfterMs: number;
  lostAfterMs: number;
  /** How many jobs this node runs now (reported in the record). */
  runningJobs: () => number;
  /**
   * Called when this node finds it was fenced off (declared lost while partitioned) or its
   * record vanished (Redis lost its data): reconcile local processes before re-registering.
   */
  onFenced: (currentEpoch: number) => Promise<void>;
  /**
   * How often the whole node table is re-read (default 10 heartbeats). Between full reads a node
   * reads only what it needs: one peer's heartbeat when routing to it, the list when asked for it,
   * and the silent nodes when looking for lost ones. Re-reading every node every heartbeat would
   * cost Redis N² entries a second across a fleet of N.
   */
  fullRefreshMs?: number;
  /** This host's clock (tests skew it); only ever compared with itself, never with other hosts. */
  clock?: () => number;
}

interface NodeRecord {
  host: string;
  ipv4: string;
  port: string;
  status: string;
  runningJobs: number;
  epoch: string;
  settledEpoch: string;
  lastSeenMs: number;
  /** When (this host's clock) lastSeenMs was read from Redis. */
  readAt: number;
}

export class Registry {
  private epochValue = 0;
  private statusValue: NodeStatus = NodeStatus.Online;
  private clockOffsetMs = 0;
  private lastBeatMs = 0;
  /**
   * Since when (this host's clock) this node's heartbeats have reached Redis without a break;
   * undefined while they fail. Peers' silence is only judged after LOST_AFTER of it.
   */
  private connectedSinceMs: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private beating: Promise<void> | undefined;
  private readonly table = new Map<string, NodeRecord>();
  private redisLatencyMs = 0;
  private readonly settling = new Set<string>();
  private lastFullRefresh = 0;
  private refreshing: Promise<void> | undefined;
  private readonly clock: () => number;

  constructor(
    private readonly redis: ScriptedRedis,
    private readonly sub: Redis,
    private readonly keys: Keys,
    private readonly store: JobStore,
    private readonly self: SelfInfo,
    private readonly opts: RegistryOptions,
    private readonly logger: Logger,
  ) {
    this.clock = opts.clock ?? Date.now;
  }

  get epoch(): number {
    return this.epochValue;
  }

  get status(): NodeStatus {
    return this.statusValue;
  }

  get latencyMs(): number {
    return this.redisLatencyMs;
  }

  /** This node's estimate of Redis server time (ms), from the offset seen at each heartbeat. */
  nowMs(): number {
    return this.clock() + this.clockOffsetMs;
  }

  /** True when the last heartbeat reached Redis within OFFLINE_AFTER. */
  heartbeatFresh(): boolean {
    return this.clock() - this.lastBeatMs < this.opts.offlineAfterMs;
  }

  async start(): Promise<void> {
    await this.register();
    this.sub.on("message", (channel: string, nodeId: string) => {
      if (channel === this.keys.nodesChannel) void this.refreshNode(nodeId).catch(() => undefined);
    });
    await this.sub.subscribe(this.keys.nodesChannel);
    await this.refreshAll();
    this.schedule();
  }

  /** Registers under a new epoch; every write this node makes from now on carries it. */
  async register(): Promise<void> {
    const [epoch, now] = (await this.redis.registerNode(
      this.keys.node(this.self.nodeId),
      this.keys.nodes,
      this.self.nodeId,
      this.keys.nodesChannel,
      "host",
      this.self.host,
      "ipv4",
      this.self.ipv4,
      "port",
      this.self.port,
      "status",
      this.statusValue,
      "runningJobs",
      this.opts.runningJobs(),
    )) as [number, number];
    this.epochValue = Number(epoch);
    this.noteServerTime(Number(now), this.clock());
    this.logger.info({ epoch: this.epochValue }, "registered in the fleet");
  }

  /** Changes this node's status (Draining, Offline) and tells the fleet at once. */
  async setStatus(status: NodeStatus): Promise<void> {
    this.statusValue = status;
    await this.beat();
  }

  async close(finalStatus: NodeStatus = NodeStatus.Offline): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.beating?.catch(() => undefined);
    this.statusValue = finalStatus;
    await this.beatOnce().catch(() => undefined);
  }

  /** Every node, with lastSeen at most half a heartbeat old (one read of the nodes set if needed). */
  async listNodes(): Promise<NodeView[]> {
    if (this.clock() - this.lastFullRefresh > this.opts.heartbeatMs / 2) await this.refreshAll();
    return this.nodes();
  }

  /** One node with a fresh heartbeat reading (one ZSCORE if the cached one is older than half a beat). */
  async lookup(nodeId: string): Promise<NodeView | undefined> {
    const r = this.table.get(nodeId);
    if (!r) {
      await this.refreshNode(nodeId);
    } else if (this.clock() - r.readAt > this.opts.heartbeatMs / 2) {
      const score = await this.redis.zscore(this.keys.nodes, nodeId);
      if (score === null) this.table.delete(nodeId);
      else if (this.staleRecord(r, Number(score))) await this.refreshNode(nodeId);
      else Object.assign(r, { lastSeenMs: Number(score), readAt: this.clock() });
    }
    return this.view(nodeId);
  }

  /** Every node known to the fleet, sorted by id, as last read (see listNodes for a fresh one). */
  nodes(): NodeView[] {
    return [...this.table.keys()].sort().map((id) => this.view(id)!);
  }

  node(nodeId: string): NodeView | undefined {
    return this.view(nodeId);
  }

  private view(id: string): NodeView | undefined {
    const r = this.table.get(id);
    if (!r) return undefined;
    const lastSeen = new Date(r.lastSeenMs).toISOString();
    return {
      id,
      host: r.host,
      ipv4: r.ipv4,
      port: r.port,
      lastSeen,
      status: r.status,
      online: onlineAt({ status: r.status, lastSeen }, this.nowMs(), this.opts.offlineAfterMs),
      runningJobs: r.runningJobs,
    };
  }

  /** Self-rescheduling (not setInterval): a slow beat never overlaps the next. */
  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.beating = this.tick().finally(() => {
        this.beating = undefined;
        this.schedule();
      });
    }, this.opts.heartbeatMs);
  }

  private async tick(): Promise<void> {
    try {
      await this.beat();
      if (this.clock() - this.lastFullRefresh >= (this.opts.fullRefreshMs ?? 10 * this.opts.heartbeatMs)) {
        await this.refreshAll();
      }
      await this.settleLostNodes();
    } catch (err) {
      this.connectedSinceMs = undefined;
      this.logger.warn({ err: (err as Error).message }, "heartbeat failed");
    }
  }

  private async beat(): Promise<void> {
    const fenced = await this.beatOnce();
    if (fenced === undefined) return;
    this.logger.warn({ epoch: this.epochValue, current: fenced }, "this node was fenced off; reconciling");
    await this.opts.onFenced(fenced);
    await this.register();
  }

  /** One round trip; returns the current epoch when it is no longer ours. */
  private async beatOnce(): Promise<number | undefined> {
    const sent = this.clock();
    const [ok, epoch, now] = (await this.redis.heartbeat(
      this.keys.node(this.self.nodeId),
      this.keys.nodes,
      this.self.nodeId,
      this.epochValue,
      this.keys.nodesChannel,
      this.statusValue,
      this.opts.runningJobs(),
    )) as [number, number, number];
    this.noteServerTime(Number(now), sent);
    if (Number(ok) === 1) {
      const at = this.clock();
      if (this.connectedSinceMs === undefined || at - this.lastBeatMs >= this.opts.offlineAfterMs) {
        this.connectedSinceMs = at;
      }
      this.lastBeatMs = at;
      return undefined;
    }
    return Number(epoch);
  }

  private noteServerTime(serverMs: number, sentMs: number): void {
    const received = this.clock();
    this.redisLatencyMs = received - sentMs;
    // The server read its clock about halfway through the round trip.
    this.clockOffsetMs = serverMs - (sentMs + received) / 2;
  }

  /** Periodic re-read: one sorted-set read for every lastSeen, full records only where needed. */
  refreshAll(): Promise<void> {
    this.refreshing ??= this.readAll().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async readAll(): Promise<void> {
    const readAt = this.clock();
    const flat = await this.redis.zrange(this.keys.nodes, 0, -1, "WITHSCORES");
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
    for (const id of this.table.keys()) if (!seen.has(id)) this.table.delete(id);
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
    const [h, score] = await Promise.all([
      this.redis.hgetall(this.keys.node(nodeId)),
      this.redis.zscore(this.keys.nodes, nodeId),
    ]);
    if (!h.host) {
      this.table.delete(nodeId);
      return;
    }
    this.table.set(nodeId, {
      host: h.host,
      ipv4: h.ipv4 ?? "",
      port: h.port ?? "",
      status: h.status ?? NodeStatus.Offline,
      runningJobs: Number(h.runningJobs ?? 0),
      epoch: h.epoch ?? "0",
      settledEpoch: h.settledEpoch ?? "",
      lastSeenMs: Number(score ?? h.lastSeenMs ?? 0),
      readAt: this.clock(),
    });
  }

  /** Nodes silent past LOST_AFTER and not yet settled: the script decides, exactly once. */
  private async settleLostNodes(): Promise<void> {
    // After a Redis outage (a restart, a failover) every node's last heartbeat looks old, because
    // nobody could beat. Judge peers only once this node has itself been reaching Redis for
    // LOST_AFTER, so live peers have had the same time to reconnect and beat again.
    const since = this.connectedSinceMs;
    if (since === undefined || this.clock() - since < this.opts.lostAfterMs) return;
    const now = this.nowMs();
    // Only the silent nodes are read: a range of the nodes set, usually empty.
    const silent = await this.redis.zrangebyscore(
      this.keys.nodes,
      "-inf",
      now - this.opts.lostAfterMs,
      "WITHSCORES",
    );
    for (let i = 0; i < silent.length; i += 2) {
      const id = silent[i]!;
      if (id === this.self.nodeId || this.settling.has(id)) continue;
      let r = this.table.get(id);
      if (!r || r.lastSeenMs !== Number(silent[i + 1])) {
        await this.refreshNode(id);
        r = this.table.get(id);
      }
      if (!r || r.epoch === r.settledEpoch) continue;
      if (now - r.lastSeenMs < this.opts.lostAfterMs) continue;
      this.settling.add(id);
      try {
        const message = `Node ${id} was lost: no heartbeat for ${Math.round((now - r.lastSeenMs) / 1000)} s`;
        const n = await this.store.settleLost(
          id,
          this.opts.lostAfterMs,
          message,
          new Date(now).toISOString(),
        );
        if (n >= 0) this.logger.warn({ lostNode: id, settledJobs: n }, "settled a lost node's jobs");
        await this.refreshNode(id);
      } finally {
        this.settling.delete(id);
      }
    }
  }
}
