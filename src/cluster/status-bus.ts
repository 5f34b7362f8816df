// The status bus: every node hears every status change of the fleet, in order, exactly once.
//
// Scripts append each event to a stream and publish it with its predecessor's id. A node delivers
// a published event at once when its predecessor is the last event it delivered; otherwise it
// missed something (a dropped subscription, a Redis restart) and reads the gap from the stream
// first. Stream ids order events fleet-wide, so clients can resume from any node.
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { compareEventIds } from "./event-id.js";
import type { Keys } from "./keys.js";
import { whileAvailable } from "./redis.js";

/** A status event as stored: the public fields plus `ver` and `user` for routing and dedup. */
export interface BusEvent {
  eventId: string;
  id: string;
  name?: string;
  status: string;
  statusCode?: string;
  statusMessage?: string;
  lastUpdateTime?: string;
  ver: number;
  user: string;
}

export type BusListener = (event: BusEvent) => void;
/** Called when events were trimmed from the stream before this node read them. */
export type ResyncListener = () => void;

export function parseStreamEntry(id: string, fields: string[]): BusEvent | undefined {
  const idx = fields.indexOf("e");
  if (idx < 0 || idx + 1 >= fields.length) return undefined;
  return { ...(JSON.parse(fields[idx + 1]!) as Omit<BusEvent, "eventId">), eventId: id };
}

export class StatusBus {
  private lastId = "0-0";
  private catchingUp: Promise<void> | undefined;
  private pending: { id: string; prev: string; json: string }[] = [];
  private readonly byJob = new Map<string, Set<BusListener>>();
  private readonly byUser = new Map<string, Set<BusListener>>();
  private readonly all = new Set<BusListener>();
  private readonly resyncListeners = new Set<ResyncListener>();
  private closed = false;
  /** Events delivered by this node (for metrics). */
  delivered = 0;

  constructor(
    private readonly redis: Redis,
    private readonly sub: Redis,
    private readonly keys: Keys,
    private readonly logger: Logger,
  ) {}

  /** Position of the newest event this node has delivered. */
  get position(): string {
    return this.lastId;
  }

  async start(): Promise<void> {
    this.lastId = (await this.redis.get(this.keys.eventsLast)) ?? "0-0";
    this.sub.on("message", (channel: string, message: string) => {
      if (channel === this.keys.eventsChannel) this.onMessage(message);
    });
    // After any reconnect ioredis re-subscribes; whatever was published meanwhile is in the stream.
    this.sub.on("ready", () => this.catchUp());
    await this.sub.subscribe(this.keys.eventsChannel);
  }

  close(): void {
    this.closed = true;
    this.byJob.clear();
    this.byUser.clear();
    this.all.clear();
  }

  /** Listen to one job, one user's jobs, or (`undefined`) every job. Returns the unsubscribe. */
  listen(scope: { jobId: string } | { user: string } | "all", fn: BusListener): () => void {
    if (scope === "all") {
      this.all.add(fn);
      return () => this.all.delete(fn);
    }
    const [map, key] = "jobId" in scope ? [this.byJob, scope.jobId] : [this.byUser, scope.user];
    const set = map.get(key) ?? new Set<BusListener>();
    map.set(key, set);
    set.add(fn);
    return () => {
      set.delete(fn);
      if (set.size === 0) map.delete(key);
    };
  }

  onResync(fn: ResyncListener): () => void {
    this.resyncListeners.add(fn);
    return () => this.resyncListeners.delete(fn);
  }

  /** Stream events after `afterId` (exclusive), oldest first, at most `count`. */
  async readAfter(afterId: string, count = 1000): Promise<BusEvent[]> {
    const entries = (await whileAvailable(
      this.redis.xrange(this.keys.events, `(${afterId}`, "+", "COUNT", count),
    )) as [string, string[]][];
    return entries.flatMap(([id, fields]) => parseStreamEntry(id, fields) ?? []);
  }

  private onMessage(message: string): void {
    const [id = "", prev = "", json = ""] = splitMessage(message);
    if (this.catchingUp) {
      this.pending.push({ id, prev, json });
      return;
    }
    if (compareEventIds(id, this.lastId) <= 0) return; // already delivered from the stream
    if (prev === this.lastId) {
      if (this.listening()) this.deliver(decodeEvent(json, id));
      else this.pass(id); // every node hears every event; most have no stream open to want it decoded
      return;
    }
    this.pending.push({ id, prev, json });
    this.catchUp();
  }

  /** Reads everything after the last delivered event from the stream, then drains the queue. */
  private catchUp(): void {
    if (this.catchingUp || this.closed) return;
    this.catchingUp = (async () => {
      for (let attempt = 0; !this.closed; attempt++) {
        try {
          await this.readGap();
          break;
        } catch (err) {
          this.logger.warn({ err: (err as Error).message }, "status bus catch-up failed; retrying");
          await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** attempt, 2_000)));
        }
      }
    })().finally(() => {
      this.catchingUp = undefined;
      const queued = this.pending;
      this.pending = [];
      for (const m of queued) {
        if (compareEventIds(m.id, this.lastId) > 0) {
          this.onMessage(`${m.id}\n${m.prev}\n${m.json}`);
        }
      }
    });
  }

  private async readGap(): Promise<void> {
    if (this.lastId !== "0-0" && (await this.trimmedAfter(this.lastId))) this.resync();
    for (;;) {
      const batch = await this.readAfter(this.lastId);
      for (const ev of batch) this.deliver(ev);
      if (batch.length < 1000) return;
    }
  }

  /**
   * True when resuming after `id` could leave a gap: `id` itself is no longer retained. Trimming
   * removes the oldest entries first, so while `id` is still in the stream nothing after it is
   * gone. (Redis 7.0 does not record trimmed ids in XINFO, so this is the test that works.)
   */
  async trimmedAfter(id: string): Promise<boolean> {
    const first = (await whileAvailable(this.redis.xrange(this.keys.events, "-", "+", "COUNT", 1))) as [
      string,
      string[],
    ][];
    const oldest = first[0]?.[0];
    return oldest !== undefined && compareEventIds(oldest, id) > 0;
  }

  private resync(): void {
    this.logger.warn({ position: this.lastId }, "status events were trimmed before this node read them");
    for (const fn of this.resyncListeners) fn();
  }

  private listening(): boolean {
    return this.all.size > 0 || this.byJob.size > 0 || this.byUser.size > 0;
  }

  /** Moves past an event that no listener wants. */
  private pass(eventId: string): void {
    this.lastId = eventId;
    this.delivered++;
  }

  private deliver(ev: BusEvent): void {
    this.pass(ev.eventId);
    for (const fn of this.byJob.get(ev.id) ?? []) fn(ev);
    for (const fn of this.byUser.get(ev.user) ?? []) fn(ev);
    for (const fn of this.all) fn(ev);
  }
}

/**
 * The event a message carries, decoded in place: the object JSON.parse returns gets its eventId
 * rather than being copied with a spread. That copy per event was half of what a streaming node
 * promoted to its old generation (as if V8 had pretenured the spread's allocation site), which
 * made for its major GCs and a fan-out p99 tail (docs/benchmarks.md, "Fan-out: live status events pushed").
 */
function decodeEvent(json: string, eventId: string): BusEvent {
  const ev = JSON.parse(json) as BusEvent;
  ev.eventId = eventId;
  return ev;
}

function splitMessage(message: string): [string, string, string] {
  const a = message.indexOf("\n");
  const b = message.indexOf("\n", a + 1);
  return [message.slice(0, a), message.slice(a + 1, b), message.slice(b + 1)];
}
