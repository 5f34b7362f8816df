// A node whose supervisor daemon dies (killed, or OOM-killed): its running jobs end Failed, saying
// the supervisor died, never Finished with a made-up exit code; the next job starts at once on a
// new daemon.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jobDir, readStatus } from "../../src/runner/supervisor.js";
import { startTestNode, type TestNode, token, until } from "../helpers/nodes.js";
import { alive } from "../helpers/procs.js";
import { uniquePrefix } from "../helpers/redis.js";
import { submit, waitStatus } from "./helpers.js";

let n: TestNode;
let tok: string;

beforeAll(async () => {
  n = await startTestNode(uniquePrefix("sup-death"));
  tok = await token("sam");
});
afterAll(() => n.close());

describe("the supervisor daemon dies", () => {
  it("its jobs end Failed with a message saying so; the next job runs on a new daemon", async () => {
    const stateDir = join(n.settings.scratchPath, "runner", n.settings.nodeId);
    const jobs = [
      await submit(n, tok, { command: "sleep 60" }),
      await submit(n, tok, { command: "sleep 60" }),
    ];
    const pids: number[] = [];
    for (const j of jobs) pids.push((await waitStatus(n, tok, j.id, "Running")).pid as number);
    const daemon = readStatus(jobDir(stateDir, jobs[0]!.id))?.supervisorPid ?? 0;
    expect(daemon).toBeGreaterThan(0);

    process.kill(daemon, "SIGKILL");
    for (const j of jobs) {
      const ended = await waitStatus(n, tok, j.id, "Failed");
      expect(ended.exitCode).toBeUndefined();
      expect(ended.statusMessage).toBe(
        `The job was lost on node ${n.settings.nodeId}: its supervisor daemon (pid ${daemon}) died before recording the job's exit; what was left of the job was killed`,
      );
    }
    // Nothing of them runs on unsupervised.
    await until(() => pids.every((p) => !alive(p)), { timeoutMs: 5_000 });

    const started = Date.now();
    const next = await submit(n, tok, { command: "sleep 0.3; exit 7" });
    await waitStatus(n, tok, next.id, "Running");
    const newDaemon = readStatus(jobDir(stateDir, next.id))?.supervisorPid ?? 0;
    expect(newDaemon).toBeGreaterThan(0);
    expect(newDaemon).not.toBe(daemon);
    expect(await waitStatus(n, tok, next.id, "Finished")).toMatchObject({ exitCode: 7 });
    // Recorded for the note, not asserted: how long the first job after the death took to run.
    console.log(
      `[supervisor-death] next job (sleep 0.3) finished ${Date.now() - started} ms after submission`,
    );
  }, 60_000);
});
