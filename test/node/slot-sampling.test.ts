// LAUNCHER_MAX_RUNNING_JOBS holds at every moment, seen from outside: while a burst of short jobs
// passes through a node with 2 slots, the processes running (a /proc scan) and the API (jobs
// Running, the node's runningJobs) are sampled many times, and no sample ever shows more than 2.
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, expect, it } from "vitest";
import { markedProcesses, nodesOf } from "../fleet/helpers.js";
import { startTestNode, type TestNode, token } from "../helpers/nodes.js";
import { uniquePrefix } from "../helpers/redis.js";
import { getJob, type JobBody, listJobs, submit, waitTerminal } from "./helpers.js";

const SLOTS = 2;
const JOBS = 20;
const EVERY_MS = 20;
const IN_FLIGHT = 4;

let n: TestNode;
let tok: string;
beforeAll(async () => {
  n = await startTestNode(uniquePrefix("slot-sampling"), { maxRunningJobs: SLOTS });
  tok = await token("sam");
});
afterAll(() => n.close());

/**
 * Starts `sample` every EVERY_MS until `done()`, whether or not the previous one has answered (a
 * busy machine answers slower than that; at most IN_FLIGHT at once); resolves with the number of
 * samples taken, or rejects with the first error.
 */
async function sampleUntil(sample: () => Promise<void> | void, done: () => boolean): Promise<number> {
  let count = 0;
  let failed: unknown;
  const inFlight = new Set<Promise<void>>();
  while (!done() && failed === undefined) {
    const next = Date.now() + EVERY_MS;
    if (inFlight.size < IN_FLIGHT) {
      const p: Promise<void> = (async () => sample())()
        .then(
          () => {
            count++;
          },
          (err: unknown) => {
            failed ??= err;
          },
        )
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    await sleep(Math.max(0, next - Date.now()));
  }
  await Promise.all(inFlight);
  if (failed !== undefined) throw failed;
  return count;
}

/**
 * Jobs Running in one listing that are still Running when read again afterwards: all of them
 * were Running at one moment (a listing reads its jobs one after another).
 */
async function runningAtOnce(jobs: JobBody[]): Promise<number> {
  const running = jobs.filter((j) => j.status === "Running");
  if (running.length <= SLOTS) return running.length;
  const again = await Promise.all(running.map((j) => getJob(n, tok, j.id)));
  return again.filter((j) => j.status === "Running").length;
}

it(`a burst of ${JOBS} jobs through ${SLOTS} slots: never more than ${SLOTS} running, in processes or in the API`, async () => {
  const marker = `slot-sampling-${Math.random().toString(36).slice(2, 10)}`;
  const nodeId = n.settings.nodeId;
  const most = { procs: 0, apiRunning: 0, nodeRunning: 0 };
  let allTerminal = false;
  let submitted = false;

  // Sampling starts before the burst and goes on until every job of the burst is terminal.
  const sampled = Promise.all([
    sampleUntil(
      () => {
        most.procs = Math.max(most.procs, markedProcesses(marker).length);
      },
      () => allTerminal,
    ),
    sampleUntil(
      async () => {
        // Small answers (the Running jobs' ids, one node view), so sampling keeps up on a busy machine.
        const [running, views] = await Promise.all([
          listJobs(n, tok, "?statuses=Running&fields=id,status"),
          nodesOf(n.url),
        ]);
        most.apiRunning = Math.max(most.apiRunning, await runningAtOnce(running));
        const view = views.find((v) => v.id === nodeId);
        if (!view) throw new Error(`GET /nodes does not list ${nodeId}`);
        most.nodeRunning = Math.max(most.nodeRunning, view.runningJobs);
      },
      () => allTerminal,
    ),
    // Whether the burst is over: every job submitted, none Pending or Running any more.
    sampleUntil(
      async () => {
        const afterBurst = submitted; // as of before the read: a read begun earlier proves nothing
        const left = await listJobs(n, tok, "?statuses=Pending,Running,Suspended&fields=id");
        if (afterBurst && left.length === 0) allTerminal = true;
      },
      () => allTerminal,
    ),
  ]);
  // Reported when awaited below (a sample that throws ends its sampler).
  sampled.catch(() => undefined);
  const started = Date.now();
  const jobs = await Promise.all(
    Array.from({ length: JOBS }, (_, i) =>
      submit(n, tok, { command: `sleep 0.3; : ${marker}`, name: `burst-${i}` }),
    ),
  ).catch((err: unknown) => {
    allTerminal = true;
    throw err;
  });
  submitted = true;
  const [procSamples, apiSamples] = await sampled;
  const tookMs = Date.now() - started;
  console.log("slot sampling figures:", JSON.stringify({ tookMs, procSamples, apiSamples, ...most }));

  for (const { id } of jobs)
    expect(await waitTerminal(n, tok, id)).toMatchObject({ status: "Finished", exitCode: 0 });
  expect(procSamples).toBeGreaterThanOrEqual(100);
  expect(apiSamples).toBeGreaterThanOrEqual(100);
  expect(most.procs).toBeLessThanOrEqual(SLOTS);
  expect(most.apiRunning).toBeLessThanOrEqual(SLOTS);
  expect(most.nodeRunning).toBeLessThanOrEqual(SLOTS);
  // The slots were used: the samples did see jobs running side by side.
  expect(most.procs).toBeGreaterThan(0);
  expect(most.apiRunning).toBe(SLOTS);
  expect(most.nodeRunning).toBe(SLOTS);
}, 60_000);
