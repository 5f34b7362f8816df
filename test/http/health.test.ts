import { afterEach, describe, expect, it } from "vitest";
import { formatRunTime } from "../../src/http/index.js";
import { bearer, listen, makeApp, type TestApp } from "./helpers.js";

const apps: TestApp[] = [];
async function app(): Promise<TestApp> {
  const t = await makeApp();
  apps.push(t);
  return t;
}
afterEach(async () => {
  await Promise.all(apps.splice(0).map((t) => t.app.close()));
});

describe("/status", () => {
  it("is 200 when Green, with metrics", async () => {
    const { app: a } = await app();
    await a.inject({ url: "/healthz" });
    const res = await a.inject({ url: "/status" });
    expect(res.statusCode).toBe(200);
    const body = res.json() as Record<string, unknown> & { metrics: Record<string, unknown> };
    expect(body).toMatchObject({
      status: "Green",
      node: { id: "node-a", port: "5559", online: true },
      redis: { connected: true, latencyMs: 0.4 },
      fleet: { online: 1, total: 1 },
    });
    expect(body.metrics.runTime).toMatch(/^\d{2,}:\d{2}:\d{2}$/);
    expect(body.metrics.totalRequests).toBe(1);
    expect(body.metrics.connectionCount).toBe(0);
  });

  it("is 503 when Yellow or Red, still with the body", async () => {
    const { app: a, service } = await app();
    for (const status of ["Yellow", "Red"] as const) {
      service.healthReport = {
        ...service.healthReport,
        status,
        ready: false,
        reasons: ["Redis is unreachable"],
      };
      const res = await a.inject({ url: "/status" });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toMatchObject({ status });
    }
  });

  it("counts open connections when listening", async () => {
    const { app: a } = await app();
    const url = await listen(a);
    const body = (await (await fetch(`${url}/status`)).json()) as { metrics: { connectionCount: number } };
    expect(body.metrics.connectionCount).toBeGreaterThanOrEqual(1);
  });

  it("a failing health check is 503, not 500", async () => {
    const { app: a, service } = await app();
    service.health = async () => {
      throw new Error("redis gone");
    };
    const res = await a.inject({ url: "/status" });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ code: 4, name: "PluginRestarted" });
    expect((await a.inject({ url: "/readyz" })).statusCode).toBe(503);
  });

  it("formats run time as HH:MM:SS", () => {
    expect(formatRunTime(0)).toBe("00:00:00");
    expect(formatRunTime(3_723_000)).toBe("01:02:03");
    expect(formatRunTime(100 * 3600_000 + 59_999)).toBe("100:00:59");
  });
});

describe("/healthz and /readyz", () => {
  it("/healthz is 200 while serving", async () => {
    const { app: a } = await app();
    expect((await a.inject({ url: "/healthz" })).statusCode).toBe(200);
  });

  it("/readyz follows service.health().ready", async () => {
    const { app: a, service } = await app();
    const ready = await a.inject({ url: "/readyz" });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ ready: true });
    service.healthReport = { ...service.healthReport, ready: false, reasons: ["node is draining"] };
    const notReady = await a.inject({ url: "/readyz" });
    expect(notReady.statusCode).toBe(503);
    expect(notReady.json()).toEqual({ ready: false, reasons: ["node is draining"] });
  });
});

describe("/metrics", () => {
  it("serves Prometheus text with the HTTP metrics", async () => {
    const { app: a, registry } = await app();
    await a.inject({ url: "/jobs", headers: await bearer() });
    await a.inject({ url: "/jobs/x", headers: await bearer() });
    const res = await a.inject({ url: "/metrics" });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^text\/plain/);
    expect(res.body).toContain("launcher_http_requests_total");
    expect(res.body).toContain("launcher_http_request_duration_seconds_bucket");
    expect(res.body).toContain('launcher_open_streams{kind="output"} 0');
    expect(res.body).toMatch(/launcher_http_requests_total\{method="GET",route="\/jobs",status="200"\} 1/);
    expect(res.body).toMatch(
      /launcher_http_requests_total\{method="GET",route="\/jobs\/:id",status="404"\} 1/,
    );
    // The registry is the one passed in, and the node can add to it.
    expect(a.metricsRegistry).toBe(registry);
  });

  it("each app has its own registry", async () => {
    const one = await app();
    const two = await app();
    await one.app.inject({ url: "/healthz" });
    expect((await two.app.inject({ url: "/metrics" })).body).not.toMatch(/route="\/healthz"/);
  });
});

describe("/docs", () => {
  it("/docs/json is an OpenAPI 3 document with the job paths and bearer security", async () => {
    const { app: a } = await app();
    const res = await a.inject({ url: "/docs/json" });
    expect(res.statusCode).toBe(200);
    const doc = res.json() as {
      openapi: string;
      paths: Record<string, Record<string, { security?: unknown[] }>>;
      components: { securitySchemes: Record<string, unknown> };
    };
    expect(doc.openapi).toMatch(/^3\./);
    for (const path of [
      "/jobs",
      "/jobs/{id}",
      "/jobs/{id}/control",
      "/jobs/{id}/status",
      "/jobs/{id}/output",
      "/jobs/{id}/resource-util",
      "/jobs/{id}/network",
      "/cluster-info",
      "/nodes",
      "/status",
      "/readyz",
      "/metrics",
    ]) {
      expect(doc.paths[path], path).toBeDefined();
    }
    expect(doc.paths["/jobs"]?.post).toBeDefined();
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: "http", scheme: "bearer" });
    expect(doc.paths["/status"]?.get?.security).toEqual([]);
  });

  it("/docs serves the UI", async () => {
    const { app: a } = await app();
    const res = await a.inject({ url: "/docs" });
    expect([200, 302]).toContain(res.statusCode);
  });
});
