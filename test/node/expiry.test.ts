// Expiry: terminal jobs and their default output files are removed jobExpiryHours after their last
// update; running jobs stay. The node sweeps every 200 ms in tests; 0.0003 h is about 1 s.
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, startTestNode, type TestNode, token, until } from "../helpers/nodes.js";
import { uniquePrefix } from "../helpers/redis.js";
import { control, endAll, getJob, listJobs, running, submit, waitTerminal } from "./helpers.js";

let n: TestNode;
let alice: string;
let admin: string;
const tmp = mkdtempSync(join(tmpdir(), "node-expiry-"));

beforeAll(async () => {
  n = await startTestNode(uniquePrefix("expiry"), { jobExpiryHours: 0.0003 });
  alice = await token("alice");
  admin = await token("ops", { admin: true });
});
afterAll(async () => {
  await endAll(n, admin);
  await n.close();
});

const gone = async (id: string) => (await api(n.url, "GET", `/jobs/${id}`, { token: alice })).status === 404;

describe("expiry", () => {
  it("removes finished jobs and their default output files; running jobs stay; given files are kept", async () => {
    const sleeper = await running(n, alice, { command: "sleep 30" });
    const mine = join(tmp, "mine.log");
    const [finished, custom, killed] = await Promise.all([
      submit(n, alice, { command: "echo out; echo err >&2" }),
      submit(n, alice, { command: "echo kept", stdoutFile: mine }),
      running(n, alice, { command: "sleep 30" }),
    ]);
    expect((await control(n, alice, killed.id, "kill")).status).toBe(200);
    await Promise.all([finished, custom].map((j) => waitTerminal(n, alice, j.id)));
    const files = [finished.stdoutFile!, finished.stderrFile!];
    for (const f of files) expect(existsSync(f), f).toBe(true);
    expect(files.every((f) => f.startsWith(n.settings.scratchPath))).toBe(true);
    expect(existsSync(mine)).toBe(true);

    await until(async () => (await gone(finished.id)) && (await gone(custom.id)) && (await gone(killed.id)), {
      timeoutMs: 15_000,
    });
    const res = await api(n.url, "GET", `/jobs/${finished.id}`, { token: alice });
    expect(res).toMatchObject({ status: 404, body: { code: 3 } });
    for (const path of ["output", "status", "network"]) {
      expect((await api(n.url, "GET", `/jobs/${finished.id}/${path}`, { token: alice })).status, path).toBe(
        404,
      );
    }
    expect((await control(n, alice, finished.id, "stop")).status).toBe(404);
    for (const f of files) await until(() => !existsSync(f));
    // A file the job was given belongs to the user: never deleted.
    expect(existsSync(mine)).toBe(true);

    const ids = (await listJobs(n, admin, "?user=*")).map((j) => j.id);
    expect(ids).not.toContain(finished.id);
    expect(ids).not.toContain(killed.id);
    expect(ids).toContain(sleeper.id);
    // The sleeper is older than every expired job and still there, still running.
    expect(await getJob(n, alice, sleeper.id)).toMatchObject({ status: "Running" });
  });

  it("a job that ends later expires only after it ended", async () => {
    const job = await running(n, alice, { command: "sleep 2; exit 3" });
    // Read once it ended, which is 2 s after it was submitted (beyond the ~1 s window): a job
    // expires by the time it last changed, not by its submission.
    const done = await waitTerminal(n, alice, job.id);
    expect(done).toMatchObject({ status: "Finished", exitCode: 3 });
    expect(Date.parse(done.lastUpdateTime as string) - Date.parse(job.submissionTime!)).toBeGreaterThan(
      1_500,
    );
    await until(() => gone(job.id), { timeoutMs: 15_000 });
  });
});
