// Authentication and user isolation on a real node: another user's job does not exist for you.
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, readStream, startTestNode, TEST_SECRET, type TestNode, token } from "../helpers/nodes.js";
import { uniquePrefix } from "../helpers/redis.js";
import { control, endAll, getJob, type JobBody, listJobs, running, submit, waitStatus } from "./helpers.js";

let n: TestNode;
let alice: string;
let bob: string;
let admin: string;
let aliceJob: JobBody;
let bobJob: JobBody;

beforeAll(async () => {
  n = await startTestNode(uniquePrefix("auth"));
  [alice, bob, admin] = await Promise.all([token("alice"), token("bob"), token("boss", { admin: true })]);
  [aliceJob, bobJob] = await Promise.all([
    running(n, alice, { command: "sleep 30", name: "alice's" }),
    running(n, bob, { command: "sleep 30", name: "bob's" }),
  ]);
});
afterAll(async () => {
  await endAll(n, admin);
  await n.close();
});

const count = async () => (await listJobs(n, admin, "?user=*")).length;

describe("tokens", () => {
  async function expect401(headers: Record<string, string>, message?: RegExp) {
    const requests = [
      ["GET", "/jobs", undefined],
      ["GET", `/jobs/${aliceJob.id}`, undefined],
      ["POST", "/jobs", { command: "echo sneaky" }],
      ["POST", `/jobs/${aliceJob.id}/control`, { operation: "kill" }],
      ["GET", `/jobs/${aliceJob.id}/output`, undefined],
      ["GET", "/jobs/*/status", undefined],
      ["GET", "/cluster-info", undefined],
      ["GET", "/nodes", undefined],
    ] as const;
    await Promise.all(
      requests.map(async ([method, path, body]) => {
        const res = await api<{ code: number; name: string; message: string }>(n.url, method, path, {
          headers,
          body,
        });
        expect({ path, status: res.status, code: res.body.code, name: res.body.name }).toEqual({
          path,
          status: 401,
          code: 2,
          name: "InvalidRequest",
        });
        if (message) expect(res.body.message).toMatch(message);
      }),
    );
  }

  it("no token, a malformed one, a wrongly signed one, an expired one: 401 code 2, nothing done", async () => {
    const before = await count();
    const wrongSecret = await new SignJWT({ groups: ["launcher-admins"] })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("mallory")
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode("not-the-secret"));
    const expired = await new SignJWT({})
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("alice")
      .setExpirationTime(Math.floor(Date.now() / 1000) - 600)
      .sign(new TextEncoder().encode(TEST_SECRET));
    const noExp = await new SignJWT({})
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("alice")
      .sign(new TextEncoder().encode(TEST_SECRET));
    const noSub = await new SignJWT({})
      .setProtectedHeader({ alg: "HS256" })
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode(TEST_SECRET));
    await Promise.all([
      expect401({}),
      expect401({ authorization: "Bearer not.a.jwt" }),
      expect401({ authorization: `Basic ${Buffer.from("alice:pw").toString("base64")}` }),
      expect401({ authorization: `Bearer ${wrongSecret}` }),
      expect401({ authorization: `Bearer ${expired}` }, /expired/i),
      expect401({ authorization: `Bearer ${noExp}` }),
      expect401({ authorization: `Bearer ${noSub}` }),
    ]);
    expect(await count()).toBe(before);
    expect((await getJob(n, alice, aliceJob.id)).status).toBe("Running");
  });

  it("public endpoints need no token", async () => {
    for (const path of ["/healthz", "/metrics", "/status", "/readyz"]) {
      expect((await api(n.url, "GET", path)).status, path).toBe(200);
    }
  });
});

describe("user isolation", () => {
  it("alice cannot see or touch bob's job: 404 code 3 everywhere", async () => {
    const id = bobJob.id;
    const notFound = { status: 404, body: { code: 3, name: "JobNotFound" } };
    const get = await api<{ message: string }>(n.url, "GET", `/jobs/${id}`, { token: alice });
    expect(get).toMatchObject(notFound);
    expect(get.body.message).toBe(`Job ${id} could not be found for user alice`);
    for (const op of ["suspend", "stop", "kill", "cancel", "resume"]) {
      expect(await control(n, alice, id, op)).toMatchObject(notFound);
    }
    for (const path of ["output", "status", "resource-util", "network"]) {
      expect(await api(n.url, "GET", `/jobs/${id}/${path}`, { token: alice }), path).toMatchObject(notFound);
    }
    // Same answer as for a job that does not exist at all.
    const missing = await api(n.url, "GET", "/jobs/does-not-exist", { token: alice });
    expect(missing).toMatchObject(notFound);
    const after = await getJob(n, bob, id);
    expect(after.status).toBe("Running");
    expect(after.lastUpdateTime).toBe((await getJob(n, admin, id)).lastUpdateTime);
  });

  it("a list shows only the caller's own jobs, whatever `user` says", async () => {
    for (const q of ["", "?user=bob", "?user=*"]) {
      const list = await listJobs(n, alice, q);
      expect(list.length).toBeGreaterThan(0);
      expect(new Set(list.map((j) => j.user))).toEqual(new Set(["alice"]));
      expect(list.map((j) => j.id)).toContain(aliceJob.id);
    }
    const bobs = await listJobs(n, bob);
    expect(bobs.map((j) => j.id)).toContain(bobJob.id);
    expect(bobs.map((j) => j.id)).not.toContain(aliceJob.id);
  });

  it("admins see everyone's jobs; ?user= narrows to one user or * for all", async () => {
    const all = await listJobs(n, admin);
    expect(all.map((j) => j.id)).toEqual(expect.arrayContaining([aliceJob.id, bobJob.id]));
    expect(await listJobs(n, admin, "?user=*")).toEqual(all);
    const bobs = await listJobs(n, admin, "?user=bob");
    expect(bobs.length).toBeGreaterThan(0);
    expect(new Set(bobs.map((j) => j.user))).toEqual(new Set(["bob"]));
    expect(await listJobs(n, admin, "?user=nobody")).toEqual([]);
    expect((await getJob(n, admin, bobJob.id)).user).toBe("bob");
    const out = await api(n.url, "GET", `/jobs/${bobJob.id}/network`, { token: admin });
    expect(out.status).toBe(200);
  });

  it("an admin may submit for another user; a non-admin may not (400, nothing created)", async () => {
    const forBob = await submit(n, admin, { command: "echo on behalf", user: "bob" });
    expect(forBob.user).toBe("bob");
    expect((await listJobs(n, bob)).map((j) => j.id)).toContain(forBob.id);
    expect((await getJob(n, bob, forBob.id)).user).toBe("bob");

    const before = await count();
    const res = await api<{ code: number; message: string }>(n.url, "POST", "/jobs", {
      token: alice,
      body: { command: "echo sneaky", user: "bob" },
    });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe(2);
    expect(res.body.message).toContain("user");
    const star = await api(n.url, "POST", "/jobs", { token: admin, body: { command: "true", user: "*" } });
    expect(star).toMatchObject({ status: 400, body: { code: 2 } });
    expect(await count()).toBe(before);

    // Naming yourself is fine.
    const self = await submit(n, alice, { command: "true", user: "alice" });
    expect(self.user).toBe("alice");
    // An admin without `user` submits as itself.
    expect((await submit(n, admin, { command: "true" })).user).toBe("boss");
  });

  it("the `*` status stream shows a user only their own jobs; an admin sees all", async () => {
    type Ev = { id: string; status: string };
    let bobNew: string | undefined;
    let aliceNew: string | undefined;
    let opened!: () => void;
    const open = new Promise<void>((r) => {
      opened = r;
    });
    let adminOpened!: () => void;
    const adminOpen = new Promise<void>((r) => {
      adminOpened = r;
    });
    const aliceStream = readStream<Ev>(n.url, "/jobs/*/status", {
      token: alice,
      onOpen: () => opened(),
      until: (m) => m.id === aliceNew && m.status === "Finished",
    });
    const adminStream = readStream<Ev>(n.url, "/jobs/*/status", {
      token: admin,
      onOpen: () => adminOpened(),
      until: (_m, all) =>
        all.some((e) => e.id === aliceNew && e.status === "Finished") &&
        all.some((e) => e.id === bobNew && e.status === "Finished"),
    });
    await Promise.all([open, adminOpen]);
    // Bob's job first: its events are on the bus before alice's, so they would show up first.
    bobNew = (await submit(n, bob, { command: "true" })).id;
    await waitStatus(n, bob, bobNew, "Finished");
    aliceNew = (await submit(n, alice, { command: "true" })).id;

    const { messages } = await aliceStream;
    const bobsIds = new Set((await listJobs(n, bob)).map((j) => j.id));
    expect(messages.some((m) => m.id === aliceJob.id)).toBe(true); // the snapshot
    expect(messages.filter((m) => m.id === aliceNew).map((m) => m.status)).toEqual([
      "Pending",
      "Running",
      "Finished",
    ]);
    expect(messages.filter((m) => bobsIds.has(m.id))).toEqual([]);

    const seenByAdmin = (await adminStream).messages;
    expect(seenByAdmin.some((m) => m.id === bobNew)).toBe(true);
    expect(seenByAdmin.some((m) => m.id === bobJob.id)).toBe(true);
  });
});
