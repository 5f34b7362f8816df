import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ApiError, ErrCode, type JobFilter } from "../../src/api/index.js";
import { FakeService } from "./fake-service.js";
import { adminAuth, bearer, listen, makeApp } from "./helpers.js";

let app: FastifyInstance;
let service: FakeService;
let auth: { authorization: string };

beforeAll(async () => {
  ({ app, service } = await makeApp());
  auth = await bearer("alice");
  service.addJob({ id: "b", tags: ["x", "y"], status: "Running", name: "second" });
  service.addJob({
    id: "a",
    tags: ["x"],
    status: "Pending",
    name: "first",
    environment: [{ name: "A", value: "1" }],
  });
  service.addJob({ id: "c", user: "bob", status: "Finished" });
});
afterAll(() => app.close());
beforeEach(() => {
  service.calls.length = 0;
});

async function list(query: string, headers = auth) {
  const res = await app.inject({ url: `/jobs${query}`, headers });
  return { res, filter: service.callsTo("listJobs").at(-1)?.args[0] as JobFilter | undefined };
}

describe("GET /jobs", () => {
  it("lists the caller's jobs sorted by id", async () => {
    const { res } = await list("");
    expect(res.statusCode).toBe(200);
    expect((res.json() as { jobs: { id: string }[] }).jobs.map((j) => j.id)).toEqual(["a", "b"]);
  });

  it("accepts repeated keys and comma lists for arrays", async () => {
    expect((await list("?tags=x&tags=y")).filter?.tags).toEqual(["x", "y"]);
    expect((await list("?tags=x,y")).filter?.tags).toEqual(["x", "y"]);
    expect((await list("?tags=x")).filter?.tags).toEqual(["x"]);
    expect((await list("?tags=x,y&tags=z")).filter?.tags).toEqual(["x", "y", "z"]);
    const { res } = await list("?tags=x,y");
    expect((res.json() as { jobs: { id: string }[] }).jobs.map((j) => j.id)).toEqual(["b"]);
  });

  it("parses statuses ignoring case, and rejects unknown ones with 400", async () => {
    expect((await list("?statuses=running,Pending")).filter?.statuses).toEqual(["Running", "Pending"]);
    expect((await list("?statuses=Running&statuses=pending")).filter?.statuses).toEqual([
      "Running",
      "Pending",
    ]);
    const { res } = await list("?statuses=Running,Completed");
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({ code: 2, name: "InvalidRequest", message: "Invalid status(es): Completed" });
  });

  it("validates and normalises times, naming the field", async () => {
    const { filter } = await list("?startTime=2024-01-01T01:00:00%2B01:00&endTime=2024-12-31T00:00:00Z");
    expect(filter?.startTime).toBe("2024-01-01T00:00:00.000Z");
    expect(filter?.endTime).toBe("2024-12-31T00:00:00.000Z");
    for (const field of ["startTime", "endTime"]) {
      const { res } = await list(`?${field}=yesterday`);
      expect(res.statusCode).toBe(400);
      expect((res.json() as { message: string }).message).toContain(field);
    }
  });

  it("selects fields, keeping id; env and environment both work", async () => {
    const { res, filter } = await list("?fields=name,env");
    expect(filter?.fields).toEqual(["name", "env"]);
    const jobs = (res.json() as { jobs: Record<string, unknown>[] }).jobs;
    expect(jobs[0]).toEqual({ id: "a", name: "first", environment: [{ name: "A", value: "1" }] });
    expect(jobs[1]).toEqual({ id: "b", name: "second" });
    const env = await list("?fields=environment&fields=bogus");
    expect((env.res.json() as { jobs: Record<string, unknown>[] }).jobs[0]).toEqual({
      id: "a",
      environment: [{ name: "A", value: "1" }],
    });
  });

  it("passes user through (admins see everything)", async () => {
    const { res, filter } = await list("?user=*", await adminAuth());
    expect(filter).toEqual({});
    expect(service.callsTo("listJobs").at(-1)?.args[1]).toBe("*");
    expect((res.json() as { jobs: unknown[] }).jobs).toHaveLength(3);
  });

  it("never returns null arrays", async () => {
    const { res } = await list("?tags=none");
    expect(res.json()).toEqual({ jobs: [] });
  });

  it("writes a long list a part at a time: the bytes JSON.stringify gives for the whole list", async () => {
    const many = await makeApp();
    try {
      const jobs = Array.from({ length: 3000 }, (_, i) => ({
        id: `j${String(i).padStart(5, "0")}`,
        status: "Finished",
        name: `job "${i}" ✓`,
        tags: ["x"],
      }));
      for (const job of [...jobs].reverse()) many.service.addJob(job);
      const res = await many.app.inject({ url: "/jobs", headers: auth });
      expect(res.statusCode).toBe(200);
      expect(res.headers["content-type"]).toBe("application/json; charset=utf-8");
      expect(res.body.length).toBeGreaterThan(128 * 1024); // more than one written part
      const whole = jobs.map((j) => many.service.jobs.get(j.id));
      expect(res.body).toBe(JSON.stringify({ jobs: whole }));
    } finally {
      await many.app.close();
    }
  });

  it("a failure reading the start of the list is an ordinary error reply", async () => {
    const failing = new FakeService();
    failing.listJobs = async function* () {
      yield* [];
      throw new ApiError(ErrCode.PluginRestarted, "Redis is unreachable: test");
    };
    const broken = await makeApp({ service: failing });
    try {
      const res = await broken.app.inject({ url: "/jobs", headers: auth });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toMatchObject({
        code: ErrCode.PluginRestarted,
        message: "Redis is unreachable: test",
      });
    } finally {
      await broken.app.close();
    }
  });

  it("a failure after the list has started cuts the answer off instead of ending it as valid JSON", async () => {
    const failing = new FakeService();
    failing.listJobs = async function* () {
      for (let i = 0; i < 2000; i++) yield { id: `j${String(i).padStart(5, "0")}`, status: "Finished" };
      throw new ApiError(ErrCode.PluginRestarted, "Redis is unreachable: test");
    };
    const broken = await makeApp({ service: failing });
    try {
      const url = await listen(broken.app);
      const res = await fetch(`${url}/jobs`, { headers: auth });
      expect(res.status).toBe(200);
      await expect(res.text()).rejects.toThrow();
    } finally {
      await broken.app.close();
    }
  });
});

describe("other job routes", () => {
  it("GET /jobs/:id with fields", async () => {
    const res = await app.inject({ url: "/jobs/b?fields=status,tags", headers: auth });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ id: "b", status: "Running", tags: ["x", "y"] });
    expect(service.callsTo("getJob").at(-1)?.args).toEqual(["b", ["status", "tags"]]);
  });

  it("GET /jobs/:id/network runs locally when this node owns the job", async () => {
    const res = await app.inject({ url: "/jobs/b/network", headers: auth });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ host: "host-node-a", ipAddresses: ["10.0.0.1"] });
    expect(service.callsTo("locate")).toHaveLength(1);
  });

  it("GET /cluster-info", async () => {
    const res = await app.inject({ url: "/cluster-info", headers: auth });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ supportsContainers: false, queues: [], resourceProfiles: [] });
  });

  it("GET /nodes is sorted by id", async () => {
    service.nodeList = [service.nodeView("node-c"), service.nodeView("node-a"), service.nodeView("node-b")];
    const res = await app.inject({ url: "/nodes", headers: auth });
    expect((res.json() as { nodes: { id: string; port: string }[] }).nodes.map((n) => n.id)).toEqual([
      "node-a",
      "node-b",
      "node-c",
    ]);
    // `port` stays a string: responses are not coerced by a serializer.
    expect((res.json() as { nodes: { port: unknown }[] }).nodes[0]?.port).toBe("5559");
  });

  it("an admin may submit on behalf of a user", async () => {
    const res = await app.inject({
      method: "POST",
      url: "/jobs",
      headers: await adminAuth(),
      payload: { command: "id", user: "carol", metadata: { k: [1, "two"] } },
    });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ user: "carol", metadata: { k: [1, "two"] } });
  });

  it("a bad outputType is 400 before any stream starts", async () => {
    const res = await app.inject({ url: "/jobs/b/output?outputType=purple", headers: auth });
    expect(res.statusCode).toBe(400);
    expect((res.json() as { message: string }).message).toMatch(/outputType/);
  });

  it("outputType accepts names and numbers", async () => {
    for (const [q, type] of [
      ["", 2],
      ["?outputType=stdout", 0],
      ["?outputType=1", 1],
      ["?outputType=both", 2],
    ] as const) {
      const res = await app.inject({ url: `/jobs/b/output${q}`, headers: auth });
      expect(res.statusCode).toBe(200);
      expect(service.callsTo("outputStream").at(-1)?.args[1]).toBe(type);
    }
  });
});
