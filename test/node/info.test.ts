// Resource samples, network info and cluster info of a real node.
import { mkdtempSync, writeFileSync } from "node:fs";
import { hostname, networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, readStream, startTestNode, type TestNode, token } from "../helpers/nodes.js";
import { uniquePrefix } from "../helpers/redis.js";
import { control, endAll, getJob, running, submit, waitStatus, waitTerminal } from "./helpers.js";

type Sample = {
  seqId: number;
  cpuPercent?: number;
  cpuTime?: number;
  residentMemory?: number;
  virtualMemory?: number;
  complete?: boolean;
  error?: unknown;
};

let n: TestNode;
let alice: string;
let admin: string;
const tmp = mkdtempSync(join(tmpdir(), "node-info-"));

beforeAll(async () => {
  n = await startTestNode(uniquePrefix("info"));
  alice = await token("alice");
  admin = await token("ops", { admin: true });
});
afterAll(async () => {
  await endAll(n, admin);
  await n.close();
});

describe("resource-util", () => {
  it("samples a busy loop: cpuTime rises, memory > 0, and the stream completes when the job ends", async () => {
    const job = await running(n, alice, { command: "while :; do :; done" });
    let killed: Promise<unknown> | undefined;
    const { status, messages, ended } = await readStream<Sample>(n.url, `/jobs/${job.id}/resource-util`, {
      token: alice,
      until: (_m, all) => {
        // After a few samples, end the job; the stream must then complete by itself.
        if (all.length === 4) killed = control(n, alice, job.id, "kill");
        return false;
      },
    });
    expect(status).toBe(200);
    expect(ended).toBe(true);
    await killed;
    expect(messages.map((m) => m.seqId)).toEqual(messages.map((_, i) => i + 1));
    expect(messages.at(-1)).toEqual({ seqId: messages.length, complete: true });
    const samples = messages.slice(0, -1);
    expect(samples.length).toBeGreaterThanOrEqual(4);
    for (const s of samples) {
      expect(Object.keys(s).sort()).toEqual([
        "cpuPercent",
        "cpuTime",
        "residentMemory",
        "seqId",
        "virtualMemory",
      ]);
      expect(s.residentMemory).toBeGreaterThan(0);
      expect(s.virtualMemory).toBeGreaterThanOrEqual(s.residentMemory!);
      expect(s.cpuPercent).toBeGreaterThanOrEqual(0);
    }
    const times = samples.map((s) => s.cpuTime!);
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    expect(times.at(-1)!).toBeGreaterThan(times[0]!);
    expect(Math.max(...samples.map((s) => s.cpuPercent!))).toBeGreaterThan(0);
  });

  it("a suspended job can still be sampled", async () => {
    const job = await running(n, alice, { command: "sleep 30" });
    expect((await control(n, alice, job.id, "suspend")).status).toBe(200);
    await waitStatus(n, alice, job.id, "Suspended");
    const { messages } = await readStream<Sample>(n.url, `/jobs/${job.id}/resource-util`, {
      token: alice,
      until: (m) => m.residentMemory !== undefined,
    });
    expect(messages[0]?.residentMemory).toBeGreaterThan(0);
    await control(n, alice, job.id, "resume");
    await control(n, alice, job.id, "kill");
  });

  it("a job that ends by itself completes its resource stream", async () => {
    const job = await running(n, alice, { command: "sleep 0.8" });
    const { messages, ended } = await readStream<Sample>(n.url, `/jobs/${job.id}/resource-util`, {
      token: alice,
    });
    expect(ended).toBe(true);
    expect(messages.length).toBeGreaterThanOrEqual(2);
    expect(messages.at(-1)).toEqual({ seqId: messages.length, complete: true });
    expect(messages[0]?.residentMemory).toBeGreaterThan(0);
    expect((await getJob(n, alice, job.id)).status).toBe("Finished");
  });

  it("a job that is not running is 409 code 6", async () => {
    const job = await submit(n, alice, { command: "true" });
    await waitTerminal(n, alice, job.id);
    const res = await api(n.url, "GET", `/jobs/${job.id}/resource-util`, { token: alice });
    expect(res).toMatchObject({ status: 409, body: { code: 6, name: "JobNotRunning" } });
  });

  it("a pending job is 409 code 6 too", async () => {
    const q = await startTestNode(uniquePrefix("info-q"), { maxRunningJobs: 1 });
    try {
      const blocker = await running(q, alice, { command: "sleep 30" });
      const pending = await submit(q, alice, { command: "true" });
      const res = await api(q.url, "GET", `/jobs/${pending.id}/resource-util`, { token: alice });
      expect(res).toMatchObject({ status: 409, body: { code: 6 } });
      await control(q, alice, pending.id, "cancel");
      await control(q, alice, blocker.id, "kill");
    } finally {
      await q.close();
    }
  });
});

describe("network", () => {
  it("is the node's host and its routable addresses, for a running and a finished job", async () => {
    const expected = Object.values(networkInterfaces())
      .flat()
      .filter((a) => a && !a.internal && !a.address.startsWith("169.254.") && !/^fe[89ab]/i.test(a.address))
      .map((a) => a!.address);
    const job = await running(n, alice, { command: "sleep 30" });
    const res = await api<{ host: string; ipAddresses: string[] }>(n.url, "GET", `/jobs/${job.id}/network`, {
      token: alice,
    });
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(["host", "ipAddresses"]);
    expect(res.body.host).toBe(hostname());
    expect(res.body.host).toBe(job.host);
    expect(Array.isArray(res.body.ipAddresses)).toBe(true);
    expect([...res.body.ipAddresses].sort()).toEqual([...new Set(expected)].sort());
    expect(res.body.ipAddresses).not.toContain("127.0.0.1");
    expect(res.body.ipAddresses).not.toContain("::1");
    await control(n, alice, job.id, "kill");
    const after = await api(n.url, "GET", `/jobs/${job.id}/network`, { token: alice });
    expect(after.status).toBe(200);
    const missing = await api(n.url, "GET", "/jobs/nope/network", { token: alice });
    expect(missing).toMatchObject({ status: 404, body: { code: 3 } });
  });
});

describe("cluster-info", () => {
  it("defaults: no containers, every array present (never null), the Local config entries", async () => {
    const res = await api<Record<string, unknown>>(n.url, "GET", "/cluster-info", { token: alice });
    expect(res.status).toBe(200);
    expect(res.body.supportsContainers).toBe(false);
    for (const key of ["queues", "resourceLimits", "placementConstraints", "config", "resourceProfiles"]) {
      expect(Array.isArray(res.body[key]), key).toBe(true);
    }
    expect((res.body.config as { name: string }[]).map((c) => c.name).sort()).toEqual([
      "encryptedPassword",
      "initializationVector",
      "pamProfile",
    ]);
  });

  it("a cluster config file's queues and profiles are shown, with the nodes' queues and labels; missing or null arrays are []", async () => {
    const file = join(tmp, "cluster.json");
    writeFileSync(
      file,
      JSON.stringify({
        supportsContainers: true,
        queues: ["short", "long"],
        defaultQueue: "short",
        resourceProfiles: [
          { name: "small", displayName: "Small", limits: [{ type: "cpuCount", value: "1" }], queue: "short" },
        ],
        resourceLimits: [{ type: "memory", defaultValue: "512", maxValue: "4096" }],
        placementConstraints: null,
      }),
    );
    const c = await startTestNode(uniquePrefix("info-cluster"), {
      clusterConfigFile: file,
      queues: ["long", "gpu"],
      nodeLabels: { gpu: "a100" },
    });
    try {
      const res = await api<Record<string, unknown>>(c.url, "GET", "/cluster-info", { token: alice });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        supportsContainers: false,
        // The configured queues, then those only the fleet's nodes serve.
        queues: ["short", "long", "gpu"],
        defaultQueue: "short",
        resourceProfiles: [
          { name: "small", displayName: "Small", limits: [{ type: "cpuCount", value: "1" }], queue: "short" },
        ],
        resourceLimits: [{ type: "memory", defaultValue: "512", maxValue: "4096" }],
        // None configured (null); the node's label is one.
        placementConstraints: [{ name: "gpu", value: "a100" }],
      });
      expect(Array.isArray(res.body.config)).toBe(true);
    } finally {
      await c.close();
    }
  });

  it("needs a token", async () => {
    const res = await api(n.url, "GET", "/cluster-info");
    expect(res).toMatchObject({ status: 401, body: { code: 2 } });
  });
});
