// A BullMQ worker process for the queue-latency measure (bench/placement.ts): like bullmq-worker.ts,
// each job runs its command through `/bin/sh -c` and completes with the exit code, and it also keeps
// the CLOCK_MONOTONIC time (ms) at which each job's process spawned and exited. Started with an IPC
// channel: it sends "ready" once connected; on the message "report" it answers with
// `{ spawns: [jobId, ms][], exits: [jobId, ms][] }` (kept in memory until then, so that reporting
// costs nothing between one job's exit and the next job's spawn); it stops on SIGTERM.
//   node dist-bench/bench/bullmq-pickup-worker.js <redis port> <queue> <prefix> <concurrency>
import { spawn } from "node:child_process";
import { Worker } from "bullmq";

const [port, queue, prefix, concurrency] = process.argv.slice(2);
const monoMs = () => Number(process.hrtime.bigint()) / 1e6;
const spawns: [string, number][] = [];
const exits: [string, number][] = [];

function run(id: string, command: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn("/bin/sh", ["-c", command], { stdio: "ignore" });
    child.once("spawn", () => spawns.push([id, monoMs()]));
    child.once("error", reject);
    child.once("exit", (code, signal) => {
      exits.push([id, monoMs()]);
      resolve(code ?? (signal ? 128 : 1));
    });
  });
}

const worker = new Worker<{ command: string }, number>(
  queue!,
  async (job) => {
    const code = await run(job.id!, job.data.command);
    if (code !== 0) throw new Error(`${job.data.command} exited with ${code}`);
    return code;
  },
  {
    connection: { host: "127.0.0.1", port: Number(port), maxRetriesPerRequest: null },
    prefix: prefix!,
    concurrency: Number(concurrency),
  },
);
worker.on("error", (err) => console.error(`bullmq pickup worker: ${err.message}`));

await worker.waitUntilReady();
process.on("message", (m) => {
  if (m === "report") process.send?.({ spawns: spawns.splice(0), exits: exits.splice(0) });
});
process.send?.("ready");

const stop = async () => {
  await worker.close().catch(() => undefined);
  process.exit(0);
};
process.on("SIGTERM", () => void stop());
process.on("disconnect", () => void stop());
