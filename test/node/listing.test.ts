// Listing filters and field selection on a real node with real jobs.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, startTestNode, type TestNode, token } from "../helpers/nodes.js";
import { uniquePrefix } from "../helpers/redis.js";
import { endAll, getJob, type JobBody, listJobs, submit, waitStatus, waitTerminal } from "./helpers.js";

let n: TestNode;
let lister: string;
let admin: string;
/** Keyed by the name each job was given. */
const jobs: Record<string, JobBody> = {};

const ids = (list: JobBody[]) => list.map((j) => j.id);
const sorted = (list: string[]) => [...list].sort();
const named = (...names: string[]) => sorted(names.map((name) => jobs[name]!.id));

beforeAll(async () => {
  n = await startTestNode(uniquePrefix("listing"));
  lister = await token("lister");
  admin = await token("ops", { admin: true });
  const specs: Record<string, Record<string, unknown>> = {
    ab: { command: "true", tags: ["a", "b"] },
    a: { command: "true", tags: ["a"] },
    bc: { command: "sleep 30", tags: ["b", "c"] },
    abc: { command: "exit 1", tags: ["a", "b", "c"] },
    env: { command: "sleep 30", environment: [{ name: "FOO", value: "bar" }], tags: ["spaced tag"] },
  };
  // One after the other, so submission times rise with the order above.
  for (const [name, spec] of Object.entries(specs)) {
    jobs[name] = await submit(n, lister, { name, ...spec });
    await new Promise((r) => setTimeout(r, 5));
  }
  for (const name of ["ab", "a", "abc"]) await waitTerminal(n, lister, jobs[name]!.id);
  for (const name of ["bc", "env"]) await waitStatus(n, lister, jobs[name]!.id, "Running");
  for (const name of Object.keys(jobs)) jobs[name] = await getJob(n, lister, jobs[name]!.id);
  expect(jobs.bc!.status).toBe("Running");
  expect(jobs.env!.status).toBe("Running");
});
afterAll(async () => {
  await endAll(n, admin);
  await n.close();
});

describe("GET /jobs", () => {
  it("lists the caller's jobs sorted by id, the same every time", async () => {
    const all = await listJobs(n, lister);
    expect(ids(all)).toEqual(named("ab", "a", "bc", "abc", "env"));
    // Sorted by id, and ids sort in submission order.
    expect(ids(all)).toEqual(Object.values(jobs).map((j) => j.id));
    expect(await listJobs(n, lister)).toEqual(await listJobs(n, lister));
    // Full jobs, with the fields the server filled in.
    const ab = all.find((j) => j.id === jobs.ab!.id)!;
    expect(ab).toMatchObject({
      name: "ab",
      user: "lister",
      status: "Finished",
      exitCode: 0,
      tags: ["a", "b"],
    });
  });

  it("tags: all must match; repeated keys and comma lists are the same", async () => {
    expect(ids(await listJobs(n, lister, "?tags=a&tags=b"))).toEqual(named("ab", "abc"));
    expect(ids(await listJobs(n, lister, "?tags=a,b"))).toEqual(named("ab", "abc"));
    expect(ids(await listJobs(n, lister, "?tags=b,a"))).toEqual(named("ab", "abc"));
    expect(ids(await listJobs(n, lister, "?tags=a,b&tags=c"))).toEqual(named("abc"));
    expect(ids(await listJobs(n, lister, "?tags=a&tags=a"))).toEqual(named("ab", "a", "abc"));
    expect(ids(await listJobs(n, lister, `?tags=${encodeURIComponent("spaced tag")}`))).toEqual(named("env"));
    expect(await listJobs(n, lister, "?tags=spaced")).toEqual([]);
    const none = await api(n.url, "GET", "/jobs?tags=zzz", { token: lister });
    expect(none).toEqual({ status: 200, body: { jobs: [] } });
  });

  it("statuses: any may match, case-insensitive; unknown ones are 400", async () => {
    expect(ids(await listJobs(n, lister, "?statuses=Running"))).toEqual(named("bc", "env"));
    const runningOrFinished = named("ab", "a", "bc", "abc", "env");
    const mine = (list: JobBody[]) => ids(list).filter((id) => runningOrFinished.includes(id));
    expect(mine(await listJobs(n, lister, "?statuses=running,finished"))).toEqual(runningOrFinished);
    expect(mine(await listJobs(n, lister, "?statuses=Running&statuses=FINISHED"))).toEqual(runningOrFinished);
    expect(ids(await listJobs(n, lister, "?statuses=Finished&tags=c"))).toEqual(named("abc"));
    expect(await listJobs(n, lister, "?statuses=Canceled")).toEqual([]);

    const bad = await api(n.url, "GET", "/jobs?statuses=Completed", { token: lister });
    expect(bad).toEqual({
      status: 400,
      body: { code: 2, name: "InvalidRequest", message: "Invalid status(es): Completed" },
    });
    const mixed = await api(n.url, "GET", "/jobs?statuses=Running,Bogus", { token: lister });
    expect(mixed).toMatchObject({ status: 400, body: { code: 2, message: "Invalid status(es): Bogus" } });
  });

  it("startTime and endTime are inclusive bounds on submissionTime", async () => {
    const all = Object.values(jobs);
    const t = jobs.a!.submissionTime!;
    const ms = Date.parse(t);
    const expectFrom = (pred: (j: JobBody) => boolean) => sorted(all.filter(pred).map((j) => j.id));
    const q = (s: string) => encodeURIComponent(s);
    const mine = (list: JobBody[]) => ids(list).filter((id) => all.some((j) => j.id === id));

    expect(mine(await listJobs(n, lister, `?startTime=${q(t)}`))).toEqual(
      expectFrom((j) => Date.parse(j.submissionTime!) >= ms),
    );
    expect(mine(await listJobs(n, lister, `?endTime=${q(t)}`))).toEqual(
      expectFrom((j) => Date.parse(j.submissionTime!) <= ms),
    );
    const exact = mine(await listJobs(n, lister, `?startTime=${q(t)}&endTime=${q(t)}`));
    expect(exact).toContain(jobs.a!.id);
    expect(exact).toEqual(expectFrom((j) => Date.parse(j.submissionTime!) === ms));
    // One millisecond later excludes it; the same instant in another offset includes it.
    const later = new Date(ms + 1).toISOString();
    expect(mine(await listJobs(n, lister, `?startTime=${q(later)}`))).not.toContain(jobs.a!.id);
    const plusOne = new Date(ms + 3_600_000).toISOString().replace("Z", "+01:00");
    expect(mine(await listJobs(n, lister, `?startTime=${q(plusOne)}&endTime=${q(plusOne)}`))).toContain(
      jobs.a!.id,
    );
    // Empty windows are empty, not errors.
    expect(await listJobs(n, lister, "?endTime=2000-01-01T00:00:00Z")).toEqual([]);
    expect(await listJobs(n, lister, "?startTime=2999-01-01T00:00:00Z")).toEqual([]);
  });

  it("a bad time is 400 naming the field", async () => {
    for (const [field, value] of [
      ["startTime", "yesterday"],
      ["endTime", "2024-13-01T00:00:00Z"],
      ["startTime", "2024-01-01"],
      ["endTime", "1700000000"],
    ] as const) {
      const res = await api(n.url, "GET", `/jobs?${field}=${encodeURIComponent(value)}`, { token: lister });
      expect(res).toMatchObject({ status: 400, body: { code: 2, name: "InvalidRequest" } });
      expect((res.body as { message: string }).message).toContain(field);
    }
  });

  it("fields: id always kept, only the selected keys, env and environment both select the environment", async () => {
    const byName = await listJobs(n, lister, "?fields=name");
    for (const j of byName) expect(Object.keys(j).sort()).toEqual(j.name ? ["id", "name"] : ["id"]);
    expect(byName.find((j) => j.id === jobs.ab!.id)).toEqual({ id: jobs.ab!.id, name: "ab" });

    for (const spelling of ["env", "environment"]) {
      const list = await listJobs(n, lister, `?fields=${spelling}`);
      expect(list.find((j) => j.id === jobs.env!.id)).toEqual({
        id: jobs.env!.id,
        environment: [{ name: "FOO", value: "bar" }],
      });
      expect(list.find((j) => j.id === jobs.a!.id)).toEqual({ id: jobs.a!.id });
    }
    const unknown = await listJobs(n, lister, "?fields=bogus,alsoBogus");
    for (const j of unknown) expect(Object.keys(j)).toEqual(["id"]);
    expect(ids(unknown)).toEqual(ids(await listJobs(n, lister)));

    const repeated = await listJobs(n, lister, "?fields=status&fields=exitCode");
    const comma = await listJobs(n, lister, "?fields=status,exitCode");
    expect(repeated).toEqual(comma);
    expect(comma.find((j) => j.id === jobs.abc!.id)).toEqual({
      id: jobs.abc!.id,
      status: "Finished",
      exitCode: 1,
    });
    expect(comma.find((j) => j.id === jobs.bc!.id)).toEqual({ id: jobs.bc!.id, status: "Running" });
    // Fields do not filter: the same jobs as without them.
    expect(ids(comma)).toEqual(ids(await listJobs(n, lister)));
  });
});

describe("GET /jobs/{id}?fields=", () => {
  it("selects fields of one job", async () => {
    const id = jobs.env!.id;
    const get = (q: string) =>
      api<Record<string, unknown>>(n.url, "GET", `/jobs/${id}${q}`, { token: lister });
    expect((await get("?fields=status,tags")).body).toEqual({ id, status: "Running", tags: ["spaced tag"] });
    expect((await get("?fields=status&fields=tags")).body).toEqual({
      id,
      status: "Running",
      tags: ["spaced tag"],
    });
    expect((await get("?fields=env")).body).toEqual({ id, environment: [{ name: "FOO", value: "bar" }] });
    expect((await get("?fields=bogus")).body).toEqual({ id });
    const full = (await get("")).body;
    expect(full).toMatchObject({ id, name: "env", status: "Running", user: "lister", command: "sleep 30" });
    expect(Object.keys(full).length).toBeGreaterThan(5);
  });
});
