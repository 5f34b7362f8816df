// Re-adoption: a node SIGKILLed with jobs running comes back with the same id and scratch path and
// records every job's real exit code, also for jobs that ended while it was down.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Settings } from "../../src/config.js";
import { type ChildNode, readStream, startChildNode, testSettings, token, until } from "../helpers/nodes.js";
import { uniquePrefix } from "../helpers/redis.js";
import {
  alive,
  control,
  endAll,
  getJob,
  groupMembers,
  type JobBody,
  submit,
  waitStatus,
  waitTerminal,
} from "./helpers.js";

let settings: Settings;
let alice: string;
let admin: string;
const children: ChildNode[] = [];

beforeAll(async () => {
  // Long liveness timings: no peer exists to settle this node, and the restart must not look lost.
  settings = testSettings(uniquePrefix("restart"), { offlineAfterMs: 5_000, lostAfterMs: 60_000 });
  alice = await token("alice");
  admin = await token("ops", { admin: true });
});
afterAll(async () => {
  const last = children.at(-1);
  if (last && last.proc.exitCode === null && last.proc.signalCode === null) await endAll(last, admin);
  for (const c of children) await c.stop("SIGKILL");
});

describe("restart with the same node id", () => {
  it("re-adopts running jobs and records real exit codes, also of jobs that ended while it was down", async () => {
    const flag = join(mkdtempSync(join(tmpdir(), "node-restart-")), "go");
    const first = await startChildNode(settings);
    children.push(first);
    const [quick, long, later] = await Promise.all([
      submit(first, alice, { command: "echo before the restart; sleep 1; exit 7" }),
      submit(first, alice, { command: "sleep 30" }),
      // Ends once the test says so (after the restart), whatever the machine's speed.
      submit(first, alice, { command: `while [ ! -e ${flag} ]; do sleep 0.05; done; exit 5` }),
    ]);
    const runningJobs: JobBody[] = await Promise.all(
      [quick, long, later].map((j) => waitStatus(first, alice, j.id, "Running")),
    );
    const [quickPid, longPid, laterPid] = runningJobs.map((j) => j.pid!);

    expect(await first.stop("SIGKILL")).toBe("SIGKILL");
    // The jobs outlive their node.
    expect(alive(longPid!)).toBe(true);
    await until(() => !alive(quickPid!), { timeoutMs: 10_000 });

    const second = await startChildNode({ ...settings, port: 0 });
    children.push(second);
    const q = await waitTerminal(second, alice, quick.id);
    expect(q).toMatchObject({ status: "Finished", exitCode: 7 });
    // Its output record (the file its process opened) outlived the node: its output streams.
    const out = await readStream<{ output?: string }>(second.url, `/jobs/${quick.id}/output`, {
      token: alice,
    });
    expect(out.status).toBe(200);
    expect(out.messages.map((m) => m.output ?? "").join("")).toBe("before the restart\n");

    // The later job was still running when the node came back; it ends under the new node.
    expect(alive(laterPid!)).toBe(true);
    expect((await getJob(second, alice, later.id)).status).toBe("Running");
    writeFileSync(flag, "");
    const l = await waitTerminal(second, alice, later.id);
    expect(l).toMatchObject({ status: "Finished", exitCode: 5 });

    const longNow = await getJob(second, alice, long.id);
    expect(longNow).toMatchObject({ status: "Running", pid: longPid });
    expect(alive(longPid!)).toBe(true);
    const killed = await control(second, alice, long.id, "kill");
    expect(killed.status).toBe(200);
    expect(await getJob(second, alice, long.id)).toMatchObject({ status: "Killed", exitCode: 137 });
    await until(() => groupMembers(longPid!).length === 0);

    // The restarted node keeps working as usual.
    const fresh = await submit(second, alice, { command: "exit 9" });
    expect(await waitTerminal(second, alice, fresh.id)).toMatchObject({ status: "Finished", exitCode: 9 });
  });
});
