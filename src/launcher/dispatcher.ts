// How jobs reach this node after submission: peers place jobs in its inbox (create_job.lua), and
// it claims jobs from the fleet queue whenever it has a free slot (claim_jobs.lua). Both are
// triggered by a notice on the queue channel, by a job of this node ending, and by a periodic
// sweep, because pub/sub is at-most-once and a missed notice must never strand a job.
//
// A job ending does not claim while the fleet queue is known to be empty: the last claim found it
// empty and no "queued" notice came since (every script that queues a job publishes one). That
// spares a script call per job when nothing waits; a notice lost with its connection costs a
// queued job at most one sweep, since the sweep always claims.
import type { Logger } from "pino";
import type { JobStore } from "../cluster/job-store.js";
import type { QueueNotices } from "../cluster/queue-notices.js";
import type { Registry } from "../cluster/registry.js";
import type { Via } from "./job-manager.js";

/** At most this many jobs per claim (one script call): a burst is taken in a few calls, not one long one. */
const CLAIM_BATCH = 64;

export interface DispatcherOptions {
  nodeId: string;
  perUserCap: number;
  offlineAfterMs: number;
  /** How often the inbox and the queue are checked without a notice. */
  sweepMs: number;
}

/** What the dispatcher drives: the node's job manager. */
export interface JobStarter {
  freeSlots(): number;
  startJobs(ids: readonly string[], via: Via): void;
}

/** A job claimed from the queue, after how long (s) it waited. */
export type WaitObserver = (seconds: number) => void;

/** Runs one task at a time; a request while it runs makes it run once more afterwards. */
class Serial {
  private running: Promise<void> | undefined;
  private again = false;

  constructor(private readonly task: () => Promise<void>) {}

  request(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.task();
      } while (this.again);
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }
}

export class Dispatcher {
  private readonly takeTask = new Serial(() => this.takeInbox());
  private readonly claimTask = new Serial(() => this.claimQueued());
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /**
   * The last claim found the fleet queue empty, and no "queued" notice arrived since. A notice that
   * arrives while a claim runs makes the claim run once more (Serial), and that one decides.
   */
  private queueEmpty = false;

  constructor(
    private readonly store: JobStore,
    private readonly registry: Registry,
    private readonly notices: QueueNotices,
    private readonly jobs: JobStarter,
    private readonly opts: DispatcherOptions,
    private readonly logger: Logger,
    private readonly observeWait: WaitObserver = () => undefined,
  ) {}

  async start(): Promise<void> {
    await this.notices.listen((notice) => {
      if (notice.kind === "queued") {
        this.queueEmpty = false;
        this.wake();
      } else if (notice.nodeId === this.opts.nodeId) this.wakeInbox();
    });
    this.schedule();
    await Promise.all([this.takeTask.request(), this.claimTask.request()]);
  }

  /** Checks the inbox (a peer placed a job here). */
  wakeInbox(): void {
    if (!this.stopped) void this.takeTask.request();
  }

  /**
   * Claims from the fleet queue if this node has a free slot (a job ended, or jobs were queued),
   * unless the queue is known to be empty (see the top of this file).
   */
  wake(): void {
    if (!this.stopped && !this.queueEmpty && this.jobs.freeSlots() > 0) void this.claimTask.request();
  }

  /** Draining: jobs peers placed here and that never started go back to the fleet queue. */
  async release(): Promise<number> {
    const owner = { nodeId: this.opts.nodeId, epoch: this.registry.epoch };
    const nowIso = new Date(this.registry.nowMs()).toISOString();
    const n = await this.store.releaseInbox(
      owner,
      `Queued again: node ${this.opts.nodeId} is draining and had not started the job`,
      nowIso,
    );
    if (n > 0) this.logger.info({ released: n }, "draining: gave jobs placed here back to the fleet queue");
    return n;
  }

  async close(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.notices.close();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.wakeInbox();
      this.queueEmpty = false; // the sweep asks anyway: a notice may have been lost
      this.wake();
      this.schedule();
    }, this.opts.sweepMs);
    this.timer.unref();
  }

  private owner() {
    return { nodeId: this.opts.nodeId, epoch: this.registry.epoch };
  }

  private async takeInbox(): Promise<void> {
    try {
      const ids = await this.store.takeInbox(this.owner());
      if (ids.length > 0) this.jobs.startJobs(ids, "direct");
    } catch (err) {
      // A fenced or unreachable node starts nothing; the sweep tries again after it re-registers.
      this.logger.warn({ err: (err as Error).message }, "could not take the jobs placed on this node");
    }
  }

  private async claimQueued(): Promise<void> {
    for (;;) {
      const free = this.jobs.freeSlots();
      if (free <= 0 || this.stopped) return;
      const max = Math.min(free, CLAIM_BATCH);
      let result: Awaited<ReturnType<JobStore["claim"]>>;
      try {
        result = await this.store.claim({
          node: this.owner(),
          max,
          perUserCap: this.opts.perUserCap,
          offlineAfterMs: this.opts.offlineAfterMs,
          nowIso: new Date(this.registry.nowMs()).toISOString(),
          statusMessage: `Starting on node ${this.opts.nodeId}`,
        });
      } catch (err) {
        this.logger.warn({ err: (err as Error).message }, "could not claim jobs from the fleet queue");
        return;
      }
      this.queueEmpty = result.queueEmpty;
      const { claimed } = result;
      if (claimed.length === 0) return;
      const now = this.registry.nowMs();
      for (const c of claimed) this.observeWait(Math.max(0, now - c.queuedMs) / 1000);
      this.jobs.startJobs(
        claimed.map((c) => c.id),
        "queue",
      );
      if (claimed.length < max) return;
    }
  }
}
