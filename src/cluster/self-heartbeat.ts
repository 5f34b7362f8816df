// This node's own record in the fleet: registration under a new epoch, the heartbeat that keeps
// it alive on Redis's clock, and what to do when a heartbeat finds the node was fenced off.
import type { Logger } from "pino";
import { NodeStatus } from "../api/index.js";
import type { RedisClock } from "./redis-clock.js";
import type { NodeScripts } from "./scripts.js";

export interface SelfInfo {
  nodeId: string;
  host: string;
  ipv4: string;
  port: string;
  /** What placement reads from the record: slots (0: no limit), labels and queues. */
  slots: number;
  labels: Record<string, string>;
  queues: string[];
}

export interface SelfHeartbeatOptions {
  offlineAfterMs: number;
  /** How many jobs this node runs now (reported in the record). */
  runningJobs: () => number;
  /**
   * Called when this node finds it was fenced off (declared lost while partitioned) or its
   * record vanished (Redis lost its data): reconcile local processes before re-registering.
   */
  onFenced: (currentEpoch: number) => Promise<void>;
}

export class SelfHeartbeat {
  private epochValue = 0;
  private statusValue: NodeStatus = NodeStatus.Online;
  private lastBeatMs = 0;
  /**
   * Since when (this host's clock) this node's heartbeats have reached Redis without a break;
   * undefined while they fail. Peers' silence is only judged after LOST_AFTER of it.
   */
  private connectedSinceMs: number | undefined;

  constructor(
    private readonly scripts: NodeScripts,
    private readonly self: SelfInfo,
    private readonly clock: RedisClock,
    private readonly opts: SelfHeartbeatOptions,
    private readonly logger: Logger,
  ) {}

  get epoch(): number {
    return this.epochValue;
  }

  get status(): NodeStatus {
    return this.statusValue;
  }

  /** Since when (this host's clock) heartbeats have reached Redis without a break, if they do. */
  get connectedSince(): number | undefined {
    return this.connectedSinceMs;
  }

  /** True when the last heartbeat reached Redis within OFFLINE_AFTER. */
  fresh(): boolean {
    return this.clock.local() - this.lastBeatMs < this.opts.offlineAfterMs;
  }

  /** A heartbeat (or what followed it) failed: the unbroken run of heartbeats starts again. */
  broken(): void {
    this.connectedSinceMs = undefined;
  }

  /** Registers under a new epoch; every write this node makes from now on carries it. */
  async register(): Promise<void> {
    const { epoch, nowMs } = await this.scripts.registerNode(this.self.nodeId, {
      host: this.self.host,
      ipv4: this.self.ipv4,
      port: this.self.port,
      status: this.statusValue,
      runningJobs: this.opts.runningJobs(),
      slots: this.self.slots,
      // JSON, as claim_jobs.lua decodes them.
      labels: JSON.stringify(this.self.labels),
      queues: JSON.stringify(this.self.queues),
    });
    this.epochValue = epoch;
    this.clock.note(nowMs, this.clock.local());
    this.logger.info({ epoch: this.epochValue }, "registered in the fleet");
  }

  /** Changes this node's status (Draining, Offline) and tells the fleet at once. */
  async setStatus(status: NodeStatus): Promise<void> {
    this.statusValue = status;
    await this.beat();
  }

  /** The last heartbeat, with the status this node leaves in; a fenced reply is ignored. */
  async final(status: NodeStatus): Promise<void> {
    this.statusValue = status;
    await this.beatOnce();
  }

  /** A heartbeat; when fenced off, reconciles and registers again. */
  async beat(): Promise<void> {
    const fenced = await this.beatOnce();
    if (fenced === undefined) return;
    this.logger.warn({ epoch: this.epochValue, current: fenced }, "this node was fenced off; reconciling");
    await this.opts.onFenced(fenced);
    await this.register();
  }

  /** One round trip; returns the current epoch when it is no longer ours. */
  private async beatOnce(): Promise<number | undefined> {
    const sent = this.clock.local();
    const beat = await this.scripts.heartbeat(
      { nodeId: this.self.nodeId, epoch: this.epochValue },
      this.statusValue,
      this.opts.runningJobs(),
    );
    this.clock.note(beat.nowMs, sent);
    if (beat.fenced) return beat.epoch;
    const at = this.clock.local();
    if (this.connectedSinceMs === undefined || at - this.lastBeatMs >= this.opts.offlineAfterMs) {
      this.connectedSinceMs = at;
    }
    this.lastBeatMs = at;
    return undefined;
  }
}
