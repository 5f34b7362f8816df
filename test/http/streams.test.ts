import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError, ErrCode, type JobStatus } from "../../src/api/index.js";
import type { StatusStreamItem } from "../../src/http/index.js";
import { whenAborted } from "./fake-service.js";
import { bearer, eventually, listen, makeApp, ndjson, sse, type TestApp } from "./helpers.js";

const apps: TestApp[] = [];
async function started(): Promise<TestApp & { url: string; auth: { authorization: string } }> {
  const t = await makeApp();
  apps.push(t);
  t.service.addJob({ id: "j1", status: "Running" });
  return { ...t, url: await listen(t.app), auth: await bearer("alice") };
}
afterEach(async () => {
  await Promise.all(apps.splice(0).map((t) => t.app.close()));
});

const event = (eventId: string, status: JobStatus): StatusStreamItem => ({
  eventId,
  id: "j1",
  name: "",
  status,
  lastUpdateTime: "2024-01-01T00:00:00.000Z",
});

describe("stream framing", () => {
  it("NDJSON by default, seqId from 1; a one-job status stream ends after the terminal status", async () => {
    const { url, auth } = await started();
    const res = await fetch(`${url}/jobs/j1/status`, { headers: auth });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/x-ndjson");
    const lines = ndjson(await res.text());
    expect(lines).toEqual([
      {
        seqId: 1,
        eventId: "1-0",
        id: "j1",
        name: "",
        status: "Running",
        lastUpdateTime: "2024-01-01T00:00:00.000Z",
      },
      {
        seqId: 2,
        eventId: "2-0",
        id: "j1",
        name: "",
        status: "Finished",
        lastUpdateTime: "2024-01-01T00:00:01.000Z",
      },
    ]);
  });

  it("SSE with Accept: text/event-stream, id: set to the eventId", async () => {
    const { url, auth } = await started();
    const res = await fetch(`${url}/jobs/j1/status`, { headers: { ...auth, accept: "text/event-stream" } });
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    const events = sse(await res.text());
    expect(events.map((e) => e.id)).toEqual(["1-0", "2-0"]);
    expect(events.map((e) => e.data?.seqId)).toEqual([1, 2]);
    expect(events[1]?.data).toMatchObject({ status: "Finished", eventId: "2-0" });
  });

  it("resync messages are numbered too and carry no SSE id", async () => {
    const { url, auth, service } = await started();
    service.statusImpl = async function* () {
      yield { resync: true };
      yield event("9-0", "Finished");
    };
    const events = sse(
      await (
        await fetch(`${url}/jobs/*/status`, { headers: { ...auth, accept: "text/event-stream" } })
      ).text(),
    );
    expect(events[0]).toEqual({ data: { seqId: 1, resync: true } });
    expect(events[1]?.id).toBe("9-0");
  });

  it("output streams end with a complete line", async () => {
    const { url, auth } = await started();
    const res = await fetch(`${url}/jobs/j1/output`, { headers: auth });
    expect(ndjson(await res.text())).toEqual([
      { seqId: 1, output: "hello from node-a\n", outputType: "stdout" },
      { seqId: 2, output: "oops\n", outputType: "stderr" },
      { seqId: 3, complete: true },
    ]);
  });

  it("resource streams end with a complete line (SSE too)", async () => {
    const { url, auth } = await started();
    const res = await fetch(`${url}/jobs/j1/resource-util`, {
      headers: { ...auth, accept: "text/event-stream" },
    });
    const events = sse(await res.text());
    expect(events.map((e) => e.data)).toEqual([
      { seqId: 1, cpuPercent: 1.5, cpuTime: 0.2, residentMemory: 10, virtualMemory: 100 },
      { seqId: 2, complete: true },
    ]);
    expect(events.every((e) => e.id === undefined)).toBe(true);
  });

  it("passes since from the query, or Last-Event-ID", async () => {
    const { url, auth, service } = await started();
    await (await fetch(`${url}/jobs/j1/status?since=5-0`, { headers: auth })).text();
    await (await fetch(`${url}/jobs/j1/status`, { headers: { ...auth, "last-event-id": "7-1" } })).text();
    await (
      await fetch(`${url}/jobs/*/status?since=8-0`, { headers: { ...auth, "last-event-id": "7-1" } })
    ).text();
    expect(service.callsTo("statusStream").map((c) => c.args)).toEqual([
      ["j1", "5-0"],
      ["j1", "7-1"],
      ["*", "8-0"],
    ]);
  });
});

describe("SSE keep-alive", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("sends a comment every 15 s while the stream is quiet", async () => {
    const { url, auth, service } = await started();
    service.statusImpl = async function* (_c, _id, opts) {
      yield event("1-0", "Running");
      await whenAborted(opts.signal);
    };
    // Only the interval timer is faked; sockets and the grace timeout run in real time.
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const client = new AbortController();
    const res = await fetch(`${url}/jobs/j1/status`, {
      headers: { ...auth, accept: "text/event-stream" },
      signal: client.signal,
    });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = decoder.decode((await reader.read()).value);
    expect(text).toContain("id: 1-0");
    vi.advanceTimersByTime(15_000);
    text += decoder.decode((await reader.read()).value);
    expect(text).toMatch(/\n: keep-alive\n\n$/);
    client.abort();
  });
});

describe("stream errors", () => {
  it("an error before the first message is a normal HTTP error", async () => {
    const { url, auth } = await started();
    const missing = await fetch(`${url}/jobs/nope/status`, { headers: auth });
    expect(missing.status).toBe(404);
    expect(missing.headers.get("content-type")).toMatch(/application\/json/);
    expect(await missing.json()).toMatchObject({ code: 3, name: "JobNotFound" });
  });

  it("resource-util of a job that is not running is 409 JobNotRunning", async () => {
    const { url, auth, service } = await started();
    service.addJob({ id: "done", status: "Finished" });
    const res = await fetch(`${url}/jobs/done/resource-util`, { headers: auth });
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({ code: 6, name: "JobNotRunning" });
  });

  it("an error after streaming began is a final error line", async () => {
    const { url, auth, service } = await started();
    service.outputImpl = async function* () {
      yield { output: "partial", outputType: "stdout" };
      throw new ApiError(ErrCode.JobOutputNotFound, "output file vanished");
    };
    const res = await fetch(`${url}/jobs/j1/output`, { headers: auth });
    expect(res.status).toBe(200);
    expect(ndjson(await res.text())).toEqual([
      { seqId: 1, output: "partial", outputType: "stdout" },
      { seqId: 2, error: { code: 7, name: "JobOutputNotFound", message: "output file vanished" } },
    ]);
  });

  it("headers go out before the first message when it is slow; a later error is a line", async () => {
    const { url, auth, service } = await started();
    let firstMessage!: () => void;
    const gate = new Promise<void>((resolve) => {
      firstMessage = resolve;
    });
    // The first message comes only once the client has the headers: were headers held back for it,
    // the fetch would never resolve (the test's timeout fails it).
    service.outputImpl = async function* (_c, _id, _t, signal) {
      await gate;
      if (!signal.aborted) throw new Error("disk on fire");
      yield { output: "never", outputType: "stdout" };
    };
    const res = await fetch(`${url}/jobs/j1/output`, { headers: auth });
    expect(res.status).toBe(200);
    firstMessage();
    expect(ndjson(await res.text())).toEqual([
      { seqId: 1, error: { code: 0, name: "Unknown", message: "disk on fire" } },
    ]);
  });
});

describe("stream lifecycle", () => {
  it("a client disconnect aborts the service's signal at once and closes the gauge", async () => {
    const { url, auth, service, app } = await started();
    let aborted = false;
    service.statusImpl = async function* (_c, _id, opts) {
      yield event("1-0", "Running");
      await whenAborted(opts.signal);
      aborted = true;
    };
    const client = new AbortController();
    const res = await fetch(`${url}/jobs/j1/status`, { headers: auth, signal: client.signal });
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toContain('"seqId":1');
    const metrics = await app.inject({ url: "/metrics" });
    expect(metrics.body).toMatch(/launcher_open_streams\{kind="status"\} 1/);

    client.abort();
    await eventually(() => aborted, 1000);
    expect(service.signals.at(-1)?.aborted).toBe(true);
    await eventually(() => app.streams.size === 0, 1000);
    expect((await app.inject({ url: "/metrics" })).body).toMatch(/launcher_open_streams\{kind="status"\} 0/);
  });

  it("a client leaving before the first message also aborts", async () => {
    const { url, auth, service } = await started();
    service.statusImpl = async function* (_c, _id, opts) {
      await whenAborted(opts.signal);
      yield event("never", "Running");
    };
    const client = new AbortController();
    const pending = fetch(`${url}/jobs/j1/status`, { headers: auth, signal: client.signal }).catch(
      () => undefined,
    );
    await eventually(() => service.signals.length === 1, 1000);
    client.abort();
    await pending;
    await eventually(() => service.signals[0]?.aborted === true, 1000);
  });

  it("app.close() ends open streams with a PluginRestarted line", async () => {
    const t = await makeApp();
    t.service.addJob({ id: "j1", status: "Running" });
    const url = await listen(t.app);
    t.service.statusImpl = async function* (_c, _id, opts) {
      yield event("1-0", "Running");
      await whenAborted(opts.signal);
    };
    const res = await fetch(`${url}/jobs/j1/status`, { headers: await bearer("alice") });
    const text = res.text();
    await eventually(() => t.app.streams.size === 1);
    await t.app.close();
    const lines = ndjson(await text);
    expect(lines[1]).toMatchObject({ seqId: 2, error: { code: 4, name: "PluginRestarted" } });
    expect(t.service.signals[0]?.aborted).toBe(true);
  });
});
