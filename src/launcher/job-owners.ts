// Who owns a job and whose job it is, remembered per job id so that routing an owner-only request
// needs no Redis read once the job has been located.
//
// Safe to remember because, once its owner may have started the job (`launching`, set when it is
// placed on the receiving node, taken from an inbox or claimed), neither fact changes while the job
// exists: `update_job` refuses a writer that is not the owner and never touches `owner`/`user`,
// `settle_lost` turns such jobs Failed (they keep their owner; only never-started jobs go back to the
// fleet queue and change owner, and those are not remembered), `expire_jobs` deletes the whole hash,
// and job ids are never reused (time + 40 random bits, `newJobId`). A remembered
// entry can therefore only outlive its job, never point at the wrong node or user; whoever serves
// the request (the owner, or this node's route when the owner is this node) reads the job itself
// and answers for it, and callers read Redis again whenever the owner cannot be asked.

/** The immutable part of a job's record. */
export interface JobOwner {
  owner: string;
  user: string;
}

export class JobOwners {
  private readonly entries = new Map<string, JobOwner>();

  /** `maxEntries` bounds memory; the oldest entry goes first (a job located again comes back). */
  constructor(private readonly maxEntries: number) {}

  get(id: string): JobOwner | undefined {
    return this.entries.get(id);
  }

  remember(id: string, entry: JobOwner): void {
    if (this.entries.has(id)) return;
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(id, entry);
  }

  get size(): number {
    return this.entries.size;
  }
}
