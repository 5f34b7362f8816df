// The plugin as a Posit Job Launcher sees it: a real `node dist/cli.js plugin` process on the test
// Redis, driven over stdin/stdout with the Plugin API framing (driver.ts).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, token } from "../helpers/nodes.js";
import { redisClient, uniquePrefix } from "../helpers/redis.js";
import { as, type Message, type PluginDriver, seqIds, sleep, startPlugin } from "./driver.js";

const prefix = uniquePrefix("plugin");
let a: PluginDriver;
/** Long-running jobs to kill at the end, whatever happened: [driver, id]. */
const longJobs: [PluginDriver, string][] = [];

async function submit(p: PluginDriver, user: string, job: Message): Promise<Message> {
  const r = await p.request({ messageType: 2, ...as(user), job });
  expect(r, JSON.stringify(r)).toMatchObject({ messageType: 2, jobs: [expect.any(Object)] });
  const created = r.jobs[0] as Message;
  if (/sleep|while/.test(String(job.command))) longJobs.push([p, created.id]);
  return created;
}

function state(p: PluginDriver, user: string, jobId: string, extra: Message = {}): Promise<Message> {
  return p.request({ messageType: 3, ...as(user), jobId, ...extra });
}

async function job(p: PluginDriver, user: string, id: string): Promise<Message> {
  const r = await state(p, user, id);
  expect(r.messageType, JSON.stringify(r)).toBe(2);
  return r.jobs[0] as Message;
}

async function waitForStatus(
  p: PluginDriver,
  user: string,
  id: string,
  statuses: string[],
  timeoutMs = 15_000,
) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const j = await job(p, user, id);
    if (statuses.includes(j.status)) return j;
    if (Date.now() > deadline) throw new Error(`job ${id} is ${j.status}, not ${statuses.join("/")}`);
    await sleep(100);
  }
}

function control(p: PluginDriver, user: string, jobId: string, operation: number): Promise<Message> {
  return p.request({ messageType: 5, ...as(user), jobId, operation });
}

/** Opens a stream; returns its request id. */
function openStream(p: PluginDriver, messageType: number, fields: Message): number {
  const requestId = p.nextId();
  p.send({ messageType, requestId, ...fields });
  return requestId;
}

function cancelStream(p: PluginDriver, messageType: number, requestId: number, user = "alice"): void {
  p.send({ messageType, requestId, ...as(user), jobId: "*", cancel: true });
}

function outputText(messages: Message[]): string {
  return messages
    .filter((m) => m.messageType === 5 && !m.complete)
    .map((m) => m.output)
    .join("");
}

beforeAll(async () => {
  a = await startPlugin({ prefix, nodeId: "plugin-a" });
}, 30_000);

afterAll(async () => {
  for (const [p, id] of longJobs) {
    if (p.proc.exitCode !== null) continue;
    await control(p, "*", id, 3).catch(() => undefined);
  }
  const result = await a?.close();
  expect(a.protocolErrors).toEqual([]);
  expect(result?.code).toBe(0);
}, 30_000);

describe("bootstrap, heartbeat and the envelope", () => {
  it("answers bootstrap with API 3.5.0, and the first response has responseId 0", () => {
    expect(a.messages[0]).toEqual({
      messageType: 1,
      requestId: 1,
      responseId: 0,
      version: { major: 3, minor: 5, patch: 0 },
    });
  });

  it("refuses another major version with UnsupportedVersion and the Launcher's version", async () => {
    const r = await a.request({ messageType: 1, version: { major: 4, minor: 1, patch: 2 } });
    expect(r).toEqual({
      messageType: -1,
      requestId: r.requestId,
      responseId: 0,
      errorCode: 10,
      errorMessage: "The plugin supports API version 3.X.XXXX. The Launcher's API version is 4.1.2",
    });
    // A compatible minor version is fine.
    expect(await a.request({ messageType: 1, version: { major: 3, minor: 7, patch: 0 } })).toMatchObject({
      messageType: 1,
      version: { major: 3, minor: 5, patch: 0 },
    });
  });

  it("answers a heartbeat with ids 0/0", async () => {
    const from = a.messages.length;
    a.send({ messageType: 0, requestId: 0 });
    expect(await a.waitFor((m) => m.messageType === 0, { from })).toEqual({
      messageType: 0,
      requestId: 0,
      responseId: 0,
    });
  });

  it("answers an unknown request type with RequestNotSupported", async () => {
    const r = await a.request({ messageType: 77, ...as("alice") });
    expect(r).toMatchObject({
      messageType: -1,
      responseId: 0,
      errorCode: 1,
      errorMessage: "Request not supported",
    });
  });

  it("gives cluster info with never-null arrays and the Local custom config", async () => {
    const r = await a.request({ messageType: 9, ...as("alice") });
    expect(r).toMatchObject({
      messageType: 8,
      supportsContainers: false,
      supportsInitContainers: false,
      allowUnknownImages: false,
      containersUseHostNetwork: false,
      placementConstraints: [],
      resourceLimits: [],
      resourceProfiles: [],
    });
    expect(r.config.map((c: Message) => c.name)).toEqual([
      "pamProfile",
      "encryptedPassword",
      "initializationVector",
    ]);
    // No queues configured: the fleet's nodes serve the default queue, and cluster info says so.
    expect(r).toMatchObject({ queues: ["default"], defaultQueue: "default" });
  });

  it("records SetLoadBalancerNodes and answers with the bare envelope", async () => {
    const nodes = [
      {
        host: "launcher-1",
        ipv4: "10.0.0.1",
        port: "5559",
        lastSeen: new Date().toISOString(),
        status: "Online",
      },
      {
        host: "launcher-2",
        ipv4: "10.0.0.2",
        port: "5559",
        lastSeen: new Date().toISOString(),
        status: "Offline",
      },
    ];
    const r = await a.request({ messageType: 201, ...as("*"), nodes });
    expect(Object.keys(r).sort()).toEqual(["messageType", "requestId", "responseId"]);
    expect(r.messageType).toBe(201);
    expect((await a.request({ messageType: 201, ...as("*"), nodes: "nope" })).errorCode).toBe(2);

    // The HTTP side of the same process shows them as advisory `launcherNodes` in GET /nodes.
    const redis = redisClient();
    const port = await redis.hget(`${prefix}:node:plugin-a`, "port");
    await redis.quit();
    const res = await api<{ nodes: Message[]; launcherNodes: Message[] }>(
      `http://127.0.0.1:${port}`,
      "GET",
      "/nodes",
      {
        token: await token("ops", { admin: true }),
      },
    );
    expect(res.status).toBe(200);
    expect(res.body.launcherNodes).toEqual(nodes);
    expect(res.body.nodes.map((n) => n.id)).toContain("plugin-a");
  });

  it("reloads its configuration (no cluster config file: nothing to do)", async () => {
    const r = await a.request({ messageType: 202, ...as("*") });
    expect(r).toMatchObject({ messageType: 202, errorType: 0, errorMessage: "" });
  });
});

describe("the product workflow (cluster info → submit → status → network → output → stop)", () => {
  it("runs a job to Finished 143 after Stop, with every stream well formed", async () => {
    const info = await a.request({ messageType: 9, ...as("alice") });
    expect(info.messageType).toBe(8);

    const created = await submit(a, "alice", {
      command: "echo started; sleep 300",
      name: "workbench-session",
      tags: ["wf"],
    });
    expect(created).toMatchObject({
      user: "alice",
      status: "Pending",
      cluster: "Local",
      name: "workbench-session",
    });
    const id = created.id as string;

    const statusId = openStream(a, 4, { ...as("alice"), jobId: id });
    await a.waitForStream(statusId, (m) => m.status === "Running");

    const net = await a.request({ messageType: 8, ...as("alice"), jobId: id });
    expect(net).toMatchObject({ messageType: 7, host: expect.any(String), ipAddresses: expect.any(Array) });

    const outputId = openStream(a, 6, { ...as("alice"), jobId: id, outputType: 2 });
    const first = await a.waitForStream(outputId, (m) => String(m.output).includes("started"));
    expect(first).toMatchObject({
      messageType: 5,
      requestId: outputId,
      seqId: 1,
      outputType: "stdout",
      complete: false,
    });

    const stopped = await control(a, "alice", id, 2);
    expect(stopped).toMatchObject({
      messageType: 4,
      operationComplete: true,
      statusMessage: expect.any(String),
    });

    const finished = await a.waitForStream(statusId, (m) => m.status === "Finished");
    expect(finished).toMatchObject({ messageType: 3, requestId: 0, id, name: "workbench-session" });
    const done = await a.waitForStream(outputId, (m) => m.complete === true);
    expect(done).toMatchObject({ messageType: 5, requestId: outputId, output: "", complete: true });

    expect((await job(a, "alice", id)).exitCode).toBe(143);

    const statuses = a.streamMessages(statusId);
    expect(statuses.every((m) => m.requestId === 0 && m.sequences.length === 1)).toBe(true);
    expect(seqIds(statuses, statusId)).toEqual(statuses.map((_, i) => i + 1));
    expect(statuses.map((m) => m.status)).toEqual(expect.arrayContaining(["Running", "Finished"]));
    const outputs = a.streamMessages(outputId);
    expect(seqIds(outputs, outputId)).toEqual(outputs.map((_, i) => i + 1));
    expect(outputText(outputs)).toBe("started\n");

    // A one-job status stream ends after the terminal status: nothing more arrives on it.
    const count = a.streamMessages(statusId).length;
    await sleep(300);
    expect(a.streamMessages(statusId)).toHaveLength(count);
  });
});

describe("control operations", () => {
  it("suspends, resumes and kills (Killed 137)", async () => {
    const { id } = await submit(a, "alice", { command: "sleep 300" });
    await waitForStatus(a, "alice", id, ["Running"]);
    expect(await control(a, "alice", id, 0)).toMatchObject({ messageType: 4, operationComplete: true });
    await waitForStatus(a, "alice", id, ["Suspended"]);
    expect(await control(a, "alice", id, 1)).toMatchObject({ messageType: 4, operationComplete: true });
    await waitForStatus(a, "alice", id, ["Running"]);
    expect(await control(a, "alice", id, 3)).toMatchObject({ messageType: 4, operationComplete: true });
    const killed = await waitForStatus(a, "alice", id, ["Killed"]);
    expect(killed.exitCode).toBe(137);
  });

  it("refuses operations in the wrong state, unknown operations, `*` and other users' jobs", async () => {
    const { id } = await submit(a, "alice", { command: "sleep 300" });
    await waitForStatus(a, "alice", id, ["Running"]);
    expect(await control(a, "alice", id, 1)).toMatchObject({
      errorCode: 8,
      errorMessage: "Job must be suspended to resume it",
    });
    expect(await control(a, "alice", id, 4)).toMatchObject({
      errorCode: 8,
      errorMessage: "Job must be pending to cancel it",
    });
    expect(await control(a, "alice", id, 9)).toMatchObject({
      messageType: -1,
      errorCode: 2,
      errorMessage: `Unknown control job operation (9) for job ${id}`,
    });
    expect(await control(a, "alice", "*", 2)).toMatchObject({
      errorCode: 2,
      errorMessage: "Cannot control all jobs simultaneously. Please specify a single Job ID.",
    });
    expect(await control(a, "bob", id, 3)).toMatchObject({ errorCode: 3 });
    expect(await control(a, "alice", "no-such-job", 3)).toMatchObject({ errorCode: 3 });
    // An admin (`*`) may control anyone's job.
    expect(await control(a, "*", id, 3)).toMatchObject({ messageType: 4, operationComplete: true });
    await waitForStatus(a, "alice", id, ["Killed"]);
    expect(await control(a, "alice", id, 2)).toMatchObject({
      errorCode: 8,
      errorMessage: "Job must be running to stop it",
    });
  });

  it("cancels a pending job (a node with one running slot keeps the second job Pending)", async () => {
    const p = await startPlugin({ prefix: uniquePrefix("plugin-cancel"), args: ["--max-running-jobs", "1"] });
    try {
      const first = await submit(p, "alice", { command: "sleep 300" });
      await waitForStatus(p, "alice", first.id, ["Running"]);
      const second = await submit(p, "alice", { command: "echo never" });
      expect((await job(p, "alice", second.id)).status).toBe("Pending");
      expect(await control(p, "alice", second.id, 4)).toMatchObject({
        messageType: 4,
        operationComplete: true,
      });
      expect((await job(p, "alice", second.id)).status).toBe("Canceled");
      expect(await control(p, "alice", first.id, 3)).toMatchObject({ operationComplete: true });
    } finally {
      const result = await p.close();
      expect(p.protocolErrors).toEqual([]);
      expect(result.code).toBe(0);
    }
  });
});

describe("job state: users, filters and fields", () => {
  let ids: string[];
  let bobId: string;
  /** The one job tagged "y" (ids are sorted, so not ids[2] unless by chance). */
  let yId: string;
  const tag = `f-${Math.random().toString(36).slice(2, 8)}`;

  beforeAll(async () => {
    const j1 = await submit(a, "alice", { command: "true", tags: [tag, "x"] });
    const j2 = await submit(a, "alice", { command: "true", tags: [tag] });
    const j3 = await submit(a, "alice", {
      command: "exit 3",
      tags: [tag, "x", "y"],
      environment: [{ name: "A", value: "1" }],
    });
    const b1 = await submit(a, "bob", { command: "true", tags: [tag] });
    ids = [j1.id, j2.id, j3.id].sort();
    yId = j3.id;
    bobId = b1.id;
    for (const id of ids) await waitForStatus(a, "alice", id, ["Finished"]);
    await waitForStatus(a, "bob", bobId, ["Finished"]);
  });

  const list = (user: string, extra: Message = {}) => state(a, user, "*", { tags: [tag], ...extra });
  const idsOf = (r: Message) => (r.jobs as Message[]).map((j) => j.id);

  it("lists a user's own jobs, sorted by id; `*` sees everyone's", async () => {
    expect(idsOf(await list("alice"))).toEqual(ids);
    expect(idsOf(await list("bob"))).toEqual([bobId]);
    expect(idsOf(await list("*"))).toEqual([...ids, bobId].sort());
    expect(await state(a, "bob", ids[0]!)).toMatchObject({ errorCode: 3 });
    expect(await state(a, "alice", "*", { username: "" })).toMatchObject({
      errorCode: 2,
      errorMessage: "User must not be empty",
    });
  });

  it("filters by tags (all of them) and statuses (any of them)", async () => {
    expect(idsOf(await list("alice", { tags: [tag, "x"] }))).toHaveLength(2);
    expect(idsOf(await list("alice", { tags: [tag, "x", "y"] }))).toHaveLength(1);
    expect(idsOf(await list("alice", { statuses: ["Finished"] }))).toEqual(ids);
    expect(idsOf(await list("alice", { statuses: ["Running", "Pending"] }))).toEqual([]);
    expect(await list("alice", { statuses: ["Completed"] })).toMatchObject({
      errorCode: 2,
      errorMessage: "Invalid status(es): Completed",
    });
  });

  it("filters by submission time (RFC 3339 or the zone-less UTC form)", async () => {
    expect(idsOf(await list("alice", { startTime: "2000-01-01T00:00:00" }))).toEqual(ids);
    expect(idsOf(await list("alice", { startTime: "2999-01-01T00:00:00Z" }))).toEqual([]);
    expect(idsOf(await list("alice", { endTime: "2000-01-01T00:00:00Z" }))).toEqual([]);
    expect(await list("alice", { startTime: "yesterday" })).toMatchObject({ errorCode: 2 });
  });

  it("selects fields (id always kept; env and environment both work)", async () => {
    const r = await list("alice", { fields: ["status", "exitCode"] });
    for (const j of r.jobs as Message[]) expect(Object.keys(j).sort()).toEqual(["exitCode", "id", "status"]);
    const env = await list("alice", { fields: ["env"], tags: [tag, "y"] });
    expect(env.jobs).toEqual([{ id: yId, environment: [{ name: "A", value: "1" }] }]);
    const one = await state(a, "alice", ids[0]!, { fields: ["user"] });
    expect(one.jobs).toEqual([{ id: ids[0], user: "alice" }]);
  });

  it("ignores the filters when a job id is given", async () => {
    const r = await state(a, "alice", ids[0]!, { statuses: ["Running"], tags: ["nope"] });
    expect(idsOf(r)).toEqual([ids[0]]);
  });

  it("applies the Launcher's submit rules for the user", async () => {
    expect(await a.request({ messageType: 2, ...as("*"), job: { command: "true" } })).toMatchObject({
      errorCode: 2,
      errorMessage: "User must not be empty",
    });
    const forCarol = await submit(a, "*", { command: "true", user: "carol", instanceId: "launcher-7" });
    expect(forCarol).toMatchObject({ user: "carol", resourceProfile: "custom", instanceId: "launcher-7" });
    expect(await job(a, "carol", forCarol.id)).toMatchObject({ instanceId: "launcher-7" });
    expect(
      await a.request({ messageType: 2, ...as("alice"), job: { command: "true", exe: "/bin/true" } }),
    ).toMatchObject({
      errorCode: 2,
      errorMessage: expect.stringContaining("mutually exclusive"),
    });
    expect(
      await a.request({ messageType: 2, ...as("alice"), job: { name: "nothing to run" } }),
    ).toMatchObject({ errorCode: 2 });
    expect(await a.request({ messageType: 2, ...as("alice"), job: { command: 5 } })).toMatchObject({
      errorCode: 2,
    });
  });
});

describe("streams", () => {
  it("stops a canceled status stream at once, while another stream goes on", async () => {
    const canceled = openStream(a, 4, { ...as("alice"), jobId: "*" });
    const kept = openStream(a, 4, { ...as("alice"), jobId: "*" });
    await a.waitForStream(canceled, () => true);
    await a.waitForStream(kept, () => true);
    await sleep(200);
    cancelStream(a, 4, canceled);
    await sleep(100);
    const before = a.streamMessages(canceled).length;
    const { id } = await submit(a, "alice", { command: "true" });
    await a.waitForStream(kept, (m) => m.id === id && m.status === "Finished");
    await sleep(300);
    expect(a.streamMessages(canceled)).toHaveLength(before);
    expect(a.streamMessages(canceled).some((m) => m.id === id)).toBe(false);
    // No answer to a cancel, not even for an unknown stream.
    const from = a.messages.length;
    a.send({ messageType: 4, requestId: 99_999, ...as("alice"), jobId: "*", cancel: true });
    await sleep(200);
    expect(a.messages.slice(from).filter((m) => m.requestId === 99_999)).toEqual([]);
    cancelStream(a, 4, kept);
  });

  it("stops a canceled output stream of a running job (no complete message)", async () => {
    const { id } = await submit(a, "alice", { command: "while true; do echo tick; sleep 0.1; done" });
    const out = openStream(a, 6, { ...as("alice"), jobId: id });
    await a.waitForStream(out, (m) => String(m.output).includes("tick"));
    cancelStream(a, 6, out);
    await sleep(150);
    const count = a.streamMessages(out).length;
    await sleep(700);
    expect(a.streamMessages(out)).toHaveLength(count);
    expect(a.streamMessages(out).some((m) => m.complete)).toBe(false);
    await control(a, "alice", id, 3);
  });

  it("streams one output type of a finished job, then completes", async () => {
    const { id } = await submit(a, "alice", { command: "echo out; echo err >&2" });
    await waitForStatus(a, "alice", id, ["Finished"]);
    const stdout = openStream(a, 6, { ...as("alice"), jobId: id, outputType: 0 });
    await a.waitForStream(stdout, (m) => m.complete === true);
    const msgs = a.streamMessages(stdout);
    expect(outputText(msgs)).toBe("out\n");
    expect(msgs.filter((m) => !m.complete).every((m) => m.outputType === "stdout")).toBe(true);
    const stderr = openStream(a, 6, { ...as("alice"), jobId: id, outputType: 1 });
    await a.waitForStream(stderr, (m) => m.complete === true);
    expect(outputText(a.streamMessages(stderr))).toBe("err\n");
  });

  it("answers streams for unknown or invisible jobs with JobNotFound", async () => {
    const { id } = await submit(a, "alice", { command: "true" });
    for (const type of [4, 6, 7]) {
      const s = openStream(a, type, { ...as("bob"), jobId: id });
      expect(await a.waitForStream(s, () => true)).toMatchObject({
        messageType: -1,
        requestId: s,
        errorCode: 3,
      });
    }
  });

  it("streams resource samples while the job runs, then completes; JobNotRunning otherwise", async () => {
    const { id } = await submit(a, "alice", { command: "sleep 300" });
    await waitForStatus(a, "alice", id, ["Running"]);
    const res = openStream(a, 7, { ...as("alice"), jobId: id });
    const sample = await a.waitForStream(res, () => true);
    expect(sample).toMatchObject({
      messageType: 6,
      requestId: 0,
      sequences: [{ requestId: res, seqId: 1 }],
      complete: false,
    });
    await control(a, "alice", id, 2);
    const done = await a.waitForStream(res, (m) => m.complete === true);
    expect(done).toMatchObject({ messageType: 6, requestId: 0 });
    const msgs = a.streamMessages(res);
    expect(seqIds(msgs, res)).toEqual(msgs.map((_, i) => i + 1));
    await waitForStatus(a, "alice", id, ["Finished"]);
    const late = openStream(a, 7, { ...as("alice"), jobId: id });
    expect(await a.waitForStream(late, () => true)).toMatchObject({ messageType: -1, errorCode: 6 });
  });
});

describe("framing errors are answered, never fatal", () => {
  it("answers invalid JSON (with its requestId when it shows) and goes on", async () => {
    const bad = Buffer.from('{"messageType":9,"requestId":500,', "utf8");
    const header = Buffer.alloc(4);
    header.writeUInt32BE(bad.length, 0);
    const from = a.messages.length;
    a.sendRaw(Buffer.concat([header, bad]));
    expect(await a.waitFor((m) => m.requestId === 500, { from })).toMatchObject({
      messageType: -1,
      responseId: 0,
      errorCode: 2,
      errorMessage: expect.stringContaining("Invalid message"),
    });
    const noId = Buffer.from("definitely not json");
    header.writeUInt32BE(noId.length, 0);
    const from2 = a.messages.length;
    a.sendRaw(Buffer.concat([header, noId]));
    expect(await a.waitFor((m) => m.messageType === -1, { from: from2 })).toMatchObject({
      requestId: 0,
      errorCode: 2,
    });
    expect(await a.request({ messageType: 9, ...as("alice") })).toMatchObject({ messageType: 8 });
  });

  it("answers a message without requestId or messageType", async () => {
    const from = a.messages.length;
    a.send({ messageType: 9 });
    expect(await a.waitFor((m) => m.messageType === -1, { from })).toMatchObject({
      requestId: 0,
      errorCode: 2,
    });
    expect(await a.request({ username: "alice" })).toMatchObject({ messageType: -1, errorCode: 2 });
  });

  it("skips a message over --max-message-size (5 MiB) and answers it", async () => {
    const payload = Buffer.from(
      JSON.stringify({ messageType: 9, requestId: 501, pad: "x".repeat(5 * 1024 * 1024) }),
    );
    const header = Buffer.alloc(4);
    header.writeUInt32BE(payload.length, 0);
    const from = a.messages.length;
    a.sendRaw(Buffer.concat([header, payload]));
    expect(await a.waitFor((m) => m.requestId === 501, { from })).toMatchObject({
      messageType: -1,
      errorCode: 2,
      errorMessage: `Message of ${payload.length} bytes exceeds the maximum message size of 5242880 bytes`,
    });
    expect(await a.request({ messageType: 9, ...as("alice") })).toMatchObject({ messageType: 8 });
  });

  it("answers input cut off at EOF, then exits cleanly", async () => {
    const p = await startPlugin({ prefix: uniquePrefix("plugin-eof"), args: ["--max-message-size", "4096"] });
    const full = Buffer.from(JSON.stringify({ messageType: 9, requestId: 9, username: "alice" }));
    const header = Buffer.alloc(4);
    header.writeUInt32BE(full.length, 0);
    // Oversize for this plugin's limit first (answered), then a frame cut short by EOF.
    const big = Buffer.from(JSON.stringify({ messageType: 9, requestId: 8, pad: "y".repeat(5000) }));
    const bigHeader = Buffer.alloc(4);
    bigHeader.writeUInt32BE(big.length, 0);
    p.sendRaw(Buffer.concat([bigHeader, big]));
    expect(await p.waitFor((m) => m.requestId === 8)).toMatchObject({
      errorCode: 2,
      errorMessage: expect.stringContaining("4096"),
    });
    p.sendRaw(Buffer.concat([header, full.subarray(0, full.length - 1)]));
    p.proc.stdin.end();
    expect(await p.waitFor((m) => m.requestId === 9)).toMatchObject({
      messageType: -1,
      errorCode: 2,
      errorMessage: expect.stringContaining("Truncated message"),
    });
    const result = await p.close();
    expect(result.code).toBe(0);
    expect(p.protocolErrors).toEqual([]);
  });
});

describe("two plugins on one Redis (a load-balanced Launcher)", () => {
  let b: PluginDriver;
  beforeAll(async () => {
    b = await startPlugin({ prefix, nodeId: "plugin-b" });
  }, 30_000);
  afterAll(async () => {
    const result = await b?.close();
    expect(b.protocolErrors).toEqual([]);
    expect(result?.code).toBe(0);
  }, 30_000);

  it("answers job state identically on both", async () => {
    const onA = await submit(a, "alice", { command: "sleep 300", tags: ["lb"] });
    const onB = await submit(b, "alice", { command: "sleep 300", tags: ["lb"] });
    await waitForStatus(a, "alice", onA.id, ["Running"]);
    await waitForStatus(b, "alice", onB.id, ["Running"]);
    for (const user of ["alice", "*"]) {
      const fromA = await state(a, user, "*", { tags: ["lb"] });
      const fromB = await state(b, user, "*", { tags: ["lb"] });
      expect(fromA.jobs).toHaveLength(2);
      expect(fromB.jobs).toEqual(fromA.jobs);
    }
    expect((await job(b, "alice", onA.id)).host).toBe((await job(a, "alice", onA.id)).host);
    await control(a, "alice", onA.id, 3);
    await control(b, "alice", onB.id, 3);
  });

  it("streams the output of a job owned by the other plugin (forwarded), to completion", async () => {
    const { id } = await submit(a, "alice", { command: "echo from-a; echo more-from-a >&2" });
    await waitForStatus(b, "alice", id, ["Finished"]);
    const out = openStream(b, 6, { ...as("alice"), jobId: id, outputType: 2 });
    await b.waitForStream(out, (m) => m.complete === true);
    const msgs = b.streamMessages(out);
    expect(outputText(msgs)).toContain("from-a\n");
    expect(outputText(msgs)).toContain("more-from-a\n");
    expect(seqIds(msgs, out)).toEqual(msgs.map((_, i) => i + 1));
    // Scoping holds across the hop: bob cannot read it through either plugin.
    const denied = openStream(b, 6, { ...as("bob"), jobId: id });
    expect(await b.waitForStream(denied, () => true)).toMatchObject({ errorCode: 3 });
  });

  it("controls, inspects and follows a job owned by the other plugin", async () => {
    const { id } = await submit(a, "alice", { command: "echo hi; sleep 300" });
    const status = openStream(b, 4, { ...as("alice"), jobId: id });
    await b.waitForStream(status, (m) => m.status === "Running");
    const net = await b.request({ messageType: 8, ...as("alice"), jobId: id });
    expect(net).toMatchObject({ messageType: 7, host: (await job(a, "alice", id)).host });
    const out = openStream(b, 6, { ...as("alice"), jobId: id });
    await b.waitForStream(out, (m) => String(m.output).includes("hi"));
    const res = openStream(b, 7, { ...as("*"), jobId: id });
    await b.waitForStream(res, () => true);
    expect(await control(b, "alice", id, 1)).toMatchObject({ errorCode: 8 });
    expect(await control(b, "alice", id, 2)).toMatchObject({ messageType: 4, operationComplete: true });
    await b.waitForStream(status, (m) => m.status === "Finished");
    await b.waitForStream(out, (m) => m.complete === true);
    await b.waitForStream(res, (m) => m.complete === true);
    expect((await job(b, "alice", id)).exitCode).toBe(143);
  });

  it("reports PluginRestarted (4) for a job whose owner is offline", async () => {
    const p = await startPlugin({ prefix, nodeId: "plugin-c" });
    const { id } = await submit(p, "alice", { command: "echo bye" });
    await waitForStatus(b, "alice", id, ["Finished"]);
    expect((await p.close()).code).toBe(0);
    const out = openStream(b, 6, { ...as("alice"), jobId: id });
    expect(await b.waitForStream(out, () => true)).toMatchObject({
      messageType: -1,
      errorCode: 4,
      errorMessage: expect.stringContaining("plugin-c"),
    });
    expect(await b.request({ messageType: 8, ...as("alice"), jobId: id })).toMatchObject({ errorCode: 4 });
    // Reads from Redis still work for it.
    expect((await job(b, "alice", id)).status).toBe("Finished");
  });
});

describe("responseId", () => {
  it("rises by one from 0 across every non-error, non-heartbeat response, in order", () => {
    for (const p of [a]) {
      const ids = p.messages
        .filter((m) => m.messageType !== -1 && m.messageType !== 0)
        .map((m) => m.responseId);
      expect(ids).toEqual(ids.map((_, i) => i));
      expect(
        p.messages
          .filter((m) => m.messageType === -1 || m.messageType === 0)
          .every((m) => m.responseId === 0),
      ).toBe(true);
    }
  });
});
