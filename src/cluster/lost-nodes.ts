// Lost-node settlement: each heartbeat tick, a node looks for peers silent past LOST_AFTER and asks
// the settle_lost script to fail their unfinished jobs. The script decides, so exactly one
// settlement happens however many peers try.
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { JobStore } from "./job-store.js";
import type { Keys } from "./keys.js";
import type { NodeTable } from "./node-table.js";
import type { RedisClock } from "./redis-clock.js";

export interface LostNodeSettlementDeps {
  redis: Redis;
  keys: Keys;
  table: NodeTable;
  store: Pick<JobStore, "settleLost">;
  clock: RedisClock;
  /** Since when (local clock) this node's own heartbeats have reached Redis without a break. */
  connectedSince: () => number | undefined;
  selfId: string;
  lostAfterMs: number;
  logger: Logger;
}

export class LostNodeSettlement {
  private readonly settling = new Set<string>();

  constructor(private readonly d: LostNodeSettlementDeps) {}

  /** Nodes silent past LOST_AFTER and not yet settled: the script decides, exactly once. */
  async settle(): Promise<void> {
    // After a Redis outage (a restart, a failover) every node's last heartbeat looks old, because
    // nobody could beat. Judge peers only once this node has itself been reaching Redis for
    // LOST_AFTER, so live peers have had the same time to reconnect and beat again.
    const since = this.d.connectedSince();
    if (since === undefined || this.d.clock.local() - since < this.d.lostAfterMs) return;
    const now = this.d.clock.nowMs();
    for (const [id, lastSeenMs] of await this.silentNodes(now)) {
      if (id === this.d.selfId || this.settling.has(id)) continue;
      this.settling.add(id);
      try {
        await this.settleOne(id, lastSeenMs, now);
      } finally {
        this.settling.delete(id);
      }
    }
  }

  /** Only the silent nodes are read: a range of the nodes set, usually empty. */
  private async silentNodes(now: number): Promise<[string, number][]> {
    const redis = this.d.redis;
    const flat = await redis.zrangebyscore(this.d.keys.nodes, "-inf", now - this.d.lostAfterMs, "WITHSCORES");
    const out: [string, number][] = [];
    for (let i = 0; i < flat.length; i += 2) out.push([flat[i]!, Number(flat[i + 1])]);
    return out;
  }

  private async settleOne(id: string, lastSeenMs: number, now: number): Promise<void> {
    const { table } = this.d;
    let r = table.record(id);
    if (!r || r.lastSeenMs !== lastSeenMs) {
      await table.refreshNode(id);
      r = table.record(id);
    }
    if (!r || r.epoch === r.settledEpoch) return;
    if (now - r.lastSeenMs < this.d.lostAfterMs) return;
    const message = `Node ${id} was lost: no heartbeat for ${Math.round((now - r.lastSeenMs) / 1000)} s`;
    const done = await this.d.store.settleLost(id, this.d.lostAfterMs, message, new Date(now).toISOString());
    if (typeof done === "object") {
      this.d.logger.warn(
        { lostNode: id, failedJobs: done.failed, requeuedJobs: done.requeued },
        "settled a lost node's jobs: running ones failed, never-started ones back in the fleet queue",
      );
    }
    await table.refreshNode(id);
  }
}
