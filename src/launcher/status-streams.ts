// Status streams (GET /jobs/{id}/status, the plugin's job status stream): live events from the status
// bus, after a snapshot or a replay from `since`, per job in order and never twice. What waits for a
// slow client counts against the stream's budget (LAUNCHER_STREAM_BUFFER_BYTES).
//
// A stream is pulled until it is live (the replay or snapshot), then pushed: the bus listener hands
// each event straight to the writer, in the turn it arrives, with no queue, promise or generator
// step per event (~5 µs of a streaming node's CPU per event; docs/benchmarks.md, "Fan-out: live
// status events pushed").
import { ApiError, ErrCode, isWildcard, type Job, JobStatus, terminalStatus } from "../api/index.js";
import { compareEventIds, isEventId } from "../cluster/event-id.js";
import type { JobStore, StoredJob } from "../cluster/job-store.js";
import type { BusEvent, StatusBus } from "../cluster/status-bus.js";
import type { Caller, PushSink, PushStream, StatusStreamItem, StatusStreamOptions } from "./port.js";
import { iteratePushStream } from "./queue.js";

type StatusEventItem = Exclude<StatusStreamItem, { resync: true }>;

/** The API's listing order: by id, compared as strings. */
export function byId(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * A bus event as clients see it: no internal `ver`/`user`, and `name` always there (`""` for a job
 * without one), as the Launcher sends it. One literal of one shape (absent fields stay undefined,
 * which JSON leaves out): a rest-destructured copy here was most of what a streaming node promoted
 * to its old generation per event (docs/benchmarks.md, "Fan-out: live status events pushed").
 */
function publicEvent(ev: BusEvent): StatusEventItem {
  return {
    eventId: ev.eventId,
    id: ev.id,
    name: ev.name ?? "",
    status: ev.status as JobStatus,
    statusCode: ev.statusCode,
    statusMessage: ev.statusMessage,
    lastUpdateTime: ev.lastUpdateTime,
  };
}

async function* once<T>(item: T): AsyncIterable<T> {
  yield item;
}

/**
 * About the bytes a queued status event stands for: its strings as the stream line will carry them,
 * plus the JSON around them. (Every string field of an event is bounded: name and user by the
 * submission limits, statusMessage by the store.)
 */
function queuedBytes(ev: BusEvent | StatusStreamItem | "resync"): number {
  if (ev === "resync" || "resync" in ev) return 32;
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

/** What a stream reads besides the bus: the caller's jobs. */
interface StreamSources {
  bus: StatusBus;
  visibleJob(caller: Caller, id: string): Promise<StoredJob>;
  snapshot(caller: Caller, id: string): Promise<{ position: string; jobs: AsyncIterable<StoredJob[]> }>;
}

export class StatusStreams {
  private readonly sources: StreamSources;

  constructor(
    private readonly store: JobStore,
    bus: StatusBus,
    /** The job if the caller may see it, else JobNotFound. */
    visibleJob: (caller: Caller, id: string) => Promise<StoredJob>,
  ) {
    this.sources = { bus, visibleJob, snapshot: (caller, id) => this.snapshot(caller, id) };
  }

  /**
   * A status stream: for one job, or every job in the caller's scope (`*`). Replays from `since`
   * (or starts with a snapshot), then follows live events, never one twice, per-job order kept.
   */
  open(caller: Caller, id: string, opts: StatusStreamOptions): PushStream<StatusStreamItem> {
    return new StatusStream(this.sources, caller, id, opts);
  }

  /**
   * Current jobs in scope, read after noting the bus position they are at least as new as (jobs
   * read later are only newer). Wildcard snapshots read summaries in batches, sorted by id.
   */
  private async snapshot(
    caller: Caller,
    id: string,
  ): Promise<{ position: string; jobs: AsyncIterable<StoredJob[]> }> {
    const position = this.sources.bus.position;
    if (!isWildcard(id)) return { position, jobs: once([await this.sources.visibleJob(caller, id)]) };
    const ids = await this.store.listIds(caller.admin ? {} : { user: caller.user });
    return { position, jobs: this.store.readBatches(ids.sort(byId), { summary: true }) };
  }
}

/** A live event waiting for the stream to catch up, or the bus's notice that events were lost. */
type Held = BusEvent | "resync";

/** How a stream ended: by itself, or with the error its follower rejects with. */
type Outcome = "done" | { error: unknown };

class StatusStream implements PushStream<StatusStreamItem> {
  private readonly one: boolean;
  /** Events at or before this were in the replay or are older than the snapshot. */
  private cursor = "";
  /** Each job's newest version sent, so that no event goes out twice or out of order. */
  private readonly lastVer = new Map<string, number>();
  /** Live events that arrive while the stream catches up (at first, and on a resync). */
  private held: Held[] = [];
  private heldBytes = 0;
  /** Read as a plain iterable: what waits in its queue for the reader (counted like `held`). */
  private waitingBytes = 0;
  private catchingUp = true;
  private sink: PushSink<StatusStreamItem> | undefined;
  private stopListening: (() => void) | undefined;
  private outcome: Outcome | undefined;
  private settle: { resolve: () => void; reject: (error: unknown) => void } | undefined;

  constructor(
    private readonly sources: StreamSources,
    private readonly caller: Caller,
    private readonly id: string,
    private readonly opts: StatusStreamOptions,
  ) {
    this.one = !isWildcard(id);
    const { signal } = opts;
    if (signal.aborted) this.end({ error: signal.reason });
    else signal.addEventListener("abort", () => this.end({ error: signal.reason }), { once: true });
  }

  /**
   * Read as a plain iterable (the plugin), live events wait in a queue until the reader takes them;
   * with a budget, what waits there counts against it, as a connection's unread bytes do.
   */
  [Symbol.asyncIterator](): AsyncIterator<StatusStreamItem> {
    const count =
      this.opts.budget === undefined
        ? undefined
        : {
            queued: (m: StatusStreamItem) => {
              this.waitingBytes += queuedBytes(m);
            },
            taken: (m: StatusStreamItem) => {
              this.waitingBytes -= queuedBytes(m);
            },
          };
    return iteratePushStream(this, this.opts.signal, count);
  }

  async *catchUp(): AsyncGenerator<StatusStreamItem> {
    const { caller, id, one, opts } = this;
    if (one && opts.since === undefined) await this.sources.visibleJob(caller, id);
    // Listen first, then read history or the snapshot, so nothing falls between the two.
    this.listen();
    let live = false;
    try {
      let since = opts.since;
      if (since !== undefined && !isEventId(since)) {
        throw new ApiError(ErrCode.InvalidRequest, `since: "${since}" is not an event id`);
      }
      if (since !== undefined && (await this.sources.bus.trimmedAfter(since))) {
        yield { resync: true };
        since = undefined;
      }
      if (since !== undefined) {
        this.cursor = since;
        const job = one ? await this.sources.visibleJob(caller, id) : undefined;
        if (job !== undefined && quietSince(job, since)) {
          // A job already terminal has nothing more to send.
          if (terminalStatus(job.job.status ?? "")) return;
        } else {
          for (;;) {
            const batch = await this.sources.bus.readAfter(this.cursor);
            for (const ev of batch) {
              this.cursor = ev.eventId;
              if (!this.inScope(ev)) continue;
              this.lastVer.set(ev.id, ev.ver);
              yield publicEvent(ev);
              if (one && terminalStatus(ev.status)) return;
            }
            if (batch.length < 1000) break;
          }
        }
      } else {
        const snap = await this.sources.snapshot(caller, id);
        this.cursor = snap.position;
        for await (const batch of snap.jobs) {
          for (const s of batch) {
            this.lastVer.set(s.job.id, s.ver);
            yield snapshotEvent(s.job, this.cursor);
            if (one && terminalStatus(s.job.status ?? "")) return;
          }
        }
      }
      live = true;
    } finally {
      // Ended here (a finished job, an error, a writer that stopped): `follow` has nothing to add.
      if (!live) this.end("done");
    }
  }

  follow(sink: PushSink<StatusStreamItem>): Promise<void> {
    const { outcome } = this;
    if (outcome !== undefined) return outcome === "done" ? Promise.resolve() : Promise.reject(outcome.error);
    this.sink = sink;
    const ended = new Promise<void>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    void this.drain();
    return ended;
  }

  close(): void {
    this.end("done");
  }

  private inScope(ev: { id: string; user: string }): boolean {
    return this.one ? ev.id === this.id : this.caller.admin || ev.user === this.caller.user;
  }

  private listen(): void {
    const { bus } = this.sources;
    const { caller, id, one } = this;
    const scope = one ? { jobId: id } : caller.admin ? ("all" as const) : { user: caller.user };
    const stopEvents = bus.listen(scope, (ev) => this.arrive(ev));
    const stopResync = bus.onResync(() => this.arrive("resync"));
    this.stopListening = () => {
      stopEvents();
      stopResync();
    };
  }

  /** The bus listener: straight to the writer when live, else held until the stream catches up. */
  private arrive(item: Held): void {
    if (this.outcome !== undefined) return;
    if (!this.catchingUp && item !== "resync") {
      this.deliver(item);
      return;
    }
    this.hold(item);
    if (!this.catchingUp) void this.drain();
  }

  private hold(item: Held): void {
    this.held.push(item);
    if (this.opts.budget === undefined) return;
    this.heldBytes += queuedBytes(item);
    this.checkBudget();
  }

  /** What is held counts against the budget with what the connection holds unread. */
  private checkBudget(): void {
    const { budget } = this.opts;
    if (budget !== undefined && this.heldBytes + this.waitingBytes + budget.unread() > budget.limit) {
      this.end({ error: budget.exceeded() });
    }
  }

  /** Sends what was held, in order (a resync: a fresh snapshot), then lets events through live. */
  private async drain(): Promise<void> {
    this.catchingUp = true;
    try {
      for (let item = this.held.shift(); item !== undefined; item = this.held.shift()) {
        if (this.opts.budget !== undefined) this.heldBytes -= queuedBytes(item);
        if (item === "resync") await this.resnapshot();
        else this.deliver(item);
        if (this.outcome !== undefined) return;
      }
      this.catchingUp = false;
    } catch (err) {
      this.end({ error: err });
    }
  }

  private deliver(ev: BusEvent): void {
    if (compareEventIds(ev.eventId, this.cursor) <= 0 || !this.inScope(ev)) return;
    if ((this.lastVer.get(ev.id) ?? 0) >= ev.ver) return;
    this.lastVer.set(ev.id, ev.ver);
    // The writer's answer (the client is behind) is not waited for: live events keep coming
    // regardless, and the budget bounds what piles up for a client that reads slowly.
    this.sink?.write(publicEvent(ev));
    if (this.one && terminalStatus(ev.status)) {
      this.end("done");
      return;
    }
    this.checkBudget();
  }

  /** After the bus lost events: a resync notice, then every job in scope as it is now. */
  private async resnapshot(): Promise<void> {
    const { sink } = this;
    if (sink === undefined) return;
    // A snapshot can be thousands of jobs: it waits for the client, as a pulled stream does.
    if (!sink.write({ resync: true })) await sink.drained();
    const snap = await this.sources.snapshot(this.caller, this.id);
    for await (const batch of snap.jobs) {
      for (const s of batch) {
        if (this.outcome !== undefined) return;
        this.lastVer.set(s.job.id, s.ver);
        if (!sink.write(snapshotEvent(s.job, snap.position))) await sink.drained();
        if (this.one && terminalStatus(s.job.status ?? "")) {
          this.end("done");
          return;
        }
      }
    }
  }

  private end(outcome: Outcome): void {
    if (this.outcome !== undefined) return;
    this.outcome = outcome;
    this.stopListening?.();
    this.held = [];
    this.heldBytes = 0;
    if (outcome === "done") this.settle?.resolve();
    else this.settle?.reject(outcome.error);
  }
}
