// LAUNCHER_MAX_RUNNING_JOBS holds on a node: never more jobs at once than slots, whatever the
// order in which jobs end and slots free (each job records its own start and end).
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startTestNode, type TestNode, token } from "../helpers/nodes.js";
import { uniquePrefix } from "../helpers/redis.js";
import { submit, waitTerminal } from "./helpers.js";

let n: TestNode;
let alice: string;
beforeAll(async () => {
  n = await startTestNode(uniquePrefix("slots"), { maxRunningJobs: 2 });
  alice = await token("alice");
});
afterAll(() => n.close());

it("runs at most 2 of 10 jobs at once with 2 slots", async () => {
  const log = join(mkdtempSync(join(tmpdir(), "slots-")), "log");
  const jobs = [];
  for (let i = 0; i < 10; i++) {
    jobs.push(
      await submit(n, alice, {
        command: `echo "+ $(date +%s%N)" >> ${log}; sleep 0.${3 + (i % 3)}; echo "- $(date +%s%N)" >> ${log}`,
      }),
    );
  }
  for (const job of jobs) expect((await waitTerminal(n, alice, job.id, 30_000)).exitCode).toBe(0);
  const events = readFileSync(log, "utf8")
    .trim()
    .split("\n")
    .map((line) => ({ delta: line.startsWith("+") ? 1 : -1, at: BigInt(line.slice(2)) }))
    .sort((a, b) => (a.at === b.at ? a.delta - b.delta : a.at < b.at ? -1 : 1));
  let running = 0;
  let most = 0;
  for (const e of events) {
    running += e.delta;
    most = Math.max(most, running);
  }
  expect(events.length).toBe(20);
  expect(most).toBe(2);
}, 60_000);
