// The dispatcher's claims (src/launcher/dispatcher.ts) against an in-memory store and notices: a job
// ending claims only while the fleet queue may hold something; a "queued" notice, also one that
// arrives while a claim runs, and the sweep always lead to a claim.
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { JobStore } from "../../src/cluster/job-store.js";
import type { QueueNotice, QueueNotices } from "../../src/cluster/queue-notices.js";
import type { Registry } from "../../src/cluster/registry.js";
import type { ClaimResult } from "../../src/cluster/scripts.js";
import { Dispatcher } from "../../src/launcher/dispatcher.js";

/** A store whose claims the test answers one at a time. */
class FakeStore {
  claims = 0;
  private pending: ((r: ClaimResult) => void)[] = [];

  claim(): Promise<ClaimResult> {
    this.claims++;
    return new Promise((resolve) => this.pending.push(resolve));
  }

  async takeInbox(): Promise<string[]> {
    return [];
  }

  /** Answers the oldest claim still waiting. */
  answer(result: ClaimResult): void {
    const next = this.pending.shift();
    if (!next) throw new Error("no claim is waiting");
    next(result);
  }

  get waiting(): number {
    return this.pending.length;
  }
}

const EMPTY: ClaimResult = { claimed: [], queueEmpty: true };
const NOTHING_FOR_US: ClaimResult = { claimed: [], queueEmpty: false };

const dispatchers: Dispatcher[] = [];
afterEach(async () => {
  for (const d of dispatchers.splice(0)) await d.close();
});

async function setup(sweepMs = 60_000) {
  const store = new FakeStore();
  let deliver: (n: QueueNotice) => void = () => undefined;
  const notices = {
    listen: async (on: (n: QueueNotice) => void) => {
      deliver = on;
    },
    close: async () => undefined,
  } as unknown as QueueNotices;
  const registry = { epoch: 1, nowMs: () => Date.now() } as unknown as Registry;
  const started: string[] = [];
  const jobs = { freeSlots: () => 4, startJobs: (ids: readonly string[]) => started.push(...ids) };
  const d = new Dispatcher(
    store as unknown as JobStore,
    registry,
    notices,
    jobs,
    { nodeId: "n1", perUserCap: 0, offlineAfterMs: 3_000, sweepMs },
    pino({ level: "silent" }),
  );
  dispatchers.push(d);
  const starting = d.start();
  await settle();
  store.answer(EMPTY); // the first claim finds nothing queued
  await starting;
  return { d, store, started, notify: () => deliver({ kind: "queued" }) };
}

const settle = () => new Promise((r) => setImmediate(r));

describe("Dispatcher claims", () => {
  it("a job ending does not claim while the queue is known empty; a queued notice claims again", async () => {
    const { d, store, started, notify } = await setup();
    expect(store.claims).toBe(1);
    d.wake(); // a slot freed
    await settle();
    expect(store.claims).toBe(1);
    notify();
    await settle();
    expect(store.claims).toBe(2);
    store.answer({ claimed: [{ id: "j1", queuedMs: 0 }], queueEmpty: false });
    await settle();
    expect(started).toEqual(["j1"]);
    // Took fewer than it asked: no second call until something happens; then the queue may hold more.
    d.wake();
    await settle();
    expect(store.claims).toBe(3);
    store.answer(NOTHING_FOR_US); // jobs wait that this node cannot take now: keep asking
    await settle();
    d.wake();
    await settle();
    expect(store.claims).toBe(4);
    store.answer(EMPTY);
  });

  it("a queued notice arriving while a claim runs is not hidden by that claim's empty answer", async () => {
    const { d, store, notify } = await setup();
    notify();
    await settle();
    expect(store.claims).toBe(2);
    notify(); // arrives before the answer: the claim runs once more after it
    store.answer(EMPTY);
    await settle();
    expect(store.claims).toBe(3);
    store.answer(EMPTY); // this one began after the notice: the queue is empty now
    await settle();
    d.wake();
    await settle();
    expect(store.claims).toBe(3);
    expect(store.waiting).toBe(0);
  });

  it("the sweep claims even when the queue was found empty (a notice may have been lost)", async () => {
    const { store } = await setup(30);
    await new Promise((r) => setTimeout(r, 100));
    expect(store.claims).toBeGreaterThan(1);
    while (store.waiting > 0) store.answer(EMPTY);
  });
});
