// Removing a node's terminal jobs (and their saved output) LAUNCHER_JOB_EXPIRY_HOURS after they
// ended: a self-rescheduling sweep, in batches so one sweep never holds thousands of jobs.
import { rm } from "node:fs/promises";
import type { Logger } from "pino";
import type { JobStore } from "../cluster/job-store.js";
import type { Registry } from "../cluster/registry.js";
import type { LocalRunner } from "../runner/index.js";

export interface ExpiryOptions {
  nodeId: string;
  jobExpiryHours: number;
}

const BATCH = 500;

export class JobExpiry {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: JobStore,
    private readonly registry: Registry,
    private readonly runner: LocalRunner,
    private readonly opts: ExpiryOptions,
    private readonly logger: Logger,
  ) {}

  /** Sweeps soon, then every `intervalMs`, until stop(). */
  start(intervalMs = 60_000): void {
    const run = async () => {
      await this.sweep();
      this.schedule(run, intervalMs);
    };
    this.schedule(run, Math.min(intervalMs, 1_000));
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(fn: () => Promise<void>, ms: number): void {
    this.timer = setTimeout(fn, ms);
    this.timer.unref();
  }

  /** One sweep: every expired job of this node, its output files and output record. */
  async sweep(): Promise<void> {
    try {
      const cutoff = this.registry.nowMs() - this.opts.jobExpiryHours * 3_600_000;
      for (;;) {
        const removed = await this.store.expire(cutoff, this.opts.nodeId, BATCH);
        for (const { id, files } of removed) {
          this.runner.removeLegacyOutputRecord(id);
          await Promise.all(files.map((f) => rm(f, { force: true })));
        }
        if (removed.length) this.logger.info({ removed: removed.length }, "expired jobs removed");
        if (removed.length < BATCH) break;
      }
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, "job expiry failed");
    }
  }
}
