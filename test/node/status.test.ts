// Status transitions and exit codes of real jobs on one node (Local plugin profile (the Launcher's semantics)).
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compareEventIds } from "../../src/cluster/event-id.js";
import { api, readStream, startTestNode, type TestNode, token, until } from "../helpers/nodes.js";
import { uniquePrefix } from "../helpers/redis.js";
import { alive, control, endAll, getJob, groupMembers, running, submit, waitTerminal } from "./helpers.js";

let n: TestNode;
let alice: string;
let admin: string;
const tmp = mkdtempSync(join(tmpdir(), "node-status-"));

beforeAll(async () => {
  n = await startTestNode(uniquePrefix("status"));
  alice = await token("alice");
  admin = await token("root-admin", { admin: true });
});
afterAll(async () => {
  await endAll(n, admin);
  await n.close();
});

describe("status transitions", () => {
  it("goes Pending → Running → Finished, each change streamed once and in order", async () => {
    const user = await token("transitions");
    let id: string | undefined;
    let opened!: () => void;
    const open = new Promise<void>((r) => {
      opened = r;
    });
    const stream = readStream<{ id: string; status: string; seqId: number; eventId: string }>(
      n.url,
      "/jobs/*/status",
      {
        token: user,
        onOpen: () => opened(),
        until: (m) => m.id === id && m.status === "Finished",
      },
    );
    await open;
    const created = await submit(n, user, { command: "sleep 0.3; exit 0", name: "walk" });
    id = created.id;
    expect(created.status).toBe("Pending");
    const { messages } = await stream;
    const mine = messages.filter((m) => m.id === id);
    expect(mine.map((m) => m.status)).toEqual(["Pending", "Running", "Finished"]);
    expect(messages.map((m) => m.seqId)).toEqual(messages.map((_, i) => i + 1));
    const ids = mine.map((m) => m.eventId);
    expect([...ids].sort(compareEventIds)).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
    const job = await getJob(n, user, id);
    expect(job).toMatchObject({ status: "Finished", exitCode: 0, pid: expect.any(Number) });
  });

  it("a single-job status stream starts with the current status and ends after the terminal one", async () => {
    const job = await running(n, alice, { command: "sleep 0.5; exit 4" });
    const { messages, ended } = await readStream<{ status: string }>(n.url, `/jobs/${job.id}/status`, {
      token: alice,
    });
    expect(ended).toBe(true);
    expect(messages.map((m) => m.status)).toEqual(["Running", "Finished"]);
    expect((await getJob(n, alice, job.id)).exitCode).toBe(4);
    // Asked again once terminal: just the terminal status, then the end.
    const again = await readStream<{ status: string }>(n.url, `/jobs/${job.id}/status`, { token: alice });
    expect(again.ended).toBe(true);
    expect(again.messages.map((m) => m.status)).toEqual(["Finished"]);
  });

  it("Fails a job whose executable does not exist, saying why", async () => {
    const job = await submit(n, alice, { exe: "/nonexistent/launcher-test-prog", args: ["x"] });
    const done = await waitTerminal(n, alice, job.id);
    expect(done.status).toBe("Failed");
    expect(done.statusMessage).toContain("/nonexistent/launcher-test-prog");
    expect(done.exitCode).toBeUndefined();
  });

  it("Fails a job whose working directory does not exist, saying why", async () => {
    const job = await submit(n, alice, { command: "echo hi", workingDirectory: "/nonexistent/launcher-dir" });
    const done = await waitTerminal(n, alice, job.id);
    expect(done.status).toBe("Failed");
    expect(done.statusMessage).toMatch(/working directory/i);
    expect(done.statusMessage).toContain("/nonexistent/launcher-dir");
  });

  it("Fails a job whose output file cannot be created", async () => {
    const job = await submit(n, alice, { command: "echo hi", stdoutFile: "/proc/launcher-no-such/out.log" });
    const done = await waitTerminal(n, alice, job.id);
    expect(done.status).toBe("Failed");
    expect(done.statusMessage).toContain("/proc/launcher-no-such");
  });

  it("runs an exe with its args, and honours the working directory and environment", async () => {
    const job = await submit(n, alice, {
      exe: "/bin/sh",
      args: ["-c", 'pwd; echo "$GREETING"; echo "$#"', "zero", "a b", "c"],
      workingDirectory: tmp,
      environment: [{ name: "GREETING", value: "hello world" }],
    });
    const done = await waitTerminal(n, alice, job.id);
    expect(done).toMatchObject({ status: "Finished", exitCode: 0 });
    const out = await readStream<{ output?: string }>(n.url, `/jobs/${job.id}/output?outputType=stdout`, {
      token: alice,
    });
    expect(out.messages.map((m) => m.output ?? "").join("")).toBe(`${tmp}\nhello world\n2\n`);
  });

  it("passes stdin to the job", async () => {
    const job = await submit(n, alice, { command: "tr a-z A-Z", stdin: "shout\n" });
    await waitTerminal(n, alice, job.id);
    const out = await readStream<{ output?: string }>(n.url, `/jobs/${job.id}/output`, { token: alice });
    expect(out.messages.map((m) => m.output ?? "").join("")).toBe("SHOUT\n");
  });
});

describe("exit codes", () => {
  it("records the job's real exit code, and 128+N for a signal death", async () => {
    const cases: [string, number][] = [
      ["exit 0", 0],
      ["exit 3", 3],
      ["ulimit -c 0; kill -SEGV $$", 139],
      ["ulimit -c 0; kill -ABRT $$", 134],
      ["kill -TERM $$", 143],
      ["nonexistent-launcher-command", 127],
    ];
    const jobs = await Promise.all(cases.map(([command]) => submit(n, alice, { command })));
    const done = await Promise.all(jobs.map((j) => waitTerminal(n, alice, j.id)));
    expect(done.map((j) => [j.status, j.exitCode])).toEqual(cases.map(([, code]) => ["Finished", code]));
  });

  it("stop: SIGTERM to the process group, Finished with 143", async () => {
    const job = await running(n, alice, { command: "sleep 20 && echo Done" });
    const r = await control(n, alice, job.id, "stop");
    expect(r.status).toBe(200);
    const done = await waitTerminal(n, alice, job.id);
    expect(done).toMatchObject({ status: "Finished", exitCode: 143 });
    await until(() => groupMembers(job.pid!).length === 0);
  });

  it("kill: Killed with 137 at once, and it stays Killed after the process is gone", async () => {
    const job = await running(n, alice, { command: "sleep 20 && echo Done" });
    const stream = readStream<{ status: string }>(n.url, `/jobs/${job.id}/status`, { token: alice });
    await new Promise((r) => setTimeout(r, 300));
    const r = await control(n, alice, job.id, "kill");
    expect(r.status).toBe(200);
    // No waiting for the process: the status is Killed as soon as the control call has answered.
    expect(await getJob(n, alice, job.id)).toMatchObject({ status: "Killed", exitCode: 137 });
    const { messages, ended } = await stream;
    expect(ended).toBe(true);
    expect(messages.map((m) => m.status)).toEqual(["Running", "Killed"]);
    await until(() => !alive(job.pid!) && groupMembers(job.pid!).length === 0);
    // The process's own exit (also 137) must not turn the terminal Killed into Finished.
    await new Promise((r) => setTimeout(r, 300));
    expect(await getJob(n, alice, job.id)).toMatchObject({ status: "Killed", exitCode: 137 });
  });
});

describe("cancel (maxRunningJobs: 1 keeps the second job Pending)", () => {
  let q: TestNode;
  beforeAll(async () => {
    q = await startTestNode(uniquePrefix("status-q"), { maxRunningJobs: 1 });
  });
  afterAll(async () => {
    await endAll(q, admin);
    await q.close();
  });

  it("a queued job stays Pending, can be canceled, and never runs", async () => {
    const blocker = await running(q, alice, { command: "sleep 30" });
    const marker = join(tmp, "canceled-job-ran");
    const queued = await submit(q, alice, { command: `touch ${marker}; echo ran` });
    await new Promise((r) => setTimeout(r, 300));
    expect(await getJob(q, alice, queued.id)).toMatchObject({ status: "Pending" });

    const r = await control(q, alice, queued.id, "cancel");
    expect(r).toEqual({ status: 200, body: { statusMessage: expect.any(String), operationComplete: true } });
    expect(await getJob(q, alice, queued.id)).toMatchObject({ status: "Canceled" });

    // Free the slot; a later job runs to the end, so the queue has moved past the canceled one.
    expect((await control(q, alice, blocker.id, "kill")).status).toBe(200);
    const later = await submit(q, alice, { command: "echo later" });
    expect(await waitTerminal(q, alice, later.id)).toMatchObject({ status: "Finished", exitCode: 0 });

    const canceled = await getJob(q, alice, queued.id);
    expect(canceled.status).toBe("Canceled");
    expect(canceled.pid).toBeUndefined();
    expect(canceled.exitCode).toBeUndefined();
    expect(existsSync(marker)).toBe(false);
    const out = await readStream<{ output?: string; complete?: boolean }>(
      q.url,
      `/jobs/${queued.id}/output`,
      {
        token: alice,
      },
    );
    expect(out.messages).toEqual([{ seqId: 1, complete: true }]);
  });

  it("canceling a Running job is refused", async () => {
    const job = await running(q, alice, { command: "sleep 30" });
    const r = await control(q, alice, job.id, "cancel");
    expect(r).toMatchObject({ status: 409, body: { code: 8, message: "Job must be pending to cancel it" } });
    expect((await getJob(q, alice, job.id)).status).toBe("Running");
    await control(q, alice, job.id, "kill");
  });

  it("a queued job starts when the slot frees up", async () => {
    const first = await running(q, alice, { command: "sleep 0.5; exit 2" });
    const second = await submit(q, alice, { command: "exit 6" });
    expect((await getJob(q, alice, second.id)).status).toBe("Pending");
    expect(await waitTerminal(q, alice, first.id)).toMatchObject({ exitCode: 2 });
    expect(await waitTerminal(q, alice, second.id)).toMatchObject({ status: "Finished", exitCode: 6 });
    const res = await api(q.url, "GET", `/jobs?statuses=Pending`, { token: alice });
    expect(res.body).toEqual({ jobs: [] });
  });
});
