// A helper process for the throughput measure: spawns `true` N times with C in flight and sends
// the start/end times (CLOCK_MONOTONIC ms) of each spawn to its parent over IPC.
//   node dist-bench/bench/spawner.js <count> <concurrency>
import { spawn } from "node:child_process";
import { mapLimit, monoMs } from "./lib.js";

const [count, concurrency] = process.argv.slice(2).map(Number);

process.once("message", async () => {
  let failed = 0;
  const times = await mapLimit(Array.from({ length: count! }), concurrency!, async () => {
    const t0 = monoMs();
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn("true", [], { stdio: "ignore" });
      child.once("error", reject);
      child.once("exit", resolve);
    });
    if (code !== 0) failed++;
    return [t0, monoMs()] as const;
  });
  process.send?.({ times, failed }, () => process.exit(0));
});
process.send?.("ready");
