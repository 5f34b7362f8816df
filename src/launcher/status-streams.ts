// Status streams (GET /jobs/{id}/status, the plugin's job status stream): live events from the status
// bus, after a snapshot or a replay from `since`, per job in order and never twice. What waits for a
// slow client counts against the stream's budget (LAUNCHER_STREAM_BUFFER_BYTES).
import { ApiError, ErrCode, isWildcard, type Job, JobStatus, terminalStatus } from "../api/index.js";
import { compareEventIds, isEventId } from "../cluster/event-id.js";
import type { JobStore, StoredJob } from "../cluster/job-store.js";
import type { BusEvent, StatusBus } from "../cluster/status-bus.js";
import type { Caller, StatusStreamItem, StatusStreamOptions } from "./port.js";
import { AsyncQueue } from "./queue.js";

type StatusEventItem = Exclude<StatusStreamItem, { resync: true }>;

/** The API's listing order: by id, compared as strings. */
export function byId(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * A bus event as clients see it: no internal `ver`/`user`, and `name` always there (`""` for a job
 * without one), as the Launcher sends it.
 */
function publicEvent(ev: BusEvent): StatusEventItem {
  const { ver: _v, user: _u, ...rest } = ev; // a new object: `name` may be set on it
  rest.name ??= "";
  return rest as StatusEventItem;
}

async function* once<T>(item: T): AsyncIterable<T> {
  yield item;
}

/**
 * About the bytes a queued status event stands for: its strings as the stream line will carry them,
 * plus the JSON around them. (Every string field of an event is bounded: name and user by the
 * submission limits, statusMessage by the store.)
 */
function queuedBytes(ev: BusEvent | "resync"): number {
  if (ev === "resync") return 32;
  return (
    128 +
    ev.eventId.length +
    ev.id.length +
    ev.status.length +
    (ev.name?.length ?? 0) +
    (ev.statusCode?.length ?? 0) +
    (ev.statusMessage?.length ?? 0) +
    (ev.lastUpdateTime?.length ?? 0)
  );
}

function snapshotEvent(job: Job, eventId: string): StatusEventItem {
  return {
    eventId,
    id: job.id,
    name: job.name ?? "",
    status: (job.status ?? JobStatus.Pending) as JobStatus,
    ...(job.statusCode ? { statusCode: job.statusCode } : {}),
    ...(job.statusMessage ? { statusMessage: job.statusMessage } : {}),
    ...(job.lastUpdateTime ? { lastUpdateTime: job.lastUpdateTime } : {}),
  };
}

/**
 * Whether the job has had no event after `since` (its hash records its newest). Then a stream of it
 * resumed there need not read the fleet's events stream from `since`, which for a job quiet for
 * long is most of it: clients reconnecting quiet jobs' streams did that on every reconnect, and
 * under a chaos run's reconnect rate it starved nodes and Redis alike. Read after listening, so an
 * event after the read arrives live.
 */
function quietSince(stored: StoredJob, since: string): boolean {
  return stored.lastEventId !== undefined && compareEventIds(stored.lastEventId, since) <= 0;
}

export class StatusStreams {
  constructor(
    private readonly store: JobStore,
    private readonly bus: StatusBus,
    /** The job if the caller may see it, else JobNotFound. */
    private readonly visibleJob: (caller: Caller, id: string) => Promise<StoredJob>,
  ) {}

  /**
   * A status stream: for one job, or every job in the caller's scope (`*`). Replays from `since`
   * (or starts with a snapshot), then follows live events, never one twice, per-job order kept.
   */
  async *open(caller: Caller, id: string, opts: StatusStreamOptions): AsyncIterable<StatusStreamItem> {
    const one = !isWildcard(id);
    if (one && opts.since === undefined) await this.visibleJob(caller, id);
    const inScope = (ev: { id: string; user: string }) =>
      one ? ev.id === id : caller.admin || ev.user === caller.user;
    // Listen first, then read history or the snapshot, so nothing falls between the two. What
    // waits here for a slow client counts against the stream's budget, with what its connection
    // holds unread: past the limit the queue lets go of it all and the writer ends the stream.
    const { budget } = opts;
    const live = new AsyncQueue<BusEvent | "resync">(
      opts.signal,
      budget && {
        sizeOf: queuedBytes,
        fits: (bytes) => bytes + budget.unread() <= budget.limit,
        overflow: () => budget.exceeded(),
      },
    );
    const scope = one ? { jobId: id } : caller.admin ? ("all" as const) : { user: caller.user };
    const stopListening = this.bus.listen(scope, (ev) => live.push(ev));
    const stopResync = this.bus.onResync(() => live.push("resync"));
    const lastVer = new Map<string, number>();
    try {
      let cursor: string;
      let since = opts.since;
      if (since !== undefined && !isEventId(since)) {
        throw new ApiError(ErrCode.InvalidRequest, `since: "${since}" is not an event id`);
      }
      if (since !== undefined && (await this.bus.trimmedAfter(since))) {
        yield { resync: true };
        since = undefined;
      }
      if (since !== undefined) {
        cursor = since;
        const job = one ? await this.visibleJob(caller, id) : undefined;
        if (job !== undefined && quietSince(job, since)) {
          // A job already terminal has nothing more to send.
          if (terminalStatus(job.job.status ?? "")) return;
        } else {
          for (;;) {
            const batch = await this.bus.readAfter(cursor);
            for (const ev of batch) {
              cursor = ev.eventId;
              if (!inScope(ev)) continue;
              lastVer.set(ev.id, ev.ver);
              yield publicEvent(ev);
              if (one && terminalStatus(ev.status)) return;
            }
            if (batch.length < 1000) break;
          }
        }
      } else {
        const snap = await this.snapshot(caller, id);
        cursor = snap.position;
        for await (const batch of snap.jobs) {
          for (const s of batch) {
            lastVer.set(s.job.id, s.ver);
            yield snapshotEvent(s.job, cursor);
            if (one && terminalStatus(s.job.status ?? "")) return;
          }
        }
      }
      for await (const ev of live) {
        if (ev === "resync") {
          yield { resync: true };
          const snap = await this.snapshot(caller, id);
          for await (const batch of snap.jobs) {
            for (const s of batch) {
              lastVer.set(s.job.id, s.ver);
              yield snapshotEvent(s.job, snap.position);
            }
          }
          continue;
        }
        if (compareEventIds(ev.eventId, cursor) <= 0 || !inScope(ev)) continue;
        if ((lastVer.get(ev.id) ?? 0) >= ev.ver) continue;
        lastVer.set(ev.id, ev.ver);
        yield publicEvent(ev);
        if (one && terminalStatus(ev.status)) return;
      }
    } finally {
      stopListening();
      stopResync();
    }
  }

  /**
   * Current jobs in scope, read after noting the bus position they are at least as new as (jobs
   * read later are only newer). Wildcard snapshots read summaries in batches, sorted by id.
   */
  private async snapshot(
    caller: Caller,
    id: string,
  ): Promise<{ position: string; jobs: AsyncIterable<StoredJob[]> }> {
    const position = this.bus.position;
    if (!isWildcard(id)) return { position, jobs: once([await this.visibleJob(caller, id)]) };
    const ids = await this.store.listIds(caller.admin ? {} : { user: caller.user });
    return { position, jobs: this.store.readBatches(ids.sort(byId), { summary: true }) };
  }
}
