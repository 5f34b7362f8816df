// `npm run chaos -- --seed N --minutes M [--sentinel]`: a seeded chaos run. A 3-node fleet of the
// failover harness (network namespaces, HAProxy, Redis or a Sentinel set) runs the workload
// (workload.ts) while the nemesis (nemesis.ts) injects the seed's fault schedule (plan.ts). Then
// the faults end, every node is up again, the jobs settle, and the run directory gets the
// history, the Redis events stream, the final jobs and the ledger; the checker (check.ts) reads
// them and decides. Run as root (network namespaces). See docs/reliability.md.
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { Redis } from "ioredis";
import { fleetKeys } from "../../src/cluster/keys.js";
import { NetnsFleet } from "../failover/harness/fleet.js";
import { TERMINAL } from "../failover/harness/load.js";
import { LOCAL_TIMINGS } from "../failover/harness/setup.js";
import { LocalTarget } from "../failover/harness/target.js";
import { ensureBuilt } from "../topology/ensure-built.js";
import { checkRun, printReport } from "./check.js";
import { History } from "./history.js";
import { Nemesis } from "./nemesis.js";
import { describeFault, FAULT_KINDS, makePlan } from "./plan.js";
import { Workload } from "./workload.js";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const USERS = ["alice", "bob", "carol", "dave"];
const ADMIN = "chaos-admin";

function stamp(): string {
  return new Date().toISOString().replace(/[-:]/g, "").replace(/\..*/, "");
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      seed: { type: "string" },
      minutes: { type: "string", default: "2" },
      sentinel: { type: "boolean", default: false },
      dir: { type: "string" },
      "lost-after": { type: "string", default: "6000" },
      "plan-only": { type: "boolean", default: false },
      "restart-primary": { type: "boolean", default: false },
      results: { type: "string" },
      "gap-ms": { type: "string", default: "1500" },
      verbose: { type: "boolean", default: false },
    },
  });
  const seed = values.seed === undefined ? Math.floor(Math.random() * 1_000_000) : Number(values.seed);
  const minutes = Number(values.minutes);
  const lostAfterMs = Number(values["lost-after"]);
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`--seed must be a non-negative integer`);
  if (!(minutes > 0)) throw new Error(`--minutes must be positive`);
  const sentinel = values.sentinel;
  const durationMs = Math.round(minutes * 60_000);
  const nodes = 3;
  const plan = makePlan({
    seed,
    durationMs,
    nodes,
    lostAfterMs,
    sentinel,
    meanGapMs: Number(values["gap-ms"]),
  });
  const nodeIds = Array.from({ length: nodes }, (_, i) => `node-${i + 1}`);
  const byKind = FAULT_KINDS.map((k) => `${k} ${plan.filter((f) => f.kind === k).length}`).join(", ");
  console.log(
    `chaos: seed ${seed}, ${minutes} min, ${sentinel ? "Sentinel" : "standalone Redis"}, LOST_AFTER ${lostAfterMs} ms`,
  );
  console.log(`chaos: schedule of ${plan.length} faults (${byKind}):`);
  for (const f of plan) console.log(`  ${describeFault(f, nodeIds)}`);
  if (values["plan-only"]) return 0;

  const runDir = resolve(
    values.dir ?? join(tmpdir(), `launcher-chaos-${seed}-${sentinel ? "sentinel-" : ""}${stamp()}`),
  );
  mkdirSync(runDir, { recursive: true });
  // The jobs append to the ledger as whatever user they run as.
  chmodSync(runDir, 0o777);
  const ledger = join(runDir, "ledger");
  writeFileSync(ledger, "", { mode: 0o666 });
  chmodSync(ledger, 0o666);
  const scratch = join(runDir, "fleet");
  console.log(`chaos: run directory ${runDir}`);
  writeFileSync(join(runDir, "schedule.json"), `${JSON.stringify(plan)}\n`);

  const verbose = values.verbose;
  const log = (line: string) => {
    if (verbose) console.log(`[${new Date().toISOString().slice(11, 23)}] ${line}`);
  };
  await ensureBuilt();
  const keyPrefix = "chaos";
  const fleet = await NetnsFleet.start({
    nodes,
    redis: sentinel ? "sentinel" : "standalone",
    dir: scratch,
    env: {
      ...LOCAL_TIMINGS,
      LAUNCHER_LOST_AFTER_MS: String(lostAfterMs),
      LAUNCHER_MAX_RUNNING_JOBS: "4",
      LAUNCHER_KEY_PREFIX: keyPrefix,
      LAUNCHER_EVENT_RETENTION: "5000000",
      LAUNCHER_LOG_LEVEL: process.env.CHAOS_LOG_LEVEL ?? "info",
    },
    log,
  });
  const target = await LocalTarget.create(fleet, ADMIN);
  const history = new History(join(runDir, "history.ndjson"));
  const boundMs = 30_000;
  const workload = new Workload(
    {
      url: fleet.lbUrl,
      secret: fleet.secret,
      adminToken: target.token,
      adminUser: ADMIN,
      users: USERS,
      ledger,
      runTag: `s${seed}`,
      seed,
      boundMs,
      submitGiveUpMs: 120_000,
      submitGapMs: 2_000,
      log,
    },
    history,
  );
  const nemesis = new Nemesis(fleet, target, plan, history, {
    scratch,
    restartPrimary: values["restart-primary"],
    log,
  });
  process.on("exit", () => nemesis.undoAll());
  const started = Date.now();
  const meta: Record<string, unknown> = {
    seed,
    minutes,
    sentinel,
    nodes: nodeIds,
    lostAfterMs,
    restartPrimary: values["restart-primary"],
    boundMs,
    keyPrefix,
    users: USERS,
    admin: ADMIN,
    planned: plan.length,
    started: new Date(started).toISOString(),
  };
  writeFileSync(join(runDir, "meta.json"), `${JSON.stringify(meta, null, 2)}\n`);
  let ok = false;
  try {
    await workload.start();
    nemesis.start();
    const progress = setInterval(() => {
      const done = [...nemesis.counts.values()].reduce((a, b) => a + b, 0);
      console.log(
        `chaos: +${Math.round((Date.now() - started) / 1000)} s: ${done} faults done, ${workload.acked} jobs acknowledged, ${workload.gaveUp} given up`,
      );
    }, 60_000);
    await sleep(durationMs);
    console.log("chaos: the schedule is over; ending faults in progress");
    await nemesis.stop();
    clearInterval(progress);
    await workload.stopLoad();
    // Every node up again (a restart may have failed for good).
    for (let i = 0; i < nodes; i++) {
      if (fleet.nodePid(i) === undefined) await fleet.startNode(i);
    }
    console.log("chaos: waiting for the acknowledged jobs to settle");
    // A client of its own: the target's may have given up during the faults.
    const redis = fleet.redisClient();
    redis.on("error", () => undefined);
    const settled = await settle(redis, keyPrefix, workload, 180_000);
    console.log(`chaos: ${settled.open} jobs not terminal after settling`);
    await sleep(3_000);
    await workload.stopStreams();
    meta.ended = new Date().toISOString();
    meta.faults = Object.fromEntries(nemesis.counts);
    meta.faultErrors = nemesis.errors;
    meta.submissions = workload.submissions;
    meta.acked = workload.acked;
    meta.gaveUp = workload.gaveUp;
    await collect(fleet, redis, keyPrefix, runDir);
    redis.disconnect();
    meta.collected = true;
    ok = true;
  } finally {
    nemesis.undoAll();
    await history.close();
    writeFileSync(join(runDir, "meta.json"), `${JSON.stringify(meta, null, 2)}\n`);
    await target.close().catch(() => undefined);
    await fleet.stop().catch((err) => console.error(`chaos: stopping the fleet: ${(err as Error).message}`));
  }
  if (!ok) return 2;
  const report = checkRun(runDir);
  printReport(report);
  if (values.results) {
    // The shape of vitest's JSON report that .ci/run's summary reads: one test per invariant.
    const violated = report.rows.filter((r) => r.violations > 0);
    const assertionResults = violated.map((r) => ({
      status: "failed",
      fullName: `chaos invariant: ${r.invariant}`,
      failureMessages: [`${r.violations} violations, e.g. ${r.examples[0] ?? "(none kept)"}`],
    }));
    const testResults = [{ name: "chaos", status: violated.length ? "failed" : "passed", assertionResults }];
    writeFileSync(
      values.results,
      `${JSON.stringify({ numPassedTests: report.rows.length - violated.length, numFailedTests: violated.length, testResults })}\n`,
    );
  }
  console.log(`chaos: run directory ${runDir}`);
  return report.violations > 0 ? 1 : 0;
}

/** Waits until every acknowledged job is terminal or live on a node (or the time is up). */
/** Redis calls after the faults: the client may be between servers for a moment; try again. */
async function retry<T>(what: string, fn: () => Promise<T>, tries = 60): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= tries) throw new Error(`${what}: ${(err as Error).message}`);
      await sleep(1_000);
    }
  }
}

function procAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/**
 * Whether a non-terminal job genuinely runs: its owner is up and ready, and its process exists
 * (LocalTarget.jobIsLive's test, on the given client).
 */
async function jobIsLive(fleet: NetnsFleet, h: Record<string, string>): Promise<boolean> {
  const i = fleet.nodeIds.indexOf(h.owner ?? "");
  if (i < 0 || fleet.nodePid(i) === undefined || !(await fleet.nodeReady(i))) return false;
  return h.pid !== undefined && h.pid !== "" && procAlive(Number(h.pid));
}

async function settle(
  r: Redis,
  prefix: string,
  workload: Workload,
  timeoutMs: number,
): Promise<{ open: number }> {
  const keys = fleetKeys(prefix);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ids = await retry("ZRANGE", () => r.zrange(keys.jobsAll, 0, -1));
    const statuses = await retry("HGET", async () => {
      const pipe = r.pipeline();
      for (const id of ids) pipe.hget(keys.job(id), "status");
      return ((await pipe.exec()) ?? []).map(([err, v]) => {
        if (err) throw err;
        return String(v ?? "");
      });
    });
    const open = statuses.filter((s) => !TERMINAL.has(s)).length;
    if (open === 0 || Date.now() > deadline) return { open };
    // A job left Suspended would never end: resume it (as the admin; recorded like any control).
    const suspended = ids.filter((_, i) => statuses[i] === "Suspended");
    await Promise.all(suspended.map((id) => workload.control(ADMIN, id, "resume")));
    await sleep(1_000);
  }
}

/** Saves the Redis events stream and every job's final record in the run directory. */
async function collect(fleet: NetnsFleet, r: Redis, prefix: string, runDir: string): Promise<void> {
  const keys = fleetKeys(prefix);
  const lines: string[] = [];
  let start = "-";
  for (;;) {
    const from = start;
    const batch = (await retry("XRANGE", () => r.xrange(keys.events, from, "+", "COUNT", 5_000))) as [
      string,
      string[],
    ][];
    for (const [id, fields] of batch) {
      const json = fields[fields.indexOf("e") + 1] ?? "{}";
      lines.push(JSON.stringify({ eventId: id, ...(JSON.parse(json) as object) }));
    }
    if (batch.length < 5_000) break;
    start = `(${batch[batch.length - 1]![0]}`;
  }
  writeFileSync(join(runDir, "events.ndjson"), lines.length ? `${lines.join("\n")}\n` : "");
  const ids = await retry("ZRANGE", () => r.zrange(keys.jobsAll, 0, -1));
  const jobs: string[] = [];
  for (let i = 0; i < ids.length; i += 500) {
    const chunk = ids.slice(i, i + 500);
    const rows = await retry("HGETALL", async () => {
      const pipe = r.pipeline();
      for (const id of chunk) pipe.hgetall(keys.job(id));
      const got = (await pipe.exec()) ?? [];
      for (const [err] of got) if (err) throw err;
      return got;
    });
    for (const [k, id] of chunk.entries()) {
      const h = (rows[k]?.[1] ?? {}) as Record<string, string>;
      let name = "";
      try {
        name = String((JSON.parse(h.spec ?? "{}") as { name?: string }).name ?? "");
      } catch {}
      const live = TERMINAL.has(h.status ?? "") ? false : await jobIsLive(fleet, h);
      jobs.push(
        JSON.stringify({
          id,
          name,
          user: h.user,
          status: h.status,
          exitCode: h.exitCode === undefined || h.exitCode === "" ? undefined : Number(h.exitCode),
          statusMessage: h.statusMessage,
          owner: h.owner,
          live,
        }),
      );
    }
  }
  writeFileSync(join(runDir, "jobs.ndjson"), jobs.length ? `${jobs.join("\n")}\n` : "");
}

const user = userInfo().username;
if (user !== "root") console.warn(`chaos: running as ${user}; network namespaces need root`);
main().then(
  (code) => {
    process.exitCode = code;
    // Anything left (sockets of abandoned requests) must not keep the process alive.
    setTimeout(() => process.exit(code), 2_000).unref();
  },
  (err) => {
    console.error(`chaos: ${(err as Error).stack ?? err}`);
    process.exit(2);
  },
);
