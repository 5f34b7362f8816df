// One access-log line per request, after its response (streams included); probes only at debug.
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { FORWARDED_BY_HEADER } from "../../src/http/index.js";
import { bearer, eventually, listen, makeApp, type TestApp } from "./helpers.js";

const apps: TestApp[] = [];
afterEach(async () => {
  for (const t of apps.splice(0)) await t.app.close();
});

async function logged(level: "info" | "debug") {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
      cb();
    },
  });
  const t = await makeApp({ logger: pino({ level }, sink) });
  apps.push(t);
  const requests = () => lines.filter((l) => l.msg === "request completed" || l.msg === "incoming request");
  return { ...t, requests };
}

describe("access log", () => {
  it("writes one line per request, after the response, with what an operator needs", async () => {
    const { app, requests } = await logged("info");
    const headers = { ...(await bearer("alice")), [FORWARDED_BY_HEADER]: "node-b", "x-request-id": "r-1" };
    expect((await app.inject({ url: "/jobs/nope?fields=id", headers })).statusCode).toBe(404);
    expect(requests()).toHaveLength(1);
    expect(requests()[0]).toMatchObject({
      level: 30,
      msg: "request completed",
      reqId: "r-1",
      method: "GET",
      url: "/jobs/nope?fields=id",
      remoteAddress: "127.0.0.1",
      statusCode: 404,
      forwardedBy: "node-b",
    });
    expect(typeof requests()[0]?.responseTime).toBe("number");
  });

  it("logs health checks and metric scrapes only at debug", async () => {
    const info = await logged("info");
    for (const url of ["/healthz", "/readyz", "/metrics"]) await info.app.inject({ url });
    expect(info.requests()).toHaveLength(0);
    const debug = await logged("debug");
    for (const url of ["/healthz", "/readyz", "/metrics"]) await debug.app.inject({ url });
    expect(debug.requests().map((l) => [l.url, l.level])).toEqual([
      ["/healthz", 20],
      ["/readyz", 20],
      ["/metrics", 20],
    ]);
  });

  it("logs a stream once it has ended", async () => {
    const { app, service, requests } = await logged("info");
    service.addJob({ id: "j1", status: "Running" });
    const url = await listen(app);
    const res = await fetch(`${url}/jobs/j1/output`, { headers: await bearer("alice") });
    expect(res.status).toBe(200);
    await res.text();
    await eventually(() => requests().length === 1);
    expect(requests()[0]).toMatchObject({ method: "GET", url: "/jobs/j1/output", statusCode: 200 });
  });
});
