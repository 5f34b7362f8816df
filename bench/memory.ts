// 6. Memory: resident memory (VmRSS, and the peak VmHWM, from /proc/<pid>/status) of one
// child-process node as it holds more: N jobs it owns in Redis (created fast through the store's
// own `create_job`/`update_job` scripts with the node's id and epoch, plus some real `true` jobs
// through POST /jobs), served in full by `GET /jobs` and a `GET /jobs/*/status` snapshot; then
// R running `sleep` jobs; then S open status streams; then K `*` status streams whose clients stop
// reading, filled with status events until the node ends each at its budget
// (LAUNCHER_STREAM_BUFFER_BYTES): the peak it took to hold them, against what they held unread.
// DESIGN: a node tracking 10,000 jobs stays under 150 MB resident.
import { randomBytes } from "node:crypto";
import { setMaxListeners } from "node:events";
import { writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import {
  type Ctx,
  fmtMB,
  fmtMs,
  fmtNum,
  Http,
  jobStore,
  keysModule,
  killJobs,
  mapLimit,
  now,
  procMemory,
  Stack,
  scripts,
  sleep,
  startFleet,
  submit,
  until,
  verdict,
} from "./lib.js";

const MEASURE = "memory";
const PREFIX = "mem";
/** The node's LAUNCHER_STREAM_BUFFER_BYTES (its default): what a stream may hold unread. */
const STREAM_BUDGET = 4 * 1024 * 1024;

export async function memory(ctx: Ctx): Promise<void> {
  const stack = new Stack(MEASURE);
  try {
    const nJobs = ctx.full ? 10_000 : 2_000;
    const nReal = ctx.full ? 300 : 50;
    const nRunning = ctx.full ? 200 : 30;
    const nStreams = ctx.full ? 1_000 : 300;
    const nSlow = 8;
    // Its own node (a fresh process, so its peak RSS is its own), on the shared Redis.
    const { redis } = await ctx.shared();
    const fleet = await startFleet(stack, ctx, {
      nodes: 1,
      haproxy: false,
      redisUrl: redis.url,
      prefix: PREFIX,
    });
    const node = fleet.nodes[0]!;
    const pid = node.pid!;
    const token = await fleet.adminToken("2h");
    const http = new Http(node.url, token, stack, 4);
    const mem = () => procMemory(pid);

    await sleep(1_000);
    const idle = mem();
    ctx.log(`  idle node: VmRSS ${fmtMB(idle.rssKB)} (peak so far ${fmtMB(idle.hwmKB)})`);

    // N jobs owned by the node, through the real scripts with its id and current epoch.
    const keys = keysModule.fleetKeys(PREFIX);
    const conn = scripts.defineScripts(await redis.connect("bench-mem-store"));
    const store = new jobStore.JobStore(conn, keys, 100_000);
    const epoch = Number(await conn.hget(keys.node(node.id), "epoch"));
    const owner = { nodeId: node.id, epoch };
    const t0 = now();
    const base = Date.now() - 3_600_000;
    await mapLimit(Array.from({ length: nJobs }), 200, async (_, i) => {
      const submitted = new Date(base + i * 10).toISOString();
      const id = `${Math.floor(base + i * 10)
        .toString(36)
        .padStart(9, "0")}-${randomBytes(5).toString("hex")}`;
      await store.create(
        {
          id,
          name: `bench-memory-${i}`,
          user: "bench",
          command: "true",
          args: [],
          environment: [],
          tags: ["bench", `batch-${i % 10}`],
          cluster: "Local",
          host: node.id,
          stdoutFile: `/tmp/bench-memory/${id}.stdout`,
          stderrFile: `/tmp/bench-memory/${id}.stderr`,
          status: "Pending",
          submissionTime: submitted,
          lastUpdateTime: submitted,
        } as Parameters<typeof store.create>[0],
        owner,
        [],
      );
      await store.update(id, owner, { status: "Running", pid: 1 });
      await store.update(id, owner, {
        status: "Finished",
        exitCode: 0,
        lastUpdateTime: new Date().toISOString(),
      });
    });
    ctx.log(`  ${fmtNum(nJobs)} jobs created through the store in ${fmtMs(now() - t0, 0)}`);
    await sleep(1_500);
    const created = mem();
    ctx.log(
      `  ${fmtNum(nJobs)} jobs in Redis, not yet served: VmRSS ${fmtMB(created.rssKB)}, peak ${fmtMB(created.hwmKB)}`,
    );
    // And some real ones through the API.
    const real = await mapLimit(Array.from({ length: nReal }), 8, () =>
      submit(http, { command: "true", name: "bench-memory-real" }),
    );
    await until(
      "the real jobs to finish",
      async () =>
        (await http.json<{ jobs: unknown[] }>("GET", "/jobs?statuses=Pending,Running&fields=id")).body.jobs
          .length === 0,
      60_000,
      200,
    );
    const total = nJobs + real.length;

    // Serve all of them: GET /jobs three times, and one status-stream snapshot.
    let listMs = 0;
    for (let i = 0; i < 3; i++) {
      const t = now();
      const res = await http.json<{ jobs: unknown[] }>("GET", "/jobs");
      listMs = now() - t;
      if (res.body.jobs.length !== total)
        throw new Error(`GET /jobs returned ${res.body.jobs.length} jobs, expected ${total}`);
    }
    const snapAbort = new AbortController();
    let snapshotCount = 0;
    const snap = await http.stream("/jobs/*/status", () => void snapshotCount++, snapAbort.signal);
    await until("the status snapshot", () => snapshotCount >= total, 60_000, 20);
    snapAbort.abort();
    await snap.done;
    await sleep(500);
    const withJobs = mem();
    ctx.log(
      `  ${fmtNum(total)} jobs (last GET /jobs ${fmtMs(listMs, 0)}): VmRSS ${fmtMB(withJobs.rssKB)}, peak ${fmtMB(withJobs.hwmKB)}`,
    );

    // R running jobs.
    const running = await mapLimit(Array.from({ length: nRunning }), 8, () =>
      submit(http, { command: "sleep", args: ["120"], name: "bench-memory-running" }),
    );
    const runningIds = running.map((j) => j.id);
    stack.defer("kill the running jobs", () => killJobs(http, runningIds));
    await until(
      "the sleeps to run",
      async () =>
        (await http.json<{ jobs: unknown[] }>("GET", "/jobs?statuses=Running&fields=id")).body.jobs.length ===
        nRunning,
      60_000,
      200,
    );
    await sleep(500);
    const withRunning = mem();
    ctx.log(
      `  + ${nRunning} running jobs: VmRSS ${fmtMB(withRunning.rssKB)}, peak ${fmtMB(withRunning.hwmKB)}`,
    );

    // S open status streams, spread over the running jobs (one-job streams stay open while the job runs).
    const streamPool = new Http(node.url, token, stack, nStreams);
    const streamsAbort = new AbortController();
    setMaxListeners(nStreams + 10, streamsAbort.signal);
    stack.defer("close the status streams", () => streamsAbort.abort());
    let firstLines = 0;
    const opened = await mapLimit(Array.from({ length: nStreams }), 50, async (_, i) => {
      let seen = false;
      return streamPool.stream(
        `/jobs/${runningIds[i % runningIds.length]}/status`,
        () => {
          if (!seen) firstLines++;
          seen = true;
        },
        streamsAbort.signal,
      );
    });
    await until("every stream's first message", () => firstLines >= nStreams, 60_000, 50);
    await sleep(1_000);
    const withStreams = mem();
    const perStreamKB = (withStreams.rssKB - withRunning.rssKB) / nStreams;
    ctx.log(
      `  + ${nStreams} open status streams: VmRSS ${fmtMB(withStreams.rssKB)}, peak ${fmtMB(withStreams.hwmKB)} (${perStreamKB.toFixed(1)} kB/stream)`,
    );
    streamsAbort.abort();
    await Promise.allSettled(opened.map((o) => o.done));
    const slow = await slowReaders({
      http,
      pid,
      url: node.url,
      token,
      store,
      owner,
      jobIds: runningIds,
      count: nSlow,
    });
    ctx.log(
      `  + ${nSlow} status streams whose clients stopped reading, each ended at its ${fmtMB(STREAM_BUDGET / 1024)} budget after ${fmtNum(slow.events)} events: peak +${fmtMB(slow.peakKB)} over ${fmtMB(slow.beforeKB)}`,
    );
    await killJobs(http, runningIds);

    const show = (m: { rssKB: number; hwmKB: number; anonKB: number }) =>
      `${fmtMB(m.rssKB)} (peak ${fmtMB(m.hwmKB)}, private ${fmtMB(m.anonKB)})`;
    ctx.row({ measure: MEASURE, metric: "idle node: RSS", value: show(idle) });
    ctx.row({
      measure: MEASURE,
      metric: `${fmtNum(nJobs)} jobs owned, before serving them`,
      value: show(created),
    });
    ctx.row({
      measure: MEASURE,
      metric: `${fmtNum(total)} jobs owned, listed 3x + snapshot`,
      value: show(withJobs),
      baseline: `idle ${fmtMB(idle.rssKB)}`,
      ...(nJobs >= 10_000
        ? { target: "< 150 MB at 10,000 jobs", verdict: verdict(withJobs.hwmKB < 150 * 1024) }
        : { target: "< 150 MB at 10,000 (quick: 2,000)" }),
    });
    ctx.row({
      measure: MEASURE,
      metric: `+ ${nRunning} running sleep jobs`,
      value: show(withRunning),
    });
    ctx.row({
      measure: MEASURE,
      metric: `+ ${fmtNum(nStreams)} open status streams`,
      value: show(withStreams),
      baseline: `${perStreamKB.toFixed(1)} kB/stream`,
    });
    const held = (nSlow * STREAM_BUDGET) / 1024;
    ctx.row({
      measure: MEASURE,
      metric: `${nSlow} status streams whose clients stopped reading, each until the node ended it`,
      value: `peak RSS +${fmtMB(slow.peakKB)}`,
      baseline: `${nSlow} × ${fmtMB(STREAM_BUDGET / 1024)} budget = ${fmtMB(held)} unread`,
      ratio: `${(slow.peakKB / held).toFixed(2)}x the unread bytes`,
    });
  } finally {
    await stack.close();
  }
}

/** A status stream of every job whose client never reads (the kernel's buffers fill, then the node's). */
function pausedStream(url: string, token: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) }, () => {
      socket.pause();
      socket.write(`GET /jobs/*/status HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer ${token}\r\n\r\n`);
      resolve(socket);
    });
    socket.once("error", reject);
  });
}

async function openStatusStreams(http: Http): Promise<number> {
  const text = await http.text("/metrics");
  return Number(/^launcher_open_streams\{kind="status"\} (\d+)/m.exec(text)?.[1] ?? Number.NaN);
}

/**
 * `count` streams that stop reading, then status events of a usual size (a running job's
 * statusMessage changed) until the node has ended them all: what that cost at the peak.
 */
async function slowReaders(o: {
  http: Http;
  pid: number;
  url: string;
  token: string;
  store: InstanceType<typeof jobStore.JobStore>;
  owner: { nodeId: string; epoch: number };
  jobIds: string[];
  count: number;
}): Promise<{ peakKB: number; beforeKB: number; events: number }> {
  await sleep(500);
  writeFileSync(`/proc/${o.pid}/clear_refs`, "5"); // the peak (VmHWM) restarts from now
  const before = procMemory(o.pid);
  const sockets = await Promise.all(Array.from({ length: o.count }, () => pausedStream(o.url, o.token)));
  try {
    await until(
      "the paused streams to open",
      async () => (await openStatusStreams(o.http)) === o.count,
      30_000,
      50,
    );
    let events = 0;
    while ((await openStatusStreams(o.http)) > 0) {
      if (events > 400_000) throw new Error("the node never ended the paused streams");
      await mapLimit(Array.from({ length: 500 }), 16, async () => {
        const n = events++;
        await o.store.update(o.jobIds[n % o.jobIds.length]!, o.owner, { statusMessage: `slow reader ${n}` });
      });
    }
    const peak = procMemory(o.pid);
    return { peakKB: peak.hwmKB - before.rssKB, beforeKB: before.rssKB, events };
  } finally {
    for (const socket of sockets) socket.destroy();
  }
}
