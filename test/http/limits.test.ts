// The HTTP side of the limits (docs/http-api.md "Users, privileges and limits"): a request must arrive within
// LAUNCHER_BODY_TIMEOUT_MS (408 with the API's error body, connection closed) while long responses
// are never cut by it; a stream that holds too much for its client ends with a final error line.
import { afterEach, describe, expect, it } from "vitest";
import type { JobStatus } from "../../src/api/index.js";
import { requestCheckIntervalMs } from "../../src/http/app.js";
import type { StatusStreamItem } from "../../src/http/index.js";
import { ENDED_STREAM_GRACE_MS } from "../../src/http/streams.js";
import { bearer, eventually, listen, makeApp, ndjson, sleep, type TestApp, token } from "./helpers.js";
import { jsonLines, parseResponse, rawConnect, readToEnd } from "./raw-http.js";

const apps: TestApp[] = [];
async function started(settings: Parameters<typeof makeApp>[0] = {}) {
  const t = await makeApp(settings);
  apps.push(t);
  t.service.addJob({ id: "j1", status: "Running" });
  return { ...t, url: await listen(t.app), auth: await bearer("alice") };
}
afterEach(async () => {
  await Promise.all(apps.splice(0).map((t) => t.app.close()));
});

const event = (eventId: string, status: JobStatus, name?: string): StatusStreamItem => ({
  eventId,
  id: "j1",
  name: name ?? "",
  status,
  lastUpdateTime: "2024-01-01T00:00:00.000Z",
});

describe("LAUNCHER_BODY_TIMEOUT_MS", () => {
  const BODY_TIMEOUT = 1_000;

  it("checks for overdue requests often enough: a quarter of the timeout, 50 ms to 1 s", () => {
    expect(requestCheckIntervalMs(30_000)).toBe(1_000);
    expect(requestCheckIntervalMs(1_000)).toBe(250);
    expect(requestCheckIntervalMs(100)).toBe(50);
  });

  it("a body trickled a byte at a time gets 408 with the API's error body, and the connection closes", async () => {
    const { url, service } = await started({ settings: { bodyTimeoutMs: BODY_TIMEOUT } });
    const socket = await rawConnect(url);
    const response = readToEnd(socket);
    const body = JSON.stringify({ command: "echo hi", name: "x".repeat(200) });
    const t0 = Date.now();
    socket.write(
      `POST /jobs HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer ${await token("alice")}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`,
    );
    // One byte every 200 ms: the connection is never idle, the body would take 40 s.
    let sent = 0;
    const trickle = setInterval(() => {
      if (!socket.destroyed && sent < body.length) socket.write(body[sent++]!);
    }, 200);
    try {
      const res = parseResponse(await response); // resolves when the node closes the connection
      const elapsed = Date.now() - t0;
      expect(res.status).toBe(408);
      expect(res.headers.connection).toBe("close");
      expect(JSON.parse(res.body)).toEqual({
        code: 2,
        name: "InvalidRequest",
        message: expect.stringMatching(/timed out.*1000 ms/),
      });
      // Not before the setting (a hang would be the test's timeout, 40 s of trickle its body).
      expect(elapsed).toBeGreaterThanOrEqual(BODY_TIMEOUT - 50);
      expect(sent).toBeLessThan(body.length);
      expect(service.callsTo("submit")).toEqual([]);
    } finally {
      clearInterval(trickle);
      socket.destroy();
    }
  });

  it("headers that never finish get 408 too", async () => {
    const { url } = await started({ settings: { bodyTimeoutMs: BODY_TIMEOUT } });
    const socket = await rawConnect(url);
    const response = readToEnd(socket);
    socket.write("GET /cluster-info HTTP/1.1\r\nHost: test\r\n");
    const res = parseResponse(await response);
    expect(res.status).toBe(408);
    expect(JSON.parse(res.body)).toMatchObject({ code: 2, name: "InvalidRequest" });
  });

  it("a body that arrives in time is served as usual", async () => {
    const { url, auth, service } = await started({ settings: { bodyTimeoutMs: BODY_TIMEOUT } });
    const res = await fetch(`${url}/jobs`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ command: "echo hi" }),
    });
    expect(res.status).toBe(201);
    expect(service.callsTo("submit")).toHaveLength(1);
  });

  it("does not cut a status stream that lasts longer than the timeout", async () => {
    const { url, auth, service } = await started({ settings: { bodyTimeoutMs: BODY_TIMEOUT } });
    service.statusImpl = async function* (_c, _id, opts) {
      for (let i = 1; i <= 6; i++) {
        yield event(`${i}-0`, "Running");
        await sleep(500);
        if (opts.signal.aborted) return;
      }
      yield event("7-0", "Finished");
    };
    const t0 = Date.now();
    const res = await fetch(`${url}/jobs/j1/status`, { headers: auth });
    const lines = ndjson(await res.text());
    expect(Date.now() - t0).toBeGreaterThan(BODY_TIMEOUT * 2.5);
    expect(lines.map((l) => l.eventId)).toEqual(["1-0", "2-0", "3-0", "4-0", "5-0", "6-0", "7-0"]);
    expect(lines.some((l) => "error" in l)).toBe(false);
  });
});

describe("LAUNCHER_STREAM_BUFFER_BYTES", () => {
  it("hands the status stream a budget: the limit and the bytes its client has not read", async () => {
    const { url, auth, service } = await started({ settings: { streamBufferBytes: 123_456 } });
    let seen: { limit: number; unread: number } | undefined;
    service.statusImpl = async function* (_c, _id, opts) {
      seen = { limit: opts.budget!.limit, unread: opts.budget!.unread() };
      yield event("1-0", "Finished");
    };
    await (await fetch(`${url}/jobs/j1/status`, { headers: auth })).text();
    expect(seen).toEqual({ limit: 123_456, unread: 0 });
  });

  /**
   * A fake that yields as fast as it is pulled and, like a queueing service, calls `exceeded()` once
   * the writer has been stuck on a client that is not reading (nothing pulled for 200 ms).
   */
  function overflowingStream(
    service: TestApp["service"],
    state: { exceeded: boolean; unreadThen: number },
  ): void {
    const name = "n".repeat(1000);
    service.statusImpl = async function* (_c, _id, opts) {
      const budget = opts.budget!;
      let lastPull = Date.now();
      const watch = setInterval(() => {
        if (Date.now() - lastPull > 200 && budget.unread() > 0) {
          clearInterval(watch);
          state.unreadThen = budget.unread();
          state.exceeded = true;
          budget.exceeded();
        }
      }, 20);
      try {
        for (let i = 1; !opts.signal.aborted; i++) {
          lastPull = Date.now();
          yield event(`${i}-0`, "Running", name);
        }
      } finally {
        clearInterval(watch);
      }
    };
  }

  async function openPaused(url: string) {
    const socket = await rawConnect(url);
    socket.pause();
    socket.write(
      `GET /jobs/j1/status HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer ${await token("alice")}\r\n\r\n`,
    );
    return socket;
  }

  it("exceeded() ends the stream at once, though the writer is waiting for a client that is not reading", async () => {
    const { url, service, app } = await started();
    const state = { exceeded: false, unreadThen: 0 };
    overflowingStream(service, state);
    const socket = await openPaused(url);
    try {
      await eventually(() => state.exceeded, 10_000);
      // The writer was waiting for `drain`; it must not wait for the client to end the stream.
      expect(state.unreadThen).toBeGreaterThan(0);
      await eventually(() => app.streams.size === 0, 2_000);
      const metrics = await app.inject({ url: "/metrics" });
      expect(metrics.body).toMatch(/launcher_open_streams\{kind="status"\} 0/);

      // The client now reads: every event it was sent, then the final error line, then the close.
      const res = parseResponse(await readToEnd(socket));
      expect(res.status).toBe(200);
      const lines = jsonLines(res.body);
      const last = lines.at(-1)!;
      const before = lines.at(-2)!;
      expect(lines.map((l) => l.seqId)).toEqual(lines.map((_, i) => i + 1));
      expect(before.eventId).toBe(`${lines.length - 1}-0`);
      expect(last).toEqual({
        seqId: lines.length,
        error: {
          code: 5,
          name: "Timeout",
          message: `stream ended: the client read too slowly (more than 4194304 bytes unread); resume with ?since=${before.eventId}`,
        },
      });
    } finally {
      socket.destroy();
    }
  });

  it(
    "a client that never reads the end of its ended stream loses the connection after the grace period",
    async () => {
      const { url, service, app } = await started();
      const state = { exceeded: false, unreadThen: 0 };
      overflowingStream(service, state);
      const socket = await openPaused(url);
      const connections = () =>
        new Promise<number>((resolve, reject) =>
          app.server.getConnections((err, n) => (err ? reject(err) : resolve(n))),
        );
      try {
        await eventually(() => state.exceeded, 10_000);
        await eventually(() => app.streams.size === 0, 2_000);
        expect(await connections()).toBe(1);
        const t0 = Date.now();
        for (;;) {
          if ((await connections()) === 0) break;
          if (Date.now() - t0 > ENDED_STREAM_GRACE_MS + 5_000) throw new Error("connection still open");
          await sleep(100);
        }
        expect(Date.now() - t0).toBeGreaterThan(ENDED_STREAM_GRACE_MS - 1_000);
      } finally {
        socket.destroy();
      }
    },
    ENDED_STREAM_GRACE_MS + 20_000,
  );
});
