// Worker thread of the fan-out measure: generates status changes at a fixed rate, so that driving
// the load does not share an event loop with the client that receives it. Each change carries
// its sequence number and send time (CLOCK_MONOTONIC ms) in its statusMessage.
import { parentPort, workerData } from "node:worker_threads";
import { Redis } from "ioredis";
import { jobStore, keysModule, monoMs, scripts, sleep } from "./lib.js";

export interface WriterData {
  redisUrl: string;
  prefix: string;
  owner: { nodeId: string; epoch: number };
  jobIds: string[];
  rawChannel: string;
  eventRetention: number;
}

export interface PhaseRequest {
  phase: number;
  /** "both": every change is also published raw (the baseline, at the same moments). */
  kind: "store" | "both";
  /** Changes per second; 0 = as fast as possible with `window` in flight. */
  rate: number;
  durationMs: number;
  window: number;
}

export interface PhaseReport {
  phase: number;
  sent: number;
  acked: number;
  errors: number;
  firstError?: string;
  /** Send slots skipped because `window` requests were already in flight (the writer fell behind). */
  behind: number;
  /** From the first send to the last acknowledgement. */
  elapsedMs: number;
}

const data = workerData as WriterData;
const redis = scripts.defineScripts(new Redis(data.redisUrl, { connectionName: "bench-fanout-writer" }));
const pub = new Redis(data.redisUrl, { connectionName: "bench-fanout-raw-publisher" });
const store = new jobStore.JobStore(redis, keysModule.fleetKeys(data.prefix), data.eventRetention);
const toggles = new Map<string, number>();

function send(req: PhaseRequest, seq: number): Promise<unknown> {
  // The raw publish goes first, so if anything it is the one that waits for the other.
  if (req.kind === "both") void pub.publish(data.rawChannel, `${req.phase} ${seq} ${monoMs().toFixed(3)}`);
  const stamp = monoMs().toFixed(3);
  const id = data.jobIds[seq % data.jobIds.length]!;
  const flip = (toggles.get(id) ?? 0) + 1;
  toggles.set(id, flip);
  return store.update(id, data.owner, {
    status: flip % 2 === 0 ? "Running" : "Suspended",
    statusMessage: `b ${req.phase} ${seq} ${stamp}`,
    lastUpdateTime: new Date().toISOString(),
  });
}

async function run(req: PhaseRequest): Promise<PhaseReport> {
  const report: PhaseReport = { phase: req.phase, sent: 0, acked: 0, errors: 0, behind: 0, elapsedMs: 0 };
  let inflight = 0;
  let lastAck = 0;
  const start = monoMs();
  const fire = () => {
    const seq = report.sent++;
    inflight++;
    return send(req, seq)
      .then(
        () => {
          report.acked++;
        },
        (err: Error) => {
          report.errors++;
          report.firstError ??= err.message;
        },
      )
      .finally(() => {
        inflight--;
        lastAck = monoMs();
      });
  };
  if (req.rate === 0) {
    // Closed loop: `window` senders, each sending its next change when the last one is answered.
    await Promise.all(
      Array.from({ length: req.window }, async () => {
        while (monoMs() - start < req.durationMs) await fire();
      }),
    );
  } else {
    // Open loop: send what is due every ~1 ms (no busy loop: the machine has few cores).
    for (;;) {
      const elapsed = monoMs() - start;
      if (elapsed >= req.durationMs) break;
      const due = Math.floor((elapsed * req.rate) / 1000);
      while (report.sent + report.behind < due) {
        if (inflight >= req.window) {
          report.behind++;
          continue;
        }
        void fire();
      }
      await sleep(1);
    }
    while (inflight > 0) await sleep(1);
  }
  report.elapsedMs = lastAck - start;
  return report;
}

parentPort!.on("message", (msg: PhaseRequest | "close") => {
  if (msg === "close") {
    redis.disconnect();
    pub.disconnect();
    parentPort!.close();
    return;
  }
  run(msg).then(
    (r) => parentPort!.postMessage(r),
    (err: Error) => parentPort!.postMessage({ phase: msg.phase, error: err.message }),
  );
});
