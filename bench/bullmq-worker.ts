// A BullMQ worker process for the throughput measure: each job runs its command through
// `/bin/sh -c`, exactly as a node runs a Launcher job's `command`, and completes with the exit code. Started by throughput.ts with an IPC
// channel: it sends "ready" once connected and stops on SIGTERM.
//   node dist-bench/bench/bullmq-worker.js <redis port> <queue> <prefix> <concurrency>
import { spawn } from "node:child_process";
import { Worker } from "bullmq";

const [port, queue, prefix, concurrency] = process.argv.slice(2);

function run(command: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn("/bin/sh", ["-c", command], { stdio: "ignore" });
    child.once("error", reject);
    child.once("exit", (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

const worker = new Worker<{ command: string }, number>(
  queue!,
  async (job) => {
    const code = await run(job.data.command);
    if (code !== 0) throw new Error(`${job.data.command} exited with ${code}`);
    return code;
  },
  {
    connection: { host: "127.0.0.1", port: Number(port), maxRetriesPerRequest: null },
    prefix: prefix!,
    concurrency: Number(concurrency),
  },
);
worker.on("error", (err) => console.error(`bullmq worker: ${err.message}`));

await worker.waitUntilReady();
process.send?.("ready");

const stop = async () => {
  await worker.close().catch(() => undefined);
  process.exit(0);
};
process.on("SIGTERM", () => void stop());
process.on("disconnect", () => void stop());
