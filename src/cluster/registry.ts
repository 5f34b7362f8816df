// The node registry: each node's record in Redis, its heartbeat, and every node's view of the
// fleet. Liveness is judged on Redis server time only, so skewed host clocks don't matter.
// Composed of one part per job: RedisClock (the estimate of Redis time), SelfHeartbeat (this
// node's record and epoch), NodeTable (the cached view of every node) and LostNodeSettlement
// (failing the jobs of silent peers). The Registry runs the heartbeat tick that drives them.
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { NodeStatus, type NodeView } from "../api/index.js";
import type { JobStore } from "./job-store.js";
import type { Keys } from "./keys.js";
import { LostNodeSettlement } from "./lost-nodes.js";
import { NodeTable, type NodeTableOptions, type PlacementRecord } from "./node-table.js";
import { RedisClock } from "./redis-clock.js";
import { NodeScripts, type ScriptedRedis } from "./scripts.js";
import { SelfHeartbeat, type SelfHeartbeatOptions, type SelfInfo } from "./self-heartbeat.js";

export type { SelfInfo } from "./self-heartbeat.js";

export interface RegistryOptions extends SelfHeartbeatOptions, NodeTableOptions {
  lostAfterMs: number;
  /** This host's clock (tests skew it); only ever compared with itself, never with other hosts. */
  clock?: () => number;
}

/** What the registry talks to: the command and subscriber connections, and the job store. */
export interface RegistryDeps {
  redis: ScriptedRedis;
  sub: Redis;
  keys: Keys;
  /** Settles a lost node's jobs (the store words and trims the status message). */
  store: Pick<JobStore, "settleLost">;
  logger: Logger;
}

export class Registry {
  private readonly clock: RedisClock;
  private readonly heart: SelfHeartbeat;
  private readonly table: NodeTable;
  private readonly lost: LostNodeSettlement;
  private readonly logger: Logger;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private beating: Promise<void> | undefined;

  constructor(
    deps: RegistryDeps,
    self: SelfInfo,
    private readonly opts: RegistryOptions,
  ) {
    const { redis, sub, keys, store, logger } = deps;
    this.clock = new RedisClock(opts.clock);
    this.heart = new SelfHeartbeat(new NodeScripts(redis, keys), self, this.clock, opts, logger);
    this.table = new NodeTable(redis, sub, keys, this.clock, opts);
    this.lost = new LostNodeSettlement({
      redis,
      keys,
      table: this.table,
      store,
      clock: this.clock,
      connectedSince: () => this.heart.connectedSince,
      selfId: self.nodeId,
      lostAfterMs: opts.lostAfterMs,
      logger,
    });
    this.logger = logger;
  }

  get epoch(): number {
    return this.heart.epoch;
  }

  get status(): NodeStatus {
    return this.heart.status;
  }

  get latencyMs(): number {
    return this.clock.latencyMs;
  }

  /** This node's estimate of Redis server time (ms), from the offset seen at each heartbeat. */
  nowMs(): number {
    return this.clock.nowMs();
  }

  /** True when the last heartbeat reached Redis within OFFLINE_AFTER. */
  heartbeatFresh(): boolean {
    return this.heart.fresh();
  }

  async start(): Promise<void> {
    await this.heart.register();
    await this.table.start();
    this.schedule();
  }

  /** Registers under a new epoch; every write this node makes from now on carries it. */
  register(): Promise<void> {
    return this.heart.register();
  }

  /** Changes this node's status (Draining, Offline) and tells the fleet at once. */
  setStatus(status: NodeStatus): Promise<void> {
    return this.heart.setStatus(status);
  }

  async close(finalStatus: NodeStatus = NodeStatus.Offline): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.beating?.catch(() => undefined);
    await this.heart.final(finalStatus).catch(() => undefined);
  }

  /** Every node, with lastSeen at most half a heartbeat old (one read of the nodes set if needed). */
  listNodes(): Promise<NodeView[]> {
    return this.table.listNodes();
  }

  /** Calls `fn` after each notice of a node's change (join, leave, status); returns the unsubscribe. */
  onNodeChange(fn: (nodeId: string) => void): () => void {
    return this.table.onChange(fn);
  }

  get heartbeatMs(): number {
    return this.opts.heartbeatMs;
  }

  /** One node with a fresh heartbeat reading (one ZSCORE if the cached one is older than half a beat). */
  lookup(nodeId: string): Promise<NodeView | undefined> {
    return this.table.lookup(nodeId);
  }

  /** How many nodes are known and online: as last read, or (`fresh`) after a re-read if due. */
  fleetCounts(fresh = false): Promise<{ online: number; total: number }> {
    return fresh ? this.table.freshCounts() : Promise.resolve(this.table.counts());
  }

  /** Every node known to the fleet, sorted by id, as last read (see listNodes for a fresh one). */
  nodes(): NodeView[] {
    return this.table.nodes();
  }

  node(nodeId: string): NodeView | undefined {
    return this.table.node(nodeId);
  }

  /** Every node's id, status, queues and labels as last read; the same array until the table changes. */
  placementNodes(): readonly PlacementRecord[] {
    return this.table.placementNodes();
  }

  /** Changes whenever a node joins, leaves or changes status, queues or labels: a cache key. */
  get nodeChanges(): number {
    return this.table.changes;
  }

  /** Periodic re-read: one sorted-set read for every lastSeen, full records only where needed. */
  refreshAll(): Promise<void> {
    return this.table.refreshAll();
  }

  refreshNode(nodeId: string): Promise<void> {
    return this.table.refreshNode(nodeId);
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
      await this.heart.beat();
      await this.table.refreshIfDue();
      await this.lost.settle();
    } catch (err) {
      this.heart.broken();
      this.logger.warn({ err: (err as Error).message }, "heartbeat failed");
    }
  }
}
