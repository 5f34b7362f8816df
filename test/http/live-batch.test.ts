// A push stream's live messages leave together: what arrives in one turn in one chunk, and what
// arrives while the client is behind waits for its `drain` in 64 KiB pieces (src/http/streams.ts,
// LiveBatch).
import { afterEach, expect, it } from "vitest";
import type { JobStatus } from "../../src/api/index.js";
import type { StatusStreamItem } from "../../src/http/index.js";
import type { PushSink, PushStream } from "../../src/launcher/port.js";
import { eventually, listen, makeApp, type TestApp, token } from "./helpers.js";
import { chunks, jsonLines, rawConnect, readToEnd } from "./raw-http.js";

const apps: TestApp[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((t) => t.app.close()));
});

const event = (n: number, name = ""): StatusStreamItem => ({
  eventId: `${n}-0`,
  id: "j1",
  name,
  status: "Running" as JobStatus,
  lastUpdateTime: "2024-01-01T00:00:00.000Z",
});

/** A status stream with one caught-up event (1-0) whose live part is `live`. */
function pushStream(live: (sink: PushSink<StatusStreamItem>) => Promise<void>): PushStream<StatusStreamItem> {
  return {
    async *catchUp() {
      yield event(1);
    },
    follow: live,
    close() {},
    [Symbol.asyncIterator]() {
      throw new Error("the writer pulls catchUp() and follows; it never iterates the stream");
    },
  };
}

/** The chunks of a raw chunked response, in order. */
function chunksOf(raw: Buffer): string[] {
  const text = raw.toString("utf8");
  return chunks(text.slice(text.indexOf("\r\n\r\n") + 4));
}

async function streamRaw(t: TestApp, paused: boolean) {
  const url = await listen(t.app);
  const socket = await rawConnect(url);
  if (paused) socket.pause();
  socket.write(
    `GET /jobs/j1/status HTTP/1.1\r\nHost: test\r\nConnection: close\r\nAuthorization: Bearer ${await token("alice")}\r\n\r\n`,
  );
  return socket;
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

it("live events that arrive in one turn reach the client in one chunk, in order", async () => {
  const t = await makeApp();
  apps.push(t);
  t.service.addJob({ id: "j1", status: "Running" });
  t.service.statusImpl = () =>
    pushStream(async (sink) => {
      await nextTurn(); // after the caught-up event has left
      for (let n = 2; n <= 101; n++) sink.write(event(n));
      await nextTurn();
      await nextTurn();
    });
  const raw = await readToEnd(await streamRaw(t, false));
  const chunks = chunksOf(raw);
  const lines = jsonLines(chunks.join(""));
  expect(lines.map((l) => l.eventId)).toEqual(Array.from({ length: 101 }, (_, i) => `${i + 1}-0`));
  expect(lines.map((l) => l.seqId)).toEqual(Array.from({ length: 101 }, (_, i) => i + 1));
  const live = chunks.filter((c) => c.includes('"eventId":"2-0"') || c.includes('"eventId":"101-0"'));
  expect(live).toHaveLength(1); // the 100 live events: one chunk
  expect(jsonLines(live[0]!)).toHaveLength(100);
});

it("what arrives while the client is behind waits for it in 64 KiB pieces, and counts as unread", async () => {
  // A big budget: the client stays behind for the whole test without the stream being ended.
  const t = await makeApp({ settings: { streamBufferBytes: 256 * 1024 * 1024 } });
  apps.push(t);
  t.service.addJob({ id: "j1", status: "Running" });
  const name = "n".repeat(2_000);
  const TURNS = 2_000;
  let behindAt = 0;
  let unreadWhenBehind = 0;
  let writtenWhenBehind = 0;
  let sent = 1;
  t.service.statusImpl = (_c, _id, opts) =>
    pushStream(async (sink) => {
      // Five events a turn until the paused client has been behind for many turns.
      for (let turn = 0; turn < TURNS; turn++) {
        for (let i = 0; i < 5; i++) {
          const taken = sink.write(event(++sent, name));
          if (!taken && behindAt === 0) behindAt = turn;
        }
        if (turn === TURNS - 1) {
          unreadWhenBehind = opts.budget!.unread();
          writtenWhenBehind = sent;
        }
        await nextTurn();
      }
    });
  const socket = await streamRaw(t, true);
  await eventually(() => writtenWhenBehind > 0, 20_000);
  expect(behindAt).toBeGreaterThan(0); // the paused client fell behind
  // What waits is counted: at least what went out after the kernel's buffers were full.
  expect(unreadWhenBehind).toBeGreaterThan((TURNS - behindAt) * 5 * name.length);
  const chunks = chunksOf(await readToEnd(socket));
  const lines = jsonLines(chunks.join(""));
  expect(lines.map((l) => l.seqId)).toEqual(Array.from({ length: sent }, (_, i) => i + 1));
  // The turns while behind did not each leave as a chunk: they waited for the client together, packed
  // into pieces of 64 KiB (each turn here is ~10 kB).
  const behindBytes = (TURNS - behindAt) * 5 * (name.length + 200); // + the line's JSON around the name
  expect(chunks.length).toBeLessThanOrEqual(behindAt + Math.ceil(behindBytes / (64 * 1024)) + 2);
}, 60_000);
