// Listing reads (read_jobs.lua, JobStore.readListed, listedJson): the jobs a listing reads through
// the script, with its status and tag filters applied in Redis, are exactly those the whole read
// (getMany + includes) finds, in the order asked; and a whole job's JSON spliced from its stored
// spec is byte for byte JSON.stringify of the job decodeJob builds.
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { includes, type Job, type JobFilter } from "../../src/api/index.js";
import {
  decodeListed,
  decodeSummary,
  JobStore,
  type ListedJob,
  listedJson,
} from "../../src/cluster/job-store.js";
import { fleetKeys } from "../../src/cluster/keys.js";
import { defineScripts, NodeScripts, type ScriptedRedis } from "../../src/cluster/scripts.js";
import { redisUrl, uniquePrefix } from "../helpers/redis.js";

const keys = fleetKeys(uniquePrefix("listread"));
let redis: ScriptedRedis;
let store: JobStore;
const ids: string[] = [];

/** Jobs of many shapes: names (none, empty), tags (none, several, one in other fields' text), metadata, numbers. */
function spec(i: number): Job {
  const at = new Date(Date.parse("2026-02-01T00:00:00.000Z") + i * 1000).toISOString();
  const job: Job = {
    id: `lr-${String(i).padStart(3, "0")}`,
    user: i % 2 ? "alice" : "bob",
    command: "true",
    status: "Pending",
    submissionTime: at,
    lastUpdateTime: at,
  };
  if (i % 6 === 1) job.name = "";
  else if (i % 6 !== 2) job.name = `job "${i}" ünïcode \u2028`;
  if (i % 3 === 0) job.tags = ["a", `t${i % 4}`];
  if (i % 3 === 1) job.tags = ["b"];
  // The text of tag "a" ("\"a\"") appears in other fields: Redis keeps the job, the exact check drops it.
  if (i % 5 === 0) job.environment = [{ name: "a", value: "a" }];
  if (i % 7 === 0) job.metadata = { "2": 1, b: { "1": [1.5, -0, 1e21] }, a: null };
  if (i % 4 === 0) job.args = ["x", 'y "z"'];
  return job;
}

beforeAll(async () => {
  redis = defineScripts(new Redis(redisUrl()));
  store = new JobStore(redis, keys, 1000);
  const { epoch } = await new NodeScripts(redis, keys).registerNode("n1", { host: "h" });
  const owner = { nodeId: "n1", epoch };
  for (let i = 0; i < 60; i++) {
    const job = spec(i);
    await store.create(job, owner, [`/tmp/${job.id}`]);
    ids.push(job.id);
    if (i % 4 === 1) await store.update(job.id, owner, { status: "Running", pid: 100 + i });
    if (i % 4 === 2)
      await store.update(job.id, owner, {
        status: "Failed",
        exitCode: 0,
        statusMessage: "m",
        statusCode: "C",
      });
    if (i % 4 === 3) await store.update(job.id, owner, { status: "Finished", exitCode: 3 });
  }
  // One job that has an empty spec object, as a hash could hold it.
  await redis.hset(keys.job("lr-empty"), "ver", "1", "spec", "{}", "status", "Pending", "owner", "");
  ids.push("lr-empty");
});
afterAll(() => redis.quit());

async function readAll(
  order: readonly string[],
  opts: Parameters<JobStore["readListed"]>[1] = {},
): Promise<ListedJob[]> {
  const out: ListedJob[] = [];
  for await (const batch of store.readListed(order, { batchSize: 7, ...opts })) out.push(...batch);
  return out;
}

describe("listing reads", () => {
  it("splices each whole job's JSON exactly as JSON.stringify of the decoded job", async () => {
    const whole = await store.getMany(ids);
    const listed = await readAll(ids);
    expect(listed.map((l) => l.id)).toEqual(whole.map((w) => w.job.id));
    listed.forEach((l, i) => {
      expect(listedJson(l.id, l.values)).toBe(JSON.stringify(whole[i]!.job));
      expect(decodeListed(l.id, l.values)).toEqual(whole[i]!.job);
    });
  });

  it("keeps the order asked, and skips ids that do not exist or expired", async () => {
    const order = [ids[5]!, "nope", ids[0]!, ids[59]!, ids[3]!];
    await redis.del(keys.job(ids[59]!));
    try {
      expect((await readAll(order)).map((l) => l.id)).toEqual([ids[5], ids[0], ids[3]]);
      expect((await readAll(order, { summary: true })).map((l) => l.id)).toEqual([ids[5], ids[0], ids[3]]);
    } finally {
      // Put it back as it was for the other cases.
      const { epoch } = await new NodeScripts(redis, keys).registerNode("n1", { host: "h" });
      await store.create(spec(59), { nodeId: "n1", epoch }, [`/tmp/${ids[59]}`]);
      await store.update(ids[59]!, { nodeId: "n1", epoch }, { status: "Finished", exitCode: 3 });
    }
  });

  const filters: JobFilter[] = [
    { statuses: ["Running"] },
    { statuses: ["Failed", "Finished"] },
    { statuses: ["Nope"] },
    { tags: ["a"] },
    { tags: ["a", "t2"] },
    { tags: ["b"], statuses: ["Running", "Pending"] },
    { tags: ["zzz"] },
  ];
  it.each(filters)("filter %j in Redis, then exactly, gives what the whole read does", async (filter) => {
    const want = (await store.getMany(ids)).map((s) => s.job).filter((j) => includes(filter, j));
    const read = await readAll(ids, {
      statuses: filter.statuses,
      needles: (filter.tags ?? []).map((t) => JSON.stringify(t)),
    });
    // Redis never leaves out a job the filter includes ...
    const readIds = new Set(read.map((l) => l.id));
    for (const j of want) expect(readIds.has(j.id)).toBe(true);
    // ... and after the exact check the result is the same, job for job.
    const got = read.map((l) => decodeListed(l.id, l.values)!).filter((j) => includes(filter, j));
    expect(got).toEqual(want);
  });

  it("leaves a job whose tag text is only in other fields to the exact check", async () => {
    const read = await readAll(ids, { needles: [JSON.stringify("a")] });
    const onlyInEnv = read.map((l) => decodeListed(l.id, l.values)!).filter((j) => !j.tags?.includes("a"));
    expect(onlyInEnv.length).toBeGreaterThan(0);
    expect(onlyInEnv.every((j) => !includes({ tags: ["a"] }, j))).toBe(true);
  });

  it("summaries filtered by status match the whole read's", async () => {
    const want = (await store.getMany(ids)).filter((s) => s.job.status === "Running");
    const got = await readAll(ids, { summary: true, statuses: ["Running"] });
    expect(got.map((l) => decodeSummary(l.id, l.values)!.job.status)).toEqual(want.map(() => "Running"));
    expect(got.map((l) => l.id)).toEqual(want.map((s) => s.job.id));
  });
});
