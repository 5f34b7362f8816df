// The jobs a node holds back while it runs as many as LAUNCHER_MAX_RUNNING_JOBS allows. The fleet
// gives a node no more jobs than it has slots (create_job.lua, claim_jobs.lua count them in Redis),
// so this only holds a job for the moment between a slot freeing in Redis and the exited process
// being forgotten here, and re-launches after a restart.

/** Pending jobs waiting for a free slot on this node, oldest first. */
export class SlotQueue {
  private readonly waiting: string[] = [];

  /**
   * @param limit  slots (0 = no limit)
   * @param busy   slots in use now: running jobs and launches under way
   */
  constructor(
    private readonly limit: number,
    private readonly busy: () => number,
  ) {}

  get size(): number {
    return this.waiting.length;
  }

  push(...ids: string[]): void {
    this.waiting.push(...ids);
  }

  /** Takes a job off the queue (it was canceled); false when it was not waiting. */
  remove(id: string): boolean {
    const at = this.waiting.indexOf(id);
    if (at >= 0) this.waiting.splice(at, 1);
    return at >= 0;
  }

  /**
   * Takes the next job that may start now, or undefined. The caller must count it as busy before
   * asking again (the manager marks it launching at once).
   */
  next(): string | undefined {
    if (this.waiting.length === 0) return undefined;
    if (this.limit !== 0 && this.busy() >= this.limit) return undefined;
    return this.waiting.shift();
  }
}
