// Every control operation in every state, on real processes: the right ones act, the wrong ones are
// refused with 409 InvalidJobState and leave the job exactly as it was.
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestNode, type TestNode, token, until } from "../helpers/nodes.js";
import { uniquePrefix } from "../helpers/redis.js";
import {
  alive,
  control,
  endAll,
  getJob,
  groupMembers,
  type HasUrl,
  type JobBody,
  procState,
  running,
  sleep,
  submit,
  waitStatus,
  waitTerminal,
} from "./helpers.js";

/** Index = the operation's integer. */
const OPS = ["suspend", "resume", "stop", "kill", "cancel"] as const;
type Op = (typeof OPS)[number];
const STATE_MESSAGES: Record<Op, string> = {
  suspend: "Job must be running to suspend it",
  resume: "Job must be suspended to resume it",
  stop: "Job must be running to stop it",
  kill: "Job must be running to kill it",
  cancel: "Job must be pending to cancel it",
};

let n: TestNode;
let q: TestNode;
let alice: string;
let admin: string;
const tmp = mkdtempSync(join(tmpdir(), "node-control-"));

beforeAll(async () => {
  const prefix = uniquePrefix("control");
  [n, q] = await Promise.all([
    startTestNode(prefix),
    // A second fleet whose single slot keeps later jobs Pending.
    startTestNode(uniquePrefix("control-q"), { maxRunningJobs: 1 }),
  ]);
  alice = await token("alice");
  admin = await token("ops", { admin: true });
});
afterAll(async () => {
  await Promise.all([endAll(n, admin), endAll(q, admin)]);
  await Promise.all([n.close(), q.close()]);
});

/** Each wrong operation, by name and by integer, is 409 code 8 with the Launcher's message; the job is unchanged. */
async function expectRefused(node: HasUrl, job: JobBody, wrong: readonly Op[]): Promise<void> {
  const before = await getJob(node, alice, job.id);
  for (const op of wrong) {
    for (const form of [op, OPS.indexOf(op)]) {
      const r = await control(node, alice, job.id, form);
      expect({ form, ...r }).toEqual({
        form,
        status: 409,
        body: { code: 8, name: "InvalidJobState", message: STATE_MESSAGES[op] },
      });
    }
  }
  expect(await getJob(node, alice, job.id)).toEqual(before);
}

function expectDone(r: { status: number; body: unknown }): void {
  expect(r).toEqual({ status: 200, body: { statusMessage: expect.any(String), operationComplete: true } });
  expect((r.body as { statusMessage: string }).statusMessage).not.toBe("");
}

/** A job that prints a rising counter to its own file every 50 ms. */
async function ticker(): Promise<{ job: JobBody; lines: () => number }> {
  const file = join(tmp, `tick-${Math.random().toString(36).slice(2)}.log`);
  const job = await running(n, alice, {
    command: "i=0; while [ $i -lt 1200 ]; do i=$((i+1)); echo $i; sleep 0.05; done",
    stdoutFile: file,
  });
  const lines = () => {
    try {
      return readFileSync(file, "utf8").split("\n").filter(Boolean).length;
    } catch {
      return 0;
    }
  };
  return { job, lines };
}

describe("Pending", () => {
  it("only cancel is accepted; the rest are refused and the job stays Pending", async () => {
    const blocker = await running(q, alice, { command: "sleep 30" });
    const pending = await submit(q, alice, { command: "echo should-not-run" });
    await sleep(200);
    expect((await getJob(q, alice, pending.id)).status).toBe("Pending");
    await expectRefused(q, pending, ["suspend", "resume", "stop", "kill"]);
    expectDone(await control(q, alice, pending.id, 4));
    expect((await getJob(q, alice, pending.id)).status).toBe("Canceled");
    // Canceled is terminal: everything is refused now.
    await expectRefused(q, pending, OPS);
    expectDone(await control(q, alice, blocker.id, "kill"));
  });
});

describe("Running and Suspended", () => {
  it("Running refuses resume and cancel and keeps running", async () => {
    const { job, lines } = await ticker();
    await expectRefused(n, job, ["resume", "cancel"]);
    expect(alive(job.pid!)).toBe(true);
    expect(procState(job.pid!)).not.toBe("T");
    const seen = lines();
    await until(() => lines() > seen);
    expectDone(await control(n, alice, job.id, "kill"));
  });

  it("suspend really stops the process group (state T); Suspended refuses all but resume; resume continues", async () => {
    const { job, lines } = await ticker();
    await until(() => lines() >= 2);

    expectDone(await control(n, alice, job.id, "suspend"));
    expect((await getJob(n, alice, job.id)).status).toBe("Suspended");
    await until(() => procState(job.pid!) === "T");
    const members = groupMembers(job.pid!);
    expect(members.length).toBeGreaterThan(0);
    await until(() => members.every((pid) => procState(pid) === "T" || !alive(pid)));
    const frozen = lines();
    await sleep(400);
    expect(lines()).toBe(frozen);

    await expectRefused(n, job, ["suspend", "stop", "kill", "cancel"]);
    expect(procState(job.pid!)).toBe("T");

    expectDone(await control(n, alice, job.id, 1));
    expect((await getJob(n, alice, job.id)).status).toBe("Running");
    await until(() => procState(job.pid!) !== "T");
    await until(() => lines() > frozen);

    // Running again, so stop (any case) works: Finished 143.
    expectDone(await control(n, alice, job.id, "Stop"));
    expect(await waitTerminal(n, alice, job.id)).toMatchObject({ status: "Finished", exitCode: 143 });
  });

  it("suspend and stop by integer, kill by name in capitals", async () => {
    const a = await running(n, alice, { command: "sleep 30" });
    expectDone(await control(n, alice, a.id, 0));
    await waitStatus(n, alice, a.id, "Suspended");
    expectDone(await control(n, alice, a.id, "RESUME"));
    expectDone(await control(n, alice, a.id, 2));
    expect(await waitTerminal(n, alice, a.id)).toMatchObject({ status: "Finished", exitCode: 143 });

    const b = await running(n, alice, { command: "sleep 30" });
    expectDone(await control(n, alice, b.id, "KILL"));
    expect(await getJob(n, alice, b.id)).toMatchObject({ status: "Killed", exitCode: 137 });
  });
});

describe("terminal jobs refuse every operation", () => {
  it("Finished, Killed and Failed", async () => {
    const finished = await submit(n, alice, { command: "exit 0" });
    const failed = await submit(n, alice, { exe: "/nonexistent/launcher-prog" });
    const killed = await running(n, alice, { command: "sleep 30" });
    expectDone(await control(n, alice, killed.id, 3));
    expect((await waitTerminal(n, alice, finished.id)).status).toBe("Finished");
    expect((await waitTerminal(n, alice, failed.id)).status).toBe("Failed");
    for (const job of [finished, failed, killed]) await expectRefused(n, job, OPS);
  });
});

describe("stop and kill end the whole process group", () => {
  it("`sleep 2 && echo Done` never prints Done after stop or kill", async () => {
    const started = Date.now();
    const jobs = await Promise.all(
      ["stop", "kill"].map(async (op) => {
        const file = join(tmp, `done-${op}.log`);
        const job = await running(n, alice, { command: "sleep 2 && echo Done", stdoutFile: file });
        await until(() => groupMembers(job.pid!).length >= 2); // the shell and its sleep
        expectDone(await control(n, alice, job.id, op));
        return { job, file };
      }),
    );
    for (const { job } of jobs) await until(() => groupMembers(job.pid!).length === 0);
    const [stopped, killed] = await Promise.all(jobs.map(({ job }) => waitTerminal(n, alice, job.id)));
    expect(stopped).toMatchObject({ status: "Finished", exitCode: 143 });
    expect(killed).toMatchObject({ status: "Killed", exitCode: 137 });
    // Past the point where a surviving `sleep 2` would have printed.
    await sleep(Math.max(0, 2_500 - (Date.now() - started)));
    for (const { file } of jobs) expect(readFileSync(file, "utf8")).not.toContain("Done");
  });
});

describe("control racing with the job's own end", () => {
  it("operations on a job whose process is just ending are 200 or 409, never 5xx", async () => {
    const statuses = await Promise.all(
      Array.from({ length: 4 }, async (_, k) => {
        const job = await running(n, alice, { command: "sleep 1" });
        const seen: number[] = [];
        // Keep asking until the job is terminal: some requests land between the process's exit
        // and the moment that exit is recorded.
        for (;;) {
          const r = await control(n, alice, job.id, k % 2 ? "stop" : "suspend");
          seen.push(r.status);
          if (r.status === 200 && k % 2 === 0) await control(n, alice, job.id, "resume");
          if (r.status === 409 && ["Finished", "Killed"].includes((await getJob(n, alice, job.id)).status!))
            break;
        }
        return seen;
      }),
    );
    for (const seen of statuses) {
      expect(new Set(seen.filter((s) => s !== 200 && s !== 409))).toEqual(new Set());
      expect(seen.at(-1)).toBe(409);
    }
  });
});

describe("bad operations", () => {
  it("an unknown operation is 400 code 2 and changes nothing", async () => {
    const job = await running(n, alice, { command: "sleep 30" });
    const before = await getJob(n, alice, job.id);
    for (const operation of ["pause", "", "stopp", 5, -1, 1.5, null, true, { op: 1 }, [2]]) {
      const r = await control(n, alice, job.id, operation);
      expect({ operation, status: r.status, code: (r.body as { code?: number }).code }).toEqual({
        operation,
        status: 400,
        code: 2,
      });
    }
    const missing = await control(n, alice, job.id, undefined);
    expect(missing).toMatchObject({ status: 400, body: { code: 2, name: "InvalidRequest" } });
    const named = await control(n, alice, job.id, "pause");
    expect((named.body as { message: string }).message).toContain("pause");
    expect(await getJob(n, alice, job.id)).toEqual(before);
    expect(procState(job.pid!)).not.toBe("T");
    expectDone(await control(n, alice, job.id, "kill"));
  });

  it("control of a job that does not exist is 404 code 3", async () => {
    const r = await control(n, alice, "no-such-job", "stop");
    expect(r).toMatchObject({ status: 404, body: { code: 3, name: "JobNotFound" } });
    expect((r.body as { message: string }).message).toContain("no-such-job");
  });
});
