// Listings and status snapshots of more jobs than one read batch: exactly the bytes and order the
// answer had when it was built whole in memory, with filters, scopes and field selection (some
// served from job summaries, some from full reads).
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { includes, type Job, type JobFilter, parseStatuses, withFields } from "../../src/api/index.js";
import { JobStore, type ListQuery, READ_BATCH } from "../../src/cluster/job-store.js";
import { fleetKeys } from "../../src/cluster/keys.js";
import { defineScripts, type ScriptedRedis } from "../../src/cluster/scripts.js";
import { readStream, startTestNode, type TestNode, token } from "../helpers/nodes.js";
import { redisUrl, uniquePrefix } from "../helpers/redis.js";

/** More than two read batches, and not a multiple of one. */
const N = 2 * READ_BATCH + 237;
const BASE_MS = Date.parse("2026-03-01T00:00:00.000Z");

let n: TestNode;
let redis: ScriptedRedis;
let store: JobStore;
let admin: string;
let alice: string;

const byId = (a: Job, b: Job) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
const at = (i: number) => new Date(BASE_MS + i * 1000).toISOString();

/** Job i: ids random (so id order is not submission order), varied users, names, tags and states. */
function spec(i: number): Job {
  const id = randomBytes(6).toString("hex");
  const job: Job = {
    id,
    user: i % 3 === 0 ? "bob" : "alice",
    command: "true",
    tags: i % 4 === 0 ? ["x", "y"] : [`t${i % 3}`],
    cluster: "Local",
    stdoutFile: `/tmp/many/${id}.out`,
    stderrFile: `/tmp/many/${id}.err`,
    status: "Pending",
    submissionTime: at(i),
    lastUpdateTime: at(i),
  };
  if (i % 7 === 0) job.name = "";
  else if (i % 7 !== 1) job.name = `job-${i}`;
  if (i % 5 === 0) job.environment = [{ name: "N", value: String(i) }];
  return job;
}

async function createJobs(owner: { nodeId: string; epoch: number }): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < N) {
      const i = next++;
      const job = spec(i);
      await store.create(job, owner, []);
      if (i % 5 === 1) await store.update(job.id, owner, { status: "Running", pid: 1000 + i });
      if (i % 5 === 2)
        await store.update(job.id, owner, { status: "Finished", exitCode: 0, lastUpdateTime: at(i + 1) });
      if (i % 5 === 3) {
        await store.update(job.id, owner, {
          status: "Failed",
          statusMessage: `failed ${i}`,
          statusCode: "E",
          exitCode: 2,
          lastUpdateTime: at(i + 2),
        });
      }
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
}

beforeAll(async () => {
  const prefix = uniquePrefix("many");
  n = await startTestNode(prefix);
  redis = defineScripts(new Redis(redisUrl()));
  store = new JobStore(redis, fleetKeys(prefix), 100_000);
  const epoch = Number(await redis.hget(fleetKeys(prefix).node(n.settings.nodeId), "epoch"));
  await createJobs({ nodeId: n.settings.nodeId, epoch });
  admin = await token("ops", { admin: true });
  alice = await token("alice");
}, 120_000);
afterAll(async () => {
  await n.close();
  await redis.quit();
});

/** The listing as it was built before: every job read at once, filtered, sorted, fields selected. */
async function wholeListing(filter: JobFilter, user?: string): Promise<string> {
  const q: ListQuery = {
    ...(user ? { user } : {}),
    ...(filter.startTime ? { startMs: Date.parse(filter.startTime) } : {}),
    ...(filter.endTime ? { endMs: Date.parse(filter.endTime) } : {}),
  };
  const jobs = (await store.list(q))
    .map((s) => s.job)
    .filter((j) => includes(filter, j))
    .sort(byId)
    .map((j) => withFields(j, filter.fields));
  return JSON.stringify({ jobs });
}

async function getList(query: string, tok: string): Promise<{ status: number; type: string; text: string }> {
  const res = await fetch(new URL(`/jobs${query}`, n.url), { headers: { authorization: `Bearer ${tok}` } });
  return { status: res.status, type: res.headers.get("content-type") ?? "", text: await res.text() };
}

describe(`GET /jobs with ${N} jobs (read ${READ_BATCH} at a time)`, () => {
  const cases: { query: string; filter: JobFilter; user?: string; caller?: "admin" | "alice" }[] = [
    { query: "", filter: {} },
    { query: "?user=bob", filter: {}, user: "bob" },
    { query: "", filter: {}, user: "alice", caller: "alice" },
    { query: "?statuses=running,Failed", filter: { statuses: parseStatuses(["running", "Failed"]) } },
    { query: "?tags=t1", filter: { tags: ["t1"] } },
    { query: "?tags=x,y&statuses=Finished", filter: { tags: ["x", "y"], statuses: ["Finished"] } },
    {
      query: `?startTime=${at(300)}&endTime=${at(900)}`,
      filter: { startTime: at(300), endTime: at(900) },
    },
    // Served from summaries: only status-type fields and no tag or time filter.
    { query: "?fields=status,exitCode,pid", filter: { fields: ["status", "exitCode", "pid"] } },
    {
      query: "?statuses=Pending,Running&fields=id",
      filter: { statuses: ["Pending", "Running"], fields: ["id"] },
    },
    { query: "?fields=bogus", filter: { fields: ["bogus"] } },
    {
      query: "?fields=statusMessage,statusCode,lastUpdateTime&user=bob",
      filter: { fields: ["statusMessage", "statusCode", "lastUpdateTime"] },
      user: "bob",
    },
    // Need the spec: names (some empty), environment, tags, or a tag filter.
    { query: "?fields=name", filter: { fields: ["name"] } },
    { query: "?fields=env,tags,status", filter: { fields: ["env", "tags", "status"] } },
    { query: "?fields=status&tags=t2", filter: { fields: ["status"], tags: ["t2"] } },
  ];

  it.each(cases.map((c) => ({ caller: "admin", ...c })))(
    "$query as $caller answers the same bytes as the whole listing",
    async (c) => {
      const got = await getList(c.query, c.caller === "alice" ? alice : admin);
      expect(got.status).toBe(200);
      expect(got.type).toBe("application/json; charset=utf-8");
      const want = await wholeListing(c.filter, c.user);
      expect(got.text).toBe(want);
      // The cases really are large listings (more than one batch, and more than one written chunk).
      if (c.query === "")
        expect((JSON.parse(got.text) as { jobs: unknown[] }).jobs.length).toBeGreaterThan(READ_BATCH);
    },
  );

  it("lists every job, sorted by id, which is not the submission order", async () => {
    const ids = (JSON.parse((await getList("?fields=id", admin)).text) as { jobs: Job[] }).jobs.map(
      (j) => j.id,
    );
    expect(ids).toHaveLength(N);
    expect(ids).toEqual([...ids].sort());
    const submitted = (await store.listIds({})).slice();
    expect(submitted).not.toEqual(ids);
  });
});

describe(`GET /jobs/*/status snapshot with ${N} jobs`, () => {
  /** The snapshot as it was built before: every job in scope, sorted by id, one event each. */
  async function wholeSnapshot(user?: string): Promise<Record<string, unknown>[]> {
    const jobs = (await store.list(user ? { user } : {})).map((s) => s.job).sort(byId);
    return jobs.map((job) => ({
      id: job.id,
      name: job.name ?? "", // always there, as the Launcher sends it
      status: job.status ?? "Pending",
      ...(job.statusCode ? { statusCode: job.statusCode } : {}),
      ...(job.statusMessage ? { statusMessage: job.statusMessage } : {}),
      ...(job.lastUpdateTime ? { lastUpdateTime: job.lastUpdateTime } : {}),
    }));
  }

  it.each([
    { who: "admin", user: undefined },
    { who: "alice", user: "alice" },
  ])("$who: one event per job in scope, sorted by id, same fields and order", async ({ who, user }) => {
    const want = await wholeSnapshot(user);
    const { status, messages } = await readStream<Record<string, unknown>>(n.url, "/jobs/*/status", {
      token: who === "admin" ? admin : alice,
      until: (_m, all) => all.length >= want.length,
      timeoutMs: 60_000,
    });
    expect(status).toBe(200);
    expect(messages).toHaveLength(want.length);
    const eventId = messages[0]?.eventId;
    expect(typeof eventId).toBe("string");
    // Same bytes per line as before: seqId, the snapshot position, then the job's fields in order.
    expect(messages.map((m) => JSON.stringify(m))).toEqual(
      want.map((w, i) => JSON.stringify({ seqId: i + 1, eventId, ...w })),
    );
  });
});
