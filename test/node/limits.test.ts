// The limits of docs/http-api.md "Users, privileges and limits" on a real node: every breach of a submission
// cap is a 400 InvalidRequest naming the field and creates nothing (property tests, through HTTP and
// through the Posit plugin's front door); a request body must arrive within LAUNCHER_BODY_TIMEOUT_MS
// while streams outlast it; status events carry only bounded fields; a status stream whose client
// reads too slowly is ended with a line that says where to resume, and resuming from there loses
// nothing.
import fc from "fast-check";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  MAX_NAME_LENGTH,
  MAX_STATUS_MESSAGE_LENGTH,
  MAX_TAG_LENGTH,
  MAX_TAGS,
  MAX_USER_LENGTH,
} from "../../src/api/index.js";
import { fleetKeys } from "../../src/cluster/keys.js";
import { encodeFrame, FrameDecoder } from "../../src/plugin/framing.js";
import { type OwnerForwarder, PluginServer } from "../../src/plugin/server.js";
import { EventFlood } from "../helpers/flood.js";
import { api, readStream, startTestNode, type TestNode, token, until } from "../helpers/nodes.js";
import { redisClient, uniquePrefix } from "../helpers/redis.js";
import { jsonLines, parseResponse, rawConnect, readToEnd } from "../http/raw-http.js";
import type { Message } from "../plugin/driver.js";
import { endAll, listJobs, submit, waitTerminal } from "./helpers.js";

type ErrorBody = { code: number; name: string; message: string };

const BODY_TIMEOUT = 1_500;

let n: TestNode;
let alice: string;
let admin: string;

beforeAll(async () => {
  n = await startTestNode(uniquePrefix("limits"), { bodyTimeoutMs: BODY_TIMEOUT });
  alice = await token("alice");
  admin = await token("ops", { admin: true });
});
afterAll(async () => {
  await endAll(n, admin);
  await n.close();
});

const count = async () => (await listJobs(n, admin, "?user=*")).length;

function post(body: unknown) {
  return api<ErrorBody>(n.url, "POST", "/jobs", { token: alice, body });
}

// ---------------------------------------------------------------------------------------------
// Generators: one breach of one rule, on an otherwise good job; with the field it must name.

/** Any string, of any characters, with a NUL somewhere. */
const withNul = fc
  .tuple(fc.string({ unit: "binary", maxLength: 20 }), fc.string({ unit: "binary", maxLength: 20 }))
  .map(([a, b]) => `${a}\u0000${b}`);
/** More than `max` characters, counted as code points (some of them outside the BMP). */
const tooLong = (max: number) =>
  fc
    .tuple(fc.integer({ min: max + 1, max: max + 300 }), fc.constantFrom("x", "é", "😀", "\u0000"))
    .map(([len, ch]) => ch.repeat(len));
const goodEnv = fc.record({
  name: fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,8}$/),
  value: fc.string({ maxLength: 8 }).filter((v) => !v.includes("\0")),
});
const goodArgs = fc.array(
  fc.string({ maxLength: 6 }).filter((a) => !a.includes("\0")),
  { maxLength: 3 },
);

type Breach = { body: Record<string, unknown>; field: RegExp };

const breach: fc.Arbitrary<Breach> = fc.oneof(
  tooLong(MAX_NAME_LENGTH).map((name) => ({ body: { command: "true", name }, field: /\bname\b/ })),
  fc
    .array(fc.string({ maxLength: 8 }), { minLength: MAX_TAGS + 1, maxLength: MAX_TAGS + 40 })
    .map((tags) => ({ body: { command: "true", tags }, field: /\btags\b/ })),
  fc
    .tuple(fc.array(fc.string({ maxLength: 8 }), { maxLength: 5 }), tooLong(MAX_TAG_LENGTH), fc.nat(5))
    .map(([tags, long, at]) => {
      const all = [...tags];
      all.splice(Math.min(at, all.length), 0, long);
      return { body: { command: "true", tags: all }, field: /\btags\b/ };
    }),
  withNul.map((command) => ({ body: { command }, field: /\bcommand\b/ })),
  withNul.map((exe) => ({ body: { exe }, field: /\bexe\b/ })),
  fc.tuple(withNul, fc.constantFrom("workingDirectory", "stdoutFile", "stderrFile")).map(([v, field]) => ({
    body: { command: "true", [field]: `/tmp/${v}` },
    field: new RegExp(`\\b${field}\\b`),
  })),
  fc.tuple(goodArgs, withNul, fc.nat(3)).map(([args, bad, at]) => {
    const all = [...args];
    all.splice(Math.min(at, all.length), 0, bad);
    return { body: { command: "echo", args: all }, field: /\bargs\b/ };
  }),
  fc
    .tuple(
      fc.array(goodEnv, { maxLength: 3 }),
      fc.oneof(
        withNul.map((name) => ({ name, value: "v" })),
        withNul.map((value) => ({ name: "V", value })),
        fc
          .tuple(fc.string({ maxLength: 6 }), fc.string({ maxLength: 6 }))
          .map(([a, b]) => ({ name: `${a}=${b}`, value: "v" })),
        fc.constant({ name: "", value: "v" }),
      ),
      fc.nat(3),
    )
    .map(([envs, bad, at]) => {
      const all = [...envs];
      all.splice(Math.min(at, all.length), 0, bad);
      return { body: { command: "env", environment: all }, field: /\benvironment\b/ };
    }),
  withNul.map((user) => ({ body: { command: "true", user: `u${user}` }, field: /\buser\b/ })),
);

describe("submission limits (HTTP)", () => {
  it("every breach is 400 InvalidRequest naming the field, and no job is created", async () => {
    const before = await count();
    await fc.assert(
      fc.asyncProperty(breach, async ({ body, field }) => {
        // `user` is the caller's own unless an admin names another: breaches of it are an admin's.
        const res = await api<ErrorBody>(n.url, "POST", "/jobs", {
          token: "user" in body ? admin : alice,
          body,
        });
        expect(res.status, JSON.stringify(res.body)).toBe(400);
        expect(res.body).toMatchObject({ code: 2, name: "InvalidRequest" });
        expect(res.body.message).toMatch(field);
      }),
      { numRuns: 150 },
    );
    expect(await count()).toBe(before);
  });

  it("names the exact element at fault", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ command: "true", name: "n".repeat(MAX_NAME_LENGTH + 1) }, "name"],
      [{ command: "true", tags: ["a", "t".repeat(MAX_TAG_LENGTH + 1)] }, "tags/1"],
      [{ command: "echo", args: ["ok", "a\u0000b"] }, "args/1"],
      [
        {
          command: "env",
          environment: [
            { name: "A", value: "1" },
            { name: "B=C", value: "2" },
          ],
        },
        "environment/1/name",
      ],
      [{ command: "env", environment: [{ name: "", value: "2" }] }, "environment/0/name"],
      [{ command: "env", environment: [{ name: "A", value: "x\u0000" }] }, "environment/0/value"],
      [{ command: "ls \u0000" }, "command"],
      [{ exe: "/bin/ls\u0000" }, "exe"],
      [{ command: "true", workingDirectory: "/tmp\u0000" }, "workingDirectory"],
      [{ command: "true", stdoutFile: "/tmp/o\u0000" }, "stdoutFile"],
      [{ command: "true", stderrFile: "/tmp/e\u0000" }, "stderrFile"],
    ];
    const before = await count();
    for (const [body, field] of cases) {
      const res = await post(body);
      expect(res.status, field).toBe(400);
      expect(res.body.code).toBe(2);
      expect(res.body.message, field).toContain(field);
    }
    const asAdmin = await api<ErrorBody>(n.url, "POST", "/jobs", {
      token: admin,
      body: { command: "true", user: "u".repeat(MAX_USER_LENGTH + 1) },
    });
    expect(asAdmin.status).toBe(400);
    expect(asAdmin.body.message).toContain("user");
    expect(await count()).toBe(before);
  });

  it("what is exactly at the limits is accepted (characters are code points)", async () => {
    const job = await submit(n, alice, {
      command: "true",
      name: "😀".repeat(MAX_NAME_LENGTH), // 2,048 UTF-16 units, 1,024 characters
      tags: Array.from({ length: MAX_TAGS }, (_, i) => `${i}`.padEnd(MAX_TAG_LENGTH, "é")),
      environment: [{ name: "EMPTY_VALUE", value: "" }],
    });
    expect(job.name).toBe("😀".repeat(MAX_NAME_LENGTH));
    expect(await waitTerminal(n, alice, job.id)).toMatchObject({ status: "Finished" });
  });
});

describe("submission limits (the Posit plugin's front door)", () => {
  it("the same breaches are refused through the plugin protocol, and no job is created", async () => {
    const messages: Message[] = [];
    const writer = {
      maxSize: 5 * 1024 * 1024,
      write(message: unknown): undefined {
        const frame = encodeFrame(message, 5 * 1024 * 1024);
        messages.push(JSON.parse(frame.subarray(4).toString("utf8")) as Message);
        return undefined;
      },
    };
    const server = new PluginServer({
      writer,
      logger: pino({ level: "silent" }),
      adminGroup: "launcher-admins",
      deps: { service: n.node.service, owners: {} as OwnerForwarder },
    });
    let requestId = 0;
    const ask = async (message: Message): Promise<Message> => {
      const id = ++requestId;
      for (const event of new FrameDecoder().push(encodeFrame({ ...message, requestId: id })))
        server.handleEvent(event);
      return until(() => messages.find((m) => m.requestId === id));
    };
    await ask({ messageType: 1, version: { major: 3, minor: 5, patch: 0 } });
    const before = await count();
    await fc.assert(
      fc.asyncProperty(breach, async ({ body, field }) => {
        const username = "user" in body ? "*" : "alice";
        const answer = await ask({ messageType: 2, username, requestUsername: "rstudio", job: body });
        expect(answer, JSON.stringify(answer)).toMatchObject({ messageType: -1, errorCode: 2 });
        expect(answer.errorMessage).toMatch(field);
      }),
      { numRuns: 60 },
    );
    server.close();
    expect(await count()).toBe(before);
  });
});

describe("LAUNCHER_BODY_TIMEOUT_MS on a node", () => {
  it("a body trickled one byte every 10 s gets 408 with the API's error body; nothing is created", async () => {
    const before = await count();
    const socket = await rawConnect(n.url);
    const response = readToEnd(socket);
    const body = JSON.stringify({ command: "echo trickled" });
    socket.write(
      `POST /jobs HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer ${alice}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body[0]}`,
    );
    let sent = 1;
    const trickle = setInterval(() => {
      if (!socket.destroyed) socket.write(body[sent++] ?? "");
    }, 10_000);
    const t0 = Date.now();
    try {
      const res = parseResponse(await response);
      expect(res.status).toBe(408);
      expect(JSON.parse(res.body)).toMatchObject({ code: 2, name: "InvalidRequest" });
      const elapsed = Date.now() - t0;
      expect(elapsed).toBeGreaterThan(BODY_TIMEOUT - 200); // not before the setting
    } finally {
      clearInterval(trickle);
      socket.destroy();
    }
    expect(await count()).toBe(before);
  });

  it("a status stream lasting longer than the body timeout is not cut", async () => {
    const job = await submit(n, alice, { command: "sleep 2.5; echo done" });
    const t0 = Date.now();
    const { messages, ended } = await readStream<{ status?: string; error?: unknown }>(
      n.url,
      `/jobs/${job.id}/status`,
      { token: alice, timeoutMs: 20_000 },
    );
    expect(Date.now() - t0).toBeGreaterThan(BODY_TIMEOUT);
    expect(ended).toBe(true);
    expect(messages.at(-1)).toMatchObject({ status: "Finished" });
    expect(messages.some((m) => m.error !== undefined)).toBe(false);
  });
});

describe("status events carry only bounded fields", () => {
  it("a launch failure quoting a huge path leaves a statusMessage of at most the cap, in the job and its events", async () => {
    const exe = `/nonexistent/${"d".repeat(100_000)}`;
    const job = await submit(n, alice, { exe });
    const stream = readStream<{ status?: string; statusMessage?: string }>(n.url, `/jobs/${job.id}/status`, {
      token: alice,
      timeoutMs: 15_000,
    });
    const done = await waitTerminal(n, alice, job.id);
    expect(done.status).toBe("Failed");
    expect(done.statusMessage).toBeTruthy();
    expect([...done.statusMessage!].length).toBeLessThanOrEqual(MAX_STATUS_MESSAGE_LENGTH);
    const { messages } = await stream;
    const failed = messages.find((m) => m.status === "Failed");
    expect(failed?.statusMessage).toBe(done.statusMessage);
    // And in the Redis events stream itself.
    const redis = redisClient();
    try {
      const entries = (await redis.xrevrange(
        fleetKeys(n.settings.keyPrefix).events,
        "+",
        "-",
        "COUNT",
        50,
      )) as [string, string[]][];
      const events = entries.map(([, f]) => JSON.parse(f[1]!) as { id: string; statusMessage?: string });
      const mine = events.filter((e) => e.id === job.id);
      expect(mine.length).toBeGreaterThan(0);
      for (const e of mine)
        expect(e.statusMessage?.length ?? 0).toBeLessThanOrEqual(MAX_STATUS_MESSAGE_LENGTH);
    } finally {
      redis.disconnect();
    }
  });
});

describe("LAUNCHER_STREAM_BUFFER_BYTES on a node", () => {
  const LIMIT = 64 * 1024;
  let slow: TestNode;
  beforeAll(async () => {
    slow = await startTestNode(uniquePrefix("limits-slow"), { streamBufferBytes: LIMIT });
  });
  afterAll(async () => {
    await slow.close();
  });

  it("a `*` status stream whose client stops reading is ended by the node with where to resume; resuming loses nothing", async () => {
    const redis = redisClient();
    const flood = new EventFlood(redis, slow.settings.keyPrefix);
    const socket = await rawConnect(slow.url);
    socket.pause(); // reads nothing until the node has ended the stream
    try {
      socket.write(`GET /jobs/*/status HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer ${admin}\r\n\r\n`);
      await until(() => slow.node.app.streams.size === 1);
      // Events flow until the node ends the stream: past the kernel's socket buffers, what the
      // node holds grows until it passes the limit.
      while (slow.node.app.streams.size > 0) {
        if (flood.emitted > 40_000) throw new Error("the node never ended the stream");
        await flood.emit(200);
      }
      const ended = flood.emitted;

      // The client reads now: what was sent, then the final line, then the node closes the connection.
      const res = parseResponse(await readToEnd(socket));
      expect(res.status).toBe(200);
      const lines = jsonLines(res.body);
      const last = lines.at(-1) as { error?: ErrorBody };
      const before = lines.at(-2) as { eventId: string; id: string };
      expect(last.error).toMatchObject({ code: 5, name: "Timeout" });
      expect(last.error?.message).toContain("the client read too slowly");
      expect(last.error?.message).toContain(`resume with ?since=${before.eventId}`);
      // Everything before it arrived in order, none missing.
      const ids = lines.slice(0, -1).map((l) => Number(String(l.id).replace("flood-", "")));
      expect(ids).toEqual(ids.map((_, i) => i + 1));

      // Resuming where it said: the very next event, and every one after it. First the node's bus
      // catches up with the flood (on a loaded machine it may still be delivering it, and a resumed
      // stream queues live events while it replays: 64 KiB of them would end it).
      await flood.emit(10);
      await until(async () => (await eventsDelivered(slow.url)) >= flood.emitted, { timeoutMs: 30_000 });
      const seen = Number(before.id.replace("flood-", ""));
      const resumed = await readStream<{ id?: string }>(slow.url, `/jobs/*/status?since=${before.eventId}`, {
        token: admin,
        until: (m) => m.id === `flood-${flood.emitted}`,
        timeoutMs: 30_000,
      });
      expect(resumed.status, JSON.stringify(resumed.messages[0])).toBe(200);
      const next = resumed.messages.map((m) => Number(String(m.id).replace("flood-", "")));
      expect(next[0]).toBe(seen + 1);
      expect(next).toEqual(next.map((_, i) => seen + 1 + i));
      expect(next.at(-1)).toBe(flood.emitted);
      expect(flood.emitted).toBeGreaterThan(ended);
    } finally {
      socket.destroy();
      redis.disconnect();
    }
  }, 120_000);
});

/** Status events a node has taken from the fleet's bus (its /metrics gauge). */
async function eventsDelivered(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^launcher_status_events_delivered (\d+)/m.exec(text)?.[1] ?? 0);
}
