// Any node answers any request with the owner's answer: reads from Redis, owner-only requests
// forwarded to the owner, control really signalling the owner's process.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, readStream, type TestNode, token, until } from "../helpers/nodes.js";
import { uniquePrefix } from "../helpers/redis.js";
import {
  adminRedis,
  closeAll,
  control,
  getJob,
  killGroup,
  procState,
  RELAXED,
  startFleet,
  submit,
  waitStatus,
} from "./helpers.js";

let a: TestNode;
let b: TestNode;
let c: TestNode;
let all: TestNode[];
let alice: string;
let bob: string;
let admin: string;
const pids: number[] = [];

beforeAll(async () => {
  all = await startFleet(uniquePrefix("fleet-route"), 3, RELAXED);
  [a, b, c] = all as [TestNode, TestNode, TestNode];
  [alice, bob, admin] = await Promise.all([token("alice"), token("bob"), token("root", { admin: true })]);
});

afterAll(async () => {
  for (const pid of pids) killGroup(pid);
  await closeAll(all);
});

async function raw(url: string, method: string, path: string, tok: string, body?: unknown) {
  const res = await fetch(new URL(path, url), {
    method,
    headers: { authorization: `Bearer ${tok}`, ...(body ? { "content-type": "application/json" } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return {
    status: res.status,
    owner: res.headers.get("x-launcher-owner"),
    body: (await res.json()) as unknown,
  };
}

describe("a job on A seen through B and C", () => {
  it("get, status, output, network and control through B and C give A's answer; control signals A's process", async () => {
    const id = await submit(a.url, alice, {
      command: "echo fleet-hello; echo fleet-err >&2; sleep 60",
      name: "routed",
    });
    const running = await waitStatus(a.url, alice, id, "Running");
    const pid = running.pid as number;
    pids.push(pid);
    expect(pid).toBeGreaterThan(0);
    expect(procState(pid)).toBeDefined();

    // get: identical everywhere, and the owner's host is A's.
    const fromA = await getJob(a.url, alice, id);
    expect(await getJob(b.url, alice, id)).toEqual(fromA);
    expect(await getJob(c.url, alice, id)).toEqual(fromA);
    expect(fromA).toMatchObject({ id, status: "Running", user: "alice", name: "routed" });
    // Another user's job does not exist for bob, whichever node he asks.
    for (const n of all) {
      const r = await api(n.url, "GET", `/jobs/${id}`, { token: bob });
      expect(r.status).toBe(404);
      expect(r.body).toMatchObject({ code: 3 });
      const ctl = await control(n.url, bob, id, "stop");
      expect(ctl.status).toBe(404);
    }

    // status stream: the same first message (the job's current status) from each node.
    const firsts = await until(async () => {
      const got = await Promise.all(
        all.map((n) =>
          readStream<Record<string, unknown>>(n.url, `/jobs/${id}/status`, {
            token: alice,
            until: () => true,
          }),
        ),
      );
      const msgs = got.map((g) => g.messages[0]);
      return JSON.stringify(msgs[1]) === JSON.stringify(msgs[0]) &&
        JSON.stringify(msgs[2]) === JSON.stringify(msgs[0])
        ? msgs
        : undefined;
    });
    expect(firsts[0]).toMatchObject({
      seqId: 1,
      id,
      status: "Running",
      name: "routed",
      eventId: expect.any(String),
    });

    // output stream: forwarded to A, the same bytes from every node.
    const outputs = await Promise.all(
      all.map(async (n) => {
        const r = await readStream<{ output?: string; outputType?: string }>(
          n.url,
          `/jobs/${id}/output?outputType=both`,
          {
            token: alice,
            until: (_m, msgs) => {
              const text = msgs.map((x) => x.output ?? "").join("");
              return text.includes("fleet-hello") && text.includes("fleet-err");
            },
          },
        );
        expect(r.status).toBe(200);
        return r.messages
          .map((m) => `${m.outputType}:${m.output}`)
          .sort()
          .join("|");
      }),
    );
    expect(outputs[1]).toBe(outputs[0]);
    expect(outputs[2]).toBe(outputs[0]);
    const stdoutOnly = await readStream<{ output?: string; outputType?: string }>(
      c.url,
      `/jobs/${id}/output?outputType=stdout`,
      {
        token: alice,
        until: (m) => (m.output ?? "").includes("fleet-hello"),
      },
    );
    expect(stdoutOnly.messages.every((m) => m.outputType === "stdout")).toBe(true);

    // network: A's answer, served by A (the forwarded answer says so).
    const netA = await raw(a.url, "GET", `/jobs/${id}/network`, alice);
    expect(netA.status).toBe(200);
    expect(netA.owner).toBeNull();
    for (const n of [b, c]) {
      const r = await raw(n.url, "GET", `/jobs/${id}/network`, alice);
      expect(r).toEqual({ status: 200, owner: a.settings.nodeId, body: netA.body });
    }

    // control through C: the process on A is really stopped (state T), then resumed through B.
    const suspended = await raw(c.url, "POST", `/jobs/${id}/control`, alice, { operation: "suspend" });
    expect(suspended).toMatchObject({
      status: 200,
      owner: a.settings.nodeId,
      body: { operationComplete: true },
    });
    await until(() => procState(pid) === "T", { timeoutMs: 5_000 });
    expect((await getJob(b.url, alice, id)).status).toBe("Suspended");
    // A wrong state gives the owner's 409 through any node, and changes nothing.
    const again = await Promise.all(
      all.map((n) => raw(n.url, "POST", `/jobs/${id}/control`, alice, { operation: "suspend" })),
    );
    for (const r of again) {
      expect(r.status).toBe(409);
      expect(r.body).toEqual(again[0]!.body);
      expect(r.body).toMatchObject({ code: 8, name: "InvalidJobState" });
    }
    expect(procState(pid)).toBe("T");

    const resumed = await control(b.url, alice, id, "resume");
    expect(resumed.status).toBe(200);
    await until(() => procState(pid) !== "T", { timeoutMs: 5_000 });
    expect(["S", "R"]).toContain(procState(pid));
    expect((await getJob(c.url, alice, id)).status).toBe("Running");

    // stop through C: SIGTERM reaches A's process group, the real exit code is 143.
    const stopped = await control(c.url, alice, id, "stop");
    expect(stopped.status).toBe(200);
    const done = await waitStatus(b.url, alice, id, "Finished");
    expect(done.exitCode).toBe(143);
    await until(() => procState(pid) === undefined || procState(pid) === "Z", { timeoutMs: 5_000 });
    // Owner-only on a finished job: the owner's answer (output replays and completes) via C.
    const out = await readStream<{ output?: string; complete?: boolean }>(c.url, `/jobs/${id}/output`, {
      token: alice,
    });
    expect(out.ended).toBe(true);
    expect(out.messages.at(-1)).toMatchObject({ complete: true });
    expect(out.messages.map((m) => m.output ?? "").join("")).toContain("fleet-hello");
  });

  it("a one-job status stream through C follows a job on A to its end", async () => {
    const id = await submit(a.url, alice, { command: "sleep 0.3; exit 4" });
    const s = await readStream<{ status: string }>(c.url, `/jobs/${id}/status`, { token: alice });
    expect(s.ended).toBe(true);
    expect(s.messages.at(-1)?.status).toBe("Finished");
    expect((await getJob(b.url, alice, id)).exitCode).toBe(4);
  });
});

describe("routing remembers where a job lives", () => {
  it("after B has routed a job, another user still gets 404 through B, and a job deleted from Redis is 404 too", async () => {
    // A finished job, so that removing its record below is what expiry would do.
    const id = await submit(a.url, alice, { command: "exit 0", name: "remembered" });
    await waitStatus(a.url, alice, id, "Finished");
    for (let i = 0; i < 3; i++) {
      const r = await raw(b.url, "GET", `/jobs/${id}/network`, alice);
      expect(r).toMatchObject({ status: 200, owner: a.settings.nodeId });
    }
    const forBob = await raw(b.url, "GET", `/jobs/${id}/network`, bob);
    expect(forBob).toMatchObject({ status: 404, body: { code: 3 } });

    // The record disappears: B still sends the request to A, which reads the job itself: 404.
    const redis = adminRedis(a.settings.redisUrl);
    try {
      await redis.del(`${a.settings.keyPrefix}:job:${id}`);
    } finally {
      redis.disconnect();
    }
    for (const n of all) {
      const r = await raw(n.url, "GET", `/jobs/${id}/network`, alice);
      expect(r).toMatchObject({ status: 404, body: { code: 3 } });
    }
  });
});

describe("fleet-wide listing", () => {
  it("gives the same GET /jobs answer from every node", async () => {
    const tag = `t${Date.now()}`;
    const ids: string[] = [];
    for (const [i, n] of all.entries()) {
      ids.push(await submit(n.url, alice, { command: "sleep 30", tags: [tag, `node${i}`] }));
      ids.push(await submit(n.url, bob, { command: "exit 0", tags: [tag] }));
    }
    for (const id of ids)
      await until(
        async () => (await api(a.url, "GET", `/jobs/${id}`, { token: admin })).body.status !== "Pending",
      );
    await until(async () => {
      const r = await api<{ jobs: { status: string }[] }>(a.url, "GET", `/jobs?tags=${tag}&user=*`, {
        token: admin,
      });
      return r.body.jobs.filter((j) => j.status === "Finished").length === 3;
    });
    const queries: [string, string][] = [
      [alice, `/jobs?tags=${tag}`],
      [bob, `/jobs?tags=${tag}`],
      [admin, `/jobs?tags=${tag}&user=*`],
      [admin, `/jobs?tags=${tag}&user=bob`],
      [admin, `/jobs?tags=${tag}&user=*&statuses=Running`],
      [admin, `/jobs?tags=${tag},node1&user=*&fields=id,status,host`],
      [alice, "/jobs"],
    ];
    for (const [tok, path] of queries) {
      const answers = await Promise.all(
        all.map((n) => api<{ jobs: { id: string }[] }>(n.url, "GET", path, { token: tok })),
      );
      for (const r of answers) {
        expect(r.status).toBe(200);
        expect(r.body).toEqual(answers[0]!.body);
      }
    }
    const everyone = await api<{ jobs: { id: string; user: string }[] }>(
      c.url,
      "GET",
      `/jobs?tags=${tag}&user=*`,
      {
        token: admin,
      },
    );
    expect(everyone.body.jobs.map((j) => j.id)).toEqual([...ids].sort());
    const mine = await api<{ jobs: { user: string }[] }>(b.url, "GET", `/jobs?tags=${tag}`, { token: alice });
    expect(mine.body.jobs).toHaveLength(3);
    expect(mine.body.jobs.every((j) => j.user === "alice")).toBe(true);
    const narrowed = await api<{ jobs: Record<string, unknown>[] }>(
      a.url,
      "GET",
      `/jobs?tags=${tag},node1&user=*&fields=id,status`,
      {
        token: admin,
      },
    );
    expect(narrowed.body.jobs).toEqual([{ id: ids[2], status: "Running" }]);
    for (const j of (
      await api<{ jobs: { pid?: number }[] }>(a.url, "GET", `/jobs?tags=${tag}`, { token: alice })
    ).body.jobs) {
      if (j.pid) pids.push(j.pid);
    }
  });
});
