// The jobs a node holds back while it runs as many as LAUNCHER_MAX_RUNNING_JOBS allows.

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
