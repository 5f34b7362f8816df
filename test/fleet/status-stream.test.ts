// Status streams across the fleet: every change of a job on A reaches a client on C in order;
// a client that resumes on another node with its last eventId misses nothing and sees nothing
// twice, also while nodes' subscriber connections are dropped; a `since` beyond retention resyncs.
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readStream, type TestNode, token } from "../helpers/nodes.js";
import { redisUrl, uniquePrefix } from "../helpers/redis.js";
import {
  adminRedis,
  closeAll,
  control,
  killGroup,
  killSubscribers,
  RELAXED,
  type StatusMsg,
  startFleet,
  streamEvents,
  submit,
  waitStatus,
} from "./helpers.js";

let redis: Redis;
const fleets: TestNode[][] = [];
const pids: number[] = [];

beforeAll(() => {
  redis = adminRedis(redisUrl());
});

afterAll(async () => {
  for (const pid of pids) killGroup(pid);
  for (const f of fleets) await closeAll(f);
  redis.disconnect();
});

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

function expectSeqIds(messages: StatusMsg[]): void {
  expect(messages.map((m) => m.seqId)).toEqual(messages.map((_, i) => i + 1));
}

describe("status streams across nodes", () => {
  it("a stream on C sees every change of a job on A in order; a client resuming on B and A misses nothing", async () => {
    const prefix = uniquePrefix("fleet-stream");
    const fleet = await startFleet(prefix, 3, RELAXED);
    fleets.push(fleet);
    const [a, b, c] = fleet as [TestNode, TestNode, TestNode];
    const user = `streamer${Date.now()}`;
    const tok = await token(user);
    const CYCLES = 15;
    let jobId = "";
    const isEnd = (m: StatusMsg) => m.id === jobId && m.status === "Finished";

    // A client on C that stays connected for the whole run (opened before the job exists).
    let s0Open = false;
    const s0 = readStream<StatusMsg>(c.url, "/jobs/*/status", {
      token: tok,
      until: isEnd,
      timeoutMs: 30_000,
      onOpen: () => {
        s0Open = true;
      },
    });

    // A client that disconnects twice and resumes on another node each time.
    const seg1Closed = deferred();
    const seg2Closed = deferred();
    const away1 = deferred();
    const away2 = deferred();
    let r1Open = false;
    const segments = (async () => {
      const seg1 = await readStream<StatusMsg>(c.url, "/jobs/*/status", {
        token: tok,
        until: (_m, all) => all.length >= 8,
        timeoutMs: 20_000,
        onOpen: () => {
          r1Open = true;
        },
      });
      seg1Closed.resolve();
      await away1.promise; // events happen while this client is away
      const last1 = seg1.messages.at(-1)!.eventId;
      const seg2 = await readStream<StatusMsg>(b.url, `/jobs/*/status?since=${encodeURIComponent(last1)}`, {
        token: tok,
        until: (m, all) => all.length >= 6 || isEnd(m),
        timeoutMs: 20_000,
      });
      seg2Closed.resolve();
      await away2.promise;
      const last2 = seg2.messages.at(-1)!.eventId;
      const seg3 = await readStream<StatusMsg>(a.url, "/jobs/*/status", {
        token: tok,
        headers: { "last-event-id": last2 },
        until: isEnd,
        timeoutMs: 20_000,
      });
      return [seg1, seg2, seg3];
    })();

    // Both clients are listening before the job is submitted.
    while (!s0Open || !r1Open) await new Promise((r) => setTimeout(r, 10));

    jobId = await submit(a.url, tok, { command: "sleep 60", name: "flapper" });
    const running = await waitStatus(a.url, tok, jobId, "Running");
    pids.push(running.pid as number);
    let subsKilled = 0;
    for (let i = 0; i < CYCLES; i++) {
      const via = fleet[i % 3]!;
      expect((await control(via.url, tok, jobId, "suspend")).status).toBe(200);
      if (i === 2 || i === 7 || i === 13)
        subsKilled += await killSubscribers(redis, [a.settings.nodeId, c.settings.nodeId]);
      expect((await control(fleet[(i + 1) % 3]!.url, tok, jobId, "resume")).status).toBe(200);
      if (i === 3) await seg1Closed.promise;
      if (i === 5) away1.resolve();
      if (i === 9) await seg2Closed.promise;
      if (i === 11) away2.resolve();
    }
    expect((await control(c.url, tok, jobId, "stop")).status).toBe(200);
    expect(subsKilled).toBe(6); // A's and C's subscriber connections, three times

    const [seg1, seg2, seg3] = await segments;
    const whole = await s0;

    // Ground truth: the fleet's event stream in Redis.
    const truth = (await streamEvents(redis, prefix))
      .filter((e) => e.id === jobId)
      .map((e) => ({ eventId: e.eventId, status: e.status }));
    const expected = ["Pending", "Running"];
    for (let i = 0; i < CYCLES; i++) expected.push("Suspended", "Running");
    expected.push("Finished");
    expect(truth.map((e) => e.status)).toEqual(expected);

    // The continuous client on C: every change, in order, once.
    expect(whole.status).toBe(200);
    expectSeqIds(whole.messages);
    expect(
      whole.messages.filter((m) => m.id === jobId).map((m) => ({ eventId: m.eventId, status: m.status })),
    ).toEqual(truth);
    expect(whole.messages.some((m) => m.error || m.resync)).toBe(false);

    // The resuming client: three segments on C, B (?since=) and A (Last-Event-ID) add up to the same.
    for (const seg of [seg1!, seg2!, seg3!]) {
      expect(seg.status).toBe(200);
      expect(seg.messages.length).toBeGreaterThan(0);
      expectSeqIds(seg.messages);
      expect(seg.messages.some((m) => m.error || m.resync)).toBe(false);
    }
    const resumed = [...seg1!.messages, ...seg2!.messages, ...seg3!.messages]
      .filter((m) => m.id === jobId)
      .map((m) => ({ eventId: m.eventId, status: m.status }));
    expect(resumed).toEqual(truth);
  });

  it("a `since` beyond retention yields {resync:true} and then a snapshot", async () => {
    const prefix = uniquePrefix("fleet-trim");
    const fleet = await startFleet(prefix, 2, { ...RELAXED, eventRetention: 10 });
    fleets.push(fleet);
    const [a, b] = fleet as [TestNode, TestNode];
    const tok = await token("trimmer");
    const id = await submit(a.url, tok, { command: "sleep 60" });
    const running = await waitStatus(a.url, tok, id, "Running");
    pids.push(running.pid as number);
    const firstId = (await streamEvents(redis, prefix))[0]!.eventId;

    for (let i = 0; i < 100; i++) {
      expect((await control(a.url, tok, id, "suspend")).status).toBe(200);
      expect((await control(a.url, tok, id, "resume")).status).toBe(200);
    }
    const left = await streamEvents(redis, prefix);
    expect(left.length).toBeLessThan(202); // trimmed (MAXLEN ~ 10 trims whole stream nodes)
    expect(left[0]!.eventId).not.toBe(firstId);

    // Wildcard stream, resumed on B with Last-Event-ID from before the trimmed range.
    const wild = await readStream<StatusMsg>(b.url, "/jobs/*/status", {
      token: tok,
      headers: { "last-event-id": firstId },
      until: (_m, all) => all.length >= 2,
    });
    expect(wild.status).toBe(200);
    expect(wild.messages[0]).toEqual({ seqId: 1, resync: true });
    expect(wild.messages[1]).toMatchObject({ seqId: 2, id, status: "Running", eventId: expect.any(String) });

    // One-job stream with ?since=: resync, snapshot, then live changes to the end.
    const one = readStream<StatusMsg>(b.url, `/jobs/${id}/status?since=${firstId}`, {
      token: tok,
      onOpen: () => {
        setTimeout(() => void control(a.url, tok, id, "stop"), 50);
      },
    });
    const got = await one;
    expect(got.ended).toBe(true);
    expect(got.messages.map((m) => (m.resync ? "resync" : m.status))).toEqual([
      "resync",
      "Running",
      "Finished",
    ]);
    expectSeqIds(got.messages);
    const finished = got.messages[2]!;
    expect(finished.eventId).toBe((await streamEvents(redis, prefix)).at(-1)!.eventId);

    // Within retention there is no resync: the retained history replays as is.
    const oldest = (await streamEvents(redis, prefix))[0]!.eventId;
    const replay = await readStream<StatusMsg>(a.url, `/jobs/${id}/status?since=${oldest}`, { token: tok });
    expect(replay.messages.some((m) => m.resync)).toBe(false);
    expect(replay.messages.at(-1)).toMatchObject({ status: "Finished", eventId: finished.eventId });
  });

  it("a job's stream resumed at its newest event sends only what follows; a finished job's ends at once", async () => {
    const prefix = uniquePrefix("fleet-quiet");
    const fleet = await startFleet(prefix, 2, RELAXED);
    fleets.push(fleet);
    const [a, b] = fleet as [TestNode, TestNode];
    const tok = await token("quiet");
    const id = await submit(a.url, tok, { command: "sleep 60" });
    const running = await waitStatus(a.url, tok, id, "Running");
    pids.push(running.pid as number);
    // Other jobs' events after this job's newest one: a resumed stream must not send them.
    const others = await Promise.all([1, 2, 3].map(() => submit(a.url, tok, { command: "true" })));
    for (const other of others) await waitStatus(a.url, tok, other, "Finished");
    const events = await streamEvents(redis, prefix);
    const newest = events.filter((e) => e.id === id).at(-1)!;
    expect(newest.status).toBe("Running");
    expect(events.at(-1)!.id).not.toBe(id);
    // The job's hash records its newest event's id (what lets the resume skip the history).
    expect(await redis.hget(`${prefix}:job:${id}`, "eventId")).toBe(newest.eventId);

    const resumed = await readStream<StatusMsg>(b.url, `/jobs/${id}/status?since=${newest.eventId}`, {
      token: tok,
      onOpen: () => {
        setTimeout(() => void control(a.url, tok, id, "stop"), 50);
      },
    });
    expect(resumed.status).toBe(200);
    expect(resumed.ended).toBe(true);
    expect(resumed.messages.map((m) => [m.id, m.status])).toEqual([[id, "Finished"]]);
    const finished = resumed.messages[0]!;
    expect(finished.eventId).toBe(
      (await streamEvents(redis, prefix)).filter((e) => e.id === id).at(-1)!.eventId,
    );

    // Resumed after its terminal event: nothing more will come, so the stream ends empty.
    const after = await readStream<StatusMsg>(a.url, `/jobs/${id}/status?since=${finished.eventId}`, {
      token: tok,
      timeoutMs: 5_000,
    });
    expect(after.status).toBe(200);
    expect(after.ended).toBe(true);
    expect(after.messages).toEqual([]);

    // Resumed before it: the history replays as before.
    const replay = await readStream<StatusMsg>(b.url, `/jobs/${id}/status?since=${events[0]!.eventId}`, {
      token: tok,
    });
    expect(replay.messages.at(-1)).toMatchObject({ status: "Finished", eventId: finished.eventId });
  });
});
