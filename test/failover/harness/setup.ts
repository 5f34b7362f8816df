// The fixture both failover test files share: start the target (local fleet or compose), the load
// and the streams before the scenarios; print the table and stop everything after them.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, expect } from "vitest";
import { ensureBuilt } from "../../topology/ensure-built.js";
import { NetnsFleet } from "./fleet.js";
import { FailoverRun, type Figures, formatTable, MUST_BE_ZERO } from "./suite.js";
import { ComposeTarget, composeSettings, composeUnavailable, LocalTarget, type Target } from "./target.js";

export type TargetKind = "local" | "compose";

/** FAILOVER_TARGET: `local` (default; real processes on this machine) or `compose`. */
export function targetKind(): TargetKind {
  const kind = process.env.FAILOVER_TARGET ?? "local";
  if (kind !== "local" && kind !== "compose") {
    throw new Error(`FAILOVER_TARGET must be "local" or "compose", not "${kind}"`);
  }
  return kind;
}

/**
 * The node settings of the local fleet: short timings keep the whole suite within minutes.
 * LOST_AFTER must exceed a node's restart (SIGTERM, drain, exit, boot, register) or a rolling
 * restart fails its jobs; a node boots in 1.5-2 s of CPU, which on a busy 2-core machine is 5-8 s,
 * so the default is 15 s (FAILOVER_LOST_AFTER_MS=5000 on a quiet machine).
 */
export const LOCAL_TIMINGS = {
  LAUNCHER_HEARTBEAT_MS: "200",
  LAUNCHER_OFFLINE_AFTER_MS: "1000",
  LAUNCHER_LOST_AFTER_MS: process.env.FAILOVER_LOST_AFTER_MS ?? "15000",
  LAUNCHER_DRAIN_MS: "1000",
} as const;

/**
 * LAUNCHER_MAX_RUNNING_JOBS of every local node: few slots, so the fleet queue is in play in every
 * scenario, and the queue scenarios (harness/queue-scenarios.ts) can fill the fleet with a handful
 * of jobs. 2 per node leaves the steady load (about one `sleep 0.3` job at a time) and the rolling
 * restart's six `sleep 8` jobs room enough.
 */
export const LOCAL_SLOTS = Number(process.env.FAILOVER_SLOTS ?? 2);

/** LAUNCHER_LOST_AFTER_MS of the target (compose: ops/fleet.env, or FAILOVER_LOST_AFTER_MS). */
export function lostAfterMs(kind: TargetKind): number {
  if (kind === "local") return Number(LOCAL_TIMINGS.LAUNCHER_LOST_AFTER_MS);
  return Number(process.env.FAILOVER_LOST_AFTER_MS ?? 30_000);
}

/**
 * Why the compose target must be skipped (never a pass: the tests are reported as skipped), or
 * undefined. `needSentinel`: the deployment must be docker-compose.sentinel.yml.
 */
export function composeSkipReason(kind: TargetKind, needSentinel: boolean): string | undefined {
  if (kind !== "compose") return undefined;
  const settings = composeSettings();
  const why = composeUnavailable(settings);
  if (why) return why;
  if (needSentinel && !/sentinel/.test(settings.file)) {
    return `the Sentinel scenario needs FAILOVER_COMPOSE_FILE=docker-compose.sentinel.yml (deployed), not ${settings.file}`;
  }
  return undefined;
}

export interface FailoverSuite {
  readonly run: FailoverRun;
  readonly target: Target;
}

/** Registers the hooks of a failover test file; call inside its describe(). */
export function useFailoverSuite(
  title: string,
  kind: TargetKind,
  redis: "standalone" | "sentinel",
): FailoverSuite {
  let run: FailoverRun | undefined;
  let target: Target | undefined;
  let fleet: NetnsFleet | undefined;
  let scratch: string | undefined;
  let failed = false;
  const log = (line: string) => {
    if (process.env.FAILOVER_VERBOSE) console.log(`[failover] ${line}`);
  };

  beforeAll(async () => {
    const user = userInfo().username;
    if (kind === "local") {
      await ensureBuilt();
      scratch = mkdtempSync(join(tmpdir(), "launcher-failover-"));
      fleet = await NetnsFleet.start({
        nodes: 3,
        redis,
        dir: scratch,
        env: {
          ...LOCAL_TIMINGS,
          LAUNCHER_MAX_RUNNING_JOBS: String(LOCAL_SLOTS),
          LAUNCHER_KEY_PREFIX: "failover",
          LAUNCHER_LOG_LEVEL: process.env.FAILOVER_LOG_LEVEL ?? "info",
        },
        log,
      });
      target = await LocalTarget.create(fleet, user);
    } else {
      target = await ComposeTarget.create(composeSettings(), user);
    }
    run = new FailoverRun(target, {
      rate: 20,
      command: "sleep 0.3",
      streams: 3,
      streamIdleMs: 3_000,
      settleMs: 20_000,
      log,
    });
    await run.start();
  }, 240_000);

  afterEach(({ task }) => {
    if (task.result?.state === "fail") failed = true;
  });

  afterAll(async () => {
    try {
      await run?.stop();
      if (run) {
        const failing = run.results.some((f) => MUST_BE_ZERO.some((k) => f[k] !== 0));
        failed ||= failing;
        const extra = [
          `streams: ${run.streams.map((s) => `${s.events.length} events, ${s.breaks.length} reconnects`).join("; ")}`,
          `load: ${run.load.requests} requests, ${run.load.skipped} skipped (too many in flight), ${run.load.acked.size} jobs acknowledged`,
          ...(run.lb.failures > 0 ? [`HAProxy stats polls failed ${run.lb.failures} times`] : []),
        ];
        console.log(`${formatTable(run.results, `${title} (${kind} target)`)}${extra.join("\n")}\n`);
      }
    } finally {
      await target?.close().catch(() => undefined);
      await fleet?.stop();
      if (scratch && (failed || process.env.FAILOVER_KEEP))
        console.log(`failover: logs and data kept in ${scratch}`);
      else if (scratch) rmSync(scratch, { recursive: true, force: true });
    }
  }, 120_000);

  return {
    get run() {
      if (!run) throw new Error("the failover run did not start");
      return run;
    },
    get target() {
      if (!target) throw new Error("the failover target did not start");
      return target;
    },
  };
}

/** Fails the test when a figure that must be 0 is not, naming what was found. */
export function expectNoLoss(f: Figures, except: readonly (typeof MUST_BE_ZERO)[number][] = []): void {
  const checked = MUST_BE_ZERO.filter((k) => !except.includes(k));
  const actual = Object.fromEntries(checked.map((k) => [k, f[k]]));
  const zeros = Object.fromEntries(checked.map((k) => [k, 0]));
  expect(actual, `${f.scenario}:\n${f.details.join("\n")}`).toEqual(zeros);
}

export { setTimeout as sleep } from "node:timers/promises";

/**
 * The servers' ACL LOG (ops/redis-acl.sh): after every scenario, Redis must have refused nothing to
 * the nodes (their user), the replica (`replication`) or the sentinels (`sentinel`). Skipped where
 * the target's servers cannot be asked (compose).
 */
export async function expectNoAclRefusals(
  suite: FailoverSuite,
  skip: (note?: string) => void,
): Promise<void> {
  const refusals = await suite.target.aclRefusals?.();
  if (refusals === undefined) return skip("the compose target's ACL LOG is not read");
  expect(refusals, "Redis ACL LOG").toEqual([]);
}
