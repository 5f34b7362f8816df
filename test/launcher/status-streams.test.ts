// StatusStreams as a PushStream, over an in-memory bus and job table: the catch-up is pulled, live
// events are written in the turn they arrive (none twice, none lost while catching up), a resync
// while live re-sends a snapshot at the client's pace, and a stream ends (and stops listening) when
// its job is terminal, when it holds more than its budget, or when its signal aborts. Read as a
// plain AsyncIterable (the plugin), it gives the same messages.
import { describe, expect, it } from "vitest";
import { ApiError, ErrCode } from "../../src/api/index.js";
import type { JobStore, StoredJob } from "../../src/cluster/job-store.js";
import type { BusEvent, BusListener, StatusBus } from "../../src/cluster/status-bus.js";
import type { Caller, PushSink, StatusStreamItem, StreamBudget } from "../../src/launcher/port.js";
import { StatusStreams } from "../../src/launcher/status-streams.js";

const root: Caller = { user: "root", groups: [], admin: true };
const alice: Caller = { user: "alice", groups: [], admin: false };

function stored(id: string, status: string, ver: number, user = "alice"): StoredJob {
  return {
    job: { id, user, name: id, command: "true", status },
    owner: "n1",
    user,
    ver,
    files: [],
    launching: true,
  };
}

/** Just what StatusStreams uses of the bus: listeners, the resync notice, the history, the position. */
class FakeBus {
  listeners = new Set<{ scope: unknown; fn: BusListener }>();
  resyncs = new Set<() => void>();
  history: BusEvent[] = [];
  position = "5-0";
  trimmed = false;

  listen(scope: unknown, fn: BusListener): () => void {
    const entry = { scope, fn };
    this.listeners.add(entry);
    return () => this.listeners.delete(entry);
  }
  onResync(fn: () => void): () => void {
    this.resyncs.add(fn);
    return () => this.resyncs.delete(fn);
  }
  async readAfter(after: string): Promise<BusEvent[]> {
    return this.history.filter((e) => Number(e.eventId.split("-")[0]) > Number(after.split("-")[0]));
  }
  async trimmedAfter(): Promise<boolean> {
    return this.trimmed;
  }
  emit(ev: BusEvent): void {
    for (const l of this.listeners) l.fn(ev);
  }
  resync(): void {
    for (const fn of this.resyncs) fn();
  }
  get listening(): number {
    return this.listeners.size + this.resyncs.size;
  }
}

function setup(jobs: StoredJob[]) {
  const bus = new FakeBus();
  const table = new Map(jobs.map((j) => [j.job.id, j]));
  const store = {
    listIds: async () => [...table.keys()],
    async *readBatches(ids: string[]) {
      yield ids.map((id) => table.get(id)!);
    },
  };
  const visibleJob = async (_c: Caller, id: string) => {
    const job = table.get(id);
    if (!job) throw new ApiError(ErrCode.JobNotFound, `job ${id} not found`);
    return job;
  };
  const streams = new StatusStreams(store as unknown as JobStore, bus as unknown as StatusBus, visibleJob);
  return { bus, table, streams };
}

function event(n: number, id: string, status: string, ver: number, user = "alice"): BusEvent {
  return { eventId: `${n}-0`, id, name: id, status, ver, user };
}

/** A sink that records what it was given, full when told to be. */
function recorder() {
  const got: StatusStreamItem[] = [];
  let full = false;
  let release: (() => void) | undefined;
  const sink: PushSink<StatusStreamItem> = {
    write: (m) => {
      got.push(m);
      return !full;
    },
    drained: () => new Promise<void>((r) => (release = r)),
  };
  return {
    got,
    sink,
    setFull: (v: boolean) => (full = v),
    release: () => release?.(),
    label: () => got.map((m) => ("resync" in m ? "resync" : `${m.id}:${m.status}@${m.eventId}`)),
  };
}

async function pull(iterator: AsyncIterator<StatusStreamItem>): Promise<StatusStreamItem[]> {
  const out: StatusStreamItem[] = [];
  for (let r = await iterator.next(); !r.done; r = await iterator.next()) out.push(r.value);
  return out;
}

const tick = () => new Promise((r) => setImmediate(r));

describe("StatusStreams (push)", () => {
  it("snapshot pulled, what arrives meanwhile held, then each live event written in the turn it arrives", async () => {
    const { bus, streams } = setup([stored("a", "Running", 2), stored("b", "Pending", 1)]);
    const stream = streams.open(root, "*", { signal: new AbortController().signal });
    const catchUp = stream.catchUp();
    const first = await catchUp.next(); // listening from here
    bus.emit(event(6, "a", "Running", 2)); // a copy of what the snapshot has: dropped
    bus.emit(event(7, "b", "Running", 2)); // held until follow
    const rest = await pull(catchUp);
    expect([first.value, ...rest].map((m) => (m as { id: string }).id)).toEqual(["a", "b"]);

    const r = recorder();
    const ended = stream.follow(r.sink);
    expect(r.label()).toEqual(["b:Running@7-0"]);
    bus.emit(event(8, "a", "Finished", 3));
    expect(r.label()).toEqual(["b:Running@7-0", "a:Finished@8-0"]); // synchronously, no await
    bus.emit(event(9, "a", "Finished", 3)); // the same version again: not twice
    expect(r.got).toHaveLength(2);
    // Public shape: no ver/user.
    expect(r.got[1]).toEqual({ eventId: "8-0", id: "a", name: "a", status: "Finished" });
    expect(bus.listening).toBe(2);
    let settled = false;
    void ended.then(() => (settled = true));
    await tick();
    expect(settled).toBe(false); // a wildcard stream goes on
  });

  it("a one-job stream ends when its job is terminal, and stops listening", async () => {
    const { bus, streams } = setup([stored("a", "Running", 2)]);
    const stream = streams.open(alice, "a", { signal: new AbortController().signal });
    expect(await pull(stream.catchUp())).toHaveLength(1);
    const r = recorder();
    const ended = stream.follow(r.sink);
    bus.emit(event(6, "a", "Finished", 3));
    await ended;
    expect(r.label()).toEqual(["a:Finished@6-0"]);
    expect(bus.listening).toBe(0);
  });

  it("a job already terminal ends in the catch-up: follow resolves at once and nothing listens", async () => {
    const { bus, streams } = setup([stored("a", "Finished", 3)]);
    const stream = streams.open(alice, "a", { signal: new AbortController().signal });
    expect(await pull(stream.catchUp())).toHaveLength(1);
    expect(bus.listening).toBe(0);
    await stream.follow(recorder().sink);
  });

  it("a resync while live sends the notice and a snapshot at the client's pace; events meanwhile follow it", async () => {
    const { bus, table, streams } = setup([stored("a", "Running", 2), stored("b", "Running", 2)]);
    const stream = streams.open(root, "*", { signal: new AbortController().signal });
    await pull(stream.catchUp());
    const r = recorder();
    void stream.follow(r.sink);
    table.set("a", stored("a", "Finished", 4));
    bus.position = "20-0";
    r.setFull(true); // the client is behind: the snapshot waits for it after each message
    bus.resync();
    bus.emit(event(21, "b", "Failed", 3)); // arrives during the snapshot: after it
    await tick();
    expect(r.label()).toEqual(["resync"]);
    r.setFull(false);
    r.release();
    await tick();
    await tick();
    expect(r.label()).toEqual(["resync", "a:Finished@20-0", "b:Running@20-0", "b:Failed@21-0"]);
    bus.emit(event(22, "a", "Finished", 4)); // the snapshot's version: not again
    bus.emit(event(23, "b", "Failed", 3));
    expect(r.got).toHaveLength(4);
  });

  it("more than the budget unread ends the stream with the writer's error and stops listening", async () => {
    const { bus, streams } = setup([stored("a", "Running", 2)]);
    let unread = 0;
    const tooSlow = new ApiError(ErrCode.Timeout, "too slow");
    const controller = new AbortController();
    const budget: StreamBudget = {
      limit: 1_000,
      unread: () => unread,
      exceeded: () => {
        controller.abort(tooSlow);
        return tooSlow;
      },
    };
    const stream = streams.open(root, "*", { signal: controller.signal, budget });
    await pull(stream.catchUp());
    const ended = stream.follow(recorder().sink);
    bus.emit(event(6, "a", "Running", 3));
    unread = 1_001;
    bus.emit(event(7, "a", "Running", 4));
    await expect(ended).rejects.toBe(tooSlow);
    expect(bus.listening).toBe(0);
  });

  it("events held while catching up count against the budget too", async () => {
    const { bus, streams } = setup([stored("a", "Running", 2)]);
    const tooSlow = new ApiError(ErrCode.Timeout, "too slow");
    const budget: StreamBudget = { limit: 1_000, unread: () => 0, exceeded: () => tooSlow };
    const stream = streams.open(root, "*", { signal: new AbortController().signal, budget });
    const catchUp = stream.catchUp();
    await catchUp.next();
    for (let n = 6; n < 20; n++) bus.emit(event(n, "a", "Running", n, "alice"));
    await pull(catchUp);
    await expect(stream.follow(recorder().sink)).rejects.toBe(tooSlow);
    expect(bus.listening).toBe(0);
  });

  it("abort rejects follow with the signal's reason and stops listening", async () => {
    const { bus, streams } = setup([stored("a", "Running", 2)]);
    const controller = new AbortController();
    const stream = streams.open(root, "*", { signal: controller.signal });
    await pull(stream.catchUp());
    const ended = stream.follow(recorder().sink);
    const reason = new Error("client gone");
    controller.abort(reason);
    await expect(ended).rejects.toBe(reason);
    expect(bus.listening).toBe(0);
  });

  it("an unknown job or a bad `since` fails the catch-up's first next()", async () => {
    const { bus, streams } = setup([]);
    const signal = new AbortController().signal;
    await expect(streams.open(alice, "nope", { signal }).catchUp().next()).rejects.toMatchObject({
      code: ErrCode.JobNotFound,
    });
    await expect(streams.open(alice, "*", { signal, since: "x" }).catchUp().next()).rejects.toMatchObject({
      code: ErrCode.InvalidRequest,
    });
    expect(bus.listening).toBe(0);
  });

  it("read as an AsyncIterable with a budget: what waits for the reader counts; past it, the budget's error", async () => {
    const { bus, streams } = setup([stored("a", "Running", 2)]);
    const tooSlow = new ApiError(ErrCode.Timeout, "too slow");
    const budget: StreamBudget = { limit: 2_000, unread: () => 0, exceeded: () => tooSlow };
    const iterator = streams
      .open(root, "*", { signal: new AbortController().signal, budget })
      [Symbol.asyncIterator]();
    expect((await iterator.next()).value).toMatchObject({ id: "a", status: "Running" }); // the snapshot
    // The reader stops taking; live events wait for it, about 140 bytes each here.
    const next = iterator.next();
    await tick();
    for (let n = 6; n < 106; n++) bus.emit(event(n, "a", "Running", n));
    expect(bus.listening).toBe(0); // ended when what waited passed 2,000 bytes
    const got: StatusStreamItem[] = [(await next).value];
    await expect(
      (async () => {
        for (let r = await iterator.next(); !r.done; r = await iterator.next()) got.push(r.value);
      })(),
    ).rejects.toBe(tooSlow);
    // What waited came first, in order, and no more than the budget's worth.
    expect(got.length).toBeGreaterThan(5);
    expect(got.length).toBeLessThan(20);
    expect(got.map((m) => ("resync" in m ? "" : m.eventId))).toEqual(got.map((_, i) => `${i + 6}-0`));
  });

  it("read as an AsyncIterable: the replay, then live events, ending quietly on abort", async () => {
    const { bus, streams } = setup([stored("a", "Running", 3, "alice"), stored("c", "Running", 1, "carol")]);
    bus.history = [
      event(6, "a", "Running", 2),
      event(7, "c", "Running", 1, "carol"),
      event(8, "a", "Running", 3),
    ];
    const controller = new AbortController();
    const seen: string[] = [];
    const reading = (async () => {
      for await (const m of streams.open(alice, "*", { signal: controller.signal, since: "5-0" })) {
        seen.push("resync" in m ? "resync" : `${m.id}@${m.eventId}`);
        if (seen.length === 2) bus.emit(event(9, "a", "Finished", 4));
        if (seen.length === 3) controller.abort();
      }
    })();
    await reading;
    // carol's job is not alice's: never sent.
    expect(seen).toEqual(["a@6-0", "a@8-0", "a@9-0"]);
    expect(bus.listening).toBe(0);
  });

  it("a plain reader that stops early, live and without aborting, stops the stream listening", async () => {
    const { bus, streams } = setup([stored("a", "Running", 2)]);
    const signal = new AbortController().signal; // never aborted: the reader just stops
    const stream = streams.open(root, "*", { signal });
    let n = 0;
    for await (const _m of stream) {
      if (++n === 1) setImmediate(() => bus.emit(event(6, "a", "Running", 3))); // live by then
      if (n === 2) break;
    }
    expect(n).toBe(2);
    expect(bus.listening).toBe(0);
    bus.emit(event(7, "a", "Running", 4)); // nobody queues it any more
  });
});
