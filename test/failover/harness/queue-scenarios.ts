// The fleet queue under failure (issue 13), for the failover suite's local target: jobs queued
// fleet-wide while a node is SIGKILLed (failover.test.ts), or while the Sentinel primary is switched
// over (sentinel.test.ts). Every job of a scenario appends `start <tag>` to a ledger file on a path
// all nodes share, then blocks until the test releases it (a file per tag, or one for all), so the
// test decides which slots are busy and when they free; the ledger tells whether a job ran, and how
// often. The figures: `queueLost` counts jobs that did not end in the one terminal status expected of
// them (a queued or never-started job must end Finished; one Running on the killed node Failed, with
// the lost-node message), `ranTwice` jobs with more than one `start` line.
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fleetKeys, type Keys } from "../../../src/cluster/keys.js";
import { waitFor } from "../../../src/topology/readiness.js";
import { TERMINAL } from "./load.js";
import { type FailoverSuite, lostAfterMs } from "./setup.js";
import type { ScenarioContext } from "./suite.js";
import { LocalTarget } from "./target.js";

/** A ledger of job starts and the release files the scenario's jobs wait for. */
export class Ledger {
  readonly dir = mkdtempSync(join(tmpdir(), "failover-ledger-"));
  private readonly file = join(this.dir, "ledger");

  constructor() {
    // The jobs run as the job's user, not necessarily this process's.
    chmodSync(this.dir, 0o777);
  }

  /** The job's shell script: record the start, wait to be released, record the end. */
  command(tag: string): string {
    const d = this.dir;
    return [
      `echo start ${tag} >> ${this.file}`,
      `while [ ! -e ${d}/go ] && [ ! -e ${d}/go-${tag} ]; do sleep 0.2; done`,
      `echo end ${tag} >> ${this.file}`,
    ].join("; ");
  }

  release(tag: string): void {
    writeFileSync(join(this.dir, `go-${tag}`), "");
  }

  releaseAll(): void {
    writeFileSync(join(this.dir, "go"), "");
  }

  /** `start` lines per tag. */
  starts(): Map<string, number> {
    let text = "";
    try {
      text = readFileSync(this.file, "utf8");
    } catch {}
    const counts = new Map<string, number>();
    for (const line of text.split("\n")) {
      const m = /^start (\S+)$/.exec(line);
      if (m) counts.set(m[1]!, (counts.get(m[1]!) ?? 0) + 1);
    }
    return counts;
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

interface Tracked {
  tag: string;
  id: string;
  /** Submitted through HAProxy, or straight to a node. */
  via: "lb" | string;
}

/** A job of the scenario as Redis has it now. */
interface JobState extends Tracked {
  status: string;
  /** The node it is placed on; "" while it waits in the fleet queue. */
  owner: string;
  exitCode?: number;
  statusMessage: string;
  started: number;
}

/** What the API shows of a job (GET /jobs?fields=…). */
interface ApiJob {
  id: string;
  status: string;
  host?: string;
  exitCode?: number;
  statusMessage?: string;
}

const isQueued = (s: JobState) => s.status === "Pending" && s.owner === "";
const live = (s: JobState) => !TERMINAL.has(s.status);

/** The jobs of one scenario: submission, their state in Redis and through the API. */
class ScenarioJobs {
  readonly jobs: Tracked[] = [];
  readonly keys: Keys;
  private n = 0;

  constructor(
    private readonly suite: FailoverSuite,
    private readonly target: LocalTarget,
    readonly ledger: Ledger,
    private readonly name: string,
  ) {
    this.keys = fleetKeys(target.keyPrefix);
  }

  private next(): { tag: string; job: Record<string, unknown> } {
    const tag = `j${++this.n}`;
    return { tag, job: { command: this.ledger.command(tag), name: this.name } };
  }

  /** Through HAProxy (retried like every submission of the suite). */
  async viaLb(): Promise<Tracked> {
    const { tag, job } = this.next();
    const t = { tag, id: await this.suite.run.submit(job), via: "lb" };
    this.jobs.push(t);
    return t;
  }

  /** Straight to node i, bypassing HAProxy (which may still route to a frozen node); acknowledged
   * jobs join the load's, so the run's own checks (lost, wrong state, events) cover them too. */
  async direct(i: number): Promise<Tracked> {
    const { tag, job } = this.next();
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await fetch(`${this.target.fleet.nodeUrl(i)}/jobs`, {
          method: "POST",
          headers: { authorization: `Bearer ${this.target.token}`, "content-type": "application/json" },
          body: JSON.stringify(job),
          signal: AbortSignal.timeout(5_000),
        });
        const body = (await res.json().catch(() => ({}))) as { id?: string };
        if (res.status === 201 && body.id) {
          this.suite.run.load.acked.set(body.id, { id: body.id, at: Date.now(), long: true });
          const t = { tag, id: body.id, via: this.target.servers[i]! };
          this.jobs.push(t);
          return t;
        }
        if (attempt >= 5) throw new Error(`POST /jobs to ${this.target.servers[i]}: ${res.status}`);
      } catch (err) {
        if (attempt >= 5) throw err;
      }
      await sleep(100);
    }
  }

  /** The state of every job of the scenario, from Redis (retried while the client follows a switch). */
  async states(): Promise<JobState[]> {
    const starts = this.ledger.starts();
    const rows = await retry(async () => {
      const p = this.target.redis.pipeline();
      for (const j of this.jobs) p.hmget(this.keys.job(j.id), "status", "owner", "exitCode", "statusMessage");
      const out = await p.exec();
      if (!out) throw new Error("pipeline aborted");
      return out.map(([err, v]) => {
        if (err) throw err;
        return v as (string | null)[];
      });
    });
    return this.jobs.map((j, i) => {
      const [status, owner, exitCode, statusMessage] = rows[i]!;
      return {
        ...j,
        status: status ?? "(missing)",
        owner: owner ?? "",
        ...(exitCode ? { exitCode: Number(exitCode) } : {}),
        statusMessage: statusMessage ?? "",
        started: starts.get(j.tag) ?? 0,
      };
    });
  }

  /** Unfinished jobs placed on a node (its slots in use), from Redis. */
  used(nodeId: string): Promise<number> {
    return retry(() => this.target.redis.scard(this.keys.nodeJobs(nodeId)));
  }

  /** Jobs waiting in the fleet queue, of any class (the steady load's too). */
  depth(): Promise<number> {
    return retry(async () => {
      const classes = await this.target.redis.hkeys(this.keys.queueClasses);
      if (classes.length === 0) return 0;
      const p = this.target.redis.pipeline();
      for (const c of classes) p.zcard(this.keys.queueClass(c));
      return ((await p.exec()) ?? []).reduce((n, [, v]) => n + Number(v ?? 0), 0);
    });
  }

  /** The scenario's jobs through the API (HAProxy), retried while a node or Redis is away. */
  async api(): Promise<Map<string, ApiJob>> {
    const path = "/jobs?fields=id,status,host,exitCode,statusMessage";
    return retry(async () => {
      const res = await fetch(new URL(path, this.target.lbUrl), {
        headers: { authorization: `Bearer ${this.target.token}` },
        signal: AbortSignal.timeout(5_000),
      });
      if (res.status !== 200) throw new Error(`GET /jobs: ${res.status}`);
      const all = ((await res.json()) as { jobs: ApiJob[] }).jobs;
      const ids = new Set(this.jobs.map((j) => j.id));
      return new Map(all.filter((j) => ids.has(j.id)).map((j) => [j.id, j]));
    });
  }

  /** Submits `fill` jobs (the fleet's slots) and `queued` more through HAProxy; resolves once every
   * slot runs one of them and the rest wait in the fleet queue. Returns contract problems seen. */
  async fillAndQueue(fill: number, queued: number, problems: string[]): Promise<void> {
    for (let i = 0; i < fill + queued; i++) await this.viaLb();
    let last: JobState[] = [];
    await waitFor(
      `${fill} jobs of the scenario Running and ${queued} queued`,
      async () => {
        last = await this.states();
        return (
          last.filter((s) => s.status === "Running").length === fill &&
          last.filter(isQueued).length === queued
        );
      },
      { timeoutMs: 30_000 },
    ).catch((err: Error) => {
      throw new Error(`${err.message}; states: ${describeStates(last)}`);
    });
    // The contract: a queued job shows Pending, no host, and a statusMessage "Queued: …".
    const api = await this.api();
    for (const s of last.filter(isQueued)) {
      const j = api.get(s.id);
      if (j?.status !== "Pending" || j.host || !j.statusMessage?.startsWith("Queued: "))
        problems.push(`queued job ${s.id} through the API: ${JSON.stringify(j ?? null)}`);
    }
  }

  /**
   * Distinct terminal events per job over all the run's status streams (one stream may miss what
   * another got; the run's own check counts that), after giving them time to arrive.
   */
  async terminalEvents(): Promise<Map<string, number>> {
    const count = () => {
      const seen = new Map<string, Set<string>>();
      for (const s of this.suite.run.streams)
        for (const e of s.events) {
          if (!TERMINAL.has(e.status)) continue;
          const ids = seen.get(e.id) ?? new Set<string>();
          ids.add(e.eventId);
          seen.set(e.id, ids);
        }
      return new Map(this.jobs.map((j) => [j.id, seen.get(j.id)?.size ?? 0]));
    };
    await waitFor(
      "the streams to see every job of the scenario end",
      async () => [...count().values()].every((n) => n > 0),
      { timeoutMs: 10_000 },
    ).catch(() => undefined);
    return count();
  }
}

/** E.g. `2 Running@node-1, 3 Pending (queued), 1 Pending@node-2 (j7 0mx…)`: placed, not started, named. */
function describeStates(states: JobState[]): string {
  const by = new Map<string, JobState[]>();
  for (const s of states) {
    const k = `${s.status}${s.owner ? `@${s.owner}` : isQueued(s) ? " (queued)" : ""}`;
    by.set(k, [...(by.get(k) ?? []), s]);
  }
  return [...by]
    .map(([k, xs]) => {
      const named = xs[0]!.status === "Pending" && xs[0]!.owner !== "";
      const which = xs.map((x) => `${x.tag} ${x.id}`).join(", ");
      return `${xs.length} ${k}${named ? ` (placed there, not started: ${which})` : ""}`;
    })
    .join(", ");
}

async function retry<T>(read: () => Promise<T>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await read();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(250);
    }
  }
}

function localTarget(suite: FailoverSuite): LocalTarget {
  const t = suite.target;
  if (!(t instanceof LocalTarget)) throw new Error("the queue scenarios need the local target");
  return t;
}

/** The slots of every node (GET /nodes through HAProxy); each must be limited. */
async function nodeSlots(target: LocalTarget): Promise<Map<string, number>> {
  const res = await retry(async () => {
    const r = await fetch(new URL("/nodes", target.lbUrl), {
      headers: { authorization: `Bearer ${target.token}` },
      signal: AbortSignal.timeout(5_000),
    });
    if (r.status !== 200) throw new Error(`GET /nodes: ${r.status}`);
    return (await r.json()) as { nodes: { id: string; slots?: number }[] };
  });
  const slots = new Map(res.nodes.map((n) => [n.id, n.slots ?? 0]));
  for (const id of target.servers) {
    const n = slots.get(id);
    if (!n) throw new Error(`GET /nodes shows ${id} with slots ${n} (the scenario needs limited slots)`);
  }
  return slots;
}

/** The outcome of a queue scenario besides its figures: contract mismatches, for the test to assert. */
export interface QueueOutcome {
  problems: string[];
}

/**
 * The verdict on every job: the expected end (Finished exit 0, or Failed as lost for those in
 * `failedAsLost`), exactly one terminal event, exactly one start. Sets the figures, notes each
 * deviation, and returns the counts.
 */
async function verdict(
  ctx: ScenarioContext,
  jobs: ScenarioJobs,
  lostNode: string | undefined,
  failedAsLost: Set<string>,
): Promise<{ lost: number; twice: number; finished: number; failedLost: number }> {
  const rows = new Map(
    (
      await ctx.waitTerminal(
        jobs.jobs.map((j) => j.id),
        90_000,
      )
    ).map((r) => [r.id, r]),
  );
  const events = await jobs.terminalEvents();
  const starts = jobs.ledger.starts();
  let lost = 0;
  let twice = 0;
  let finished = 0;
  let failedLost = 0;
  for (const j of jobs.jobs) {
    const r = rows.get(j.id);
    const n = starts.get(j.tag) ?? 0;
    const what = `job ${j.id} (${j.tag}, via ${j.via})`;
    if (failedAsLost.has(j.id)) {
      const ok = r?.status === "Failed" && new RegExp(`${lostNode}.*lost`, "i").test(r.statusMessage ?? "");
      if (ok) failedLost++;
      else {
        lost++;
        ctx.note(`${what} was Running on ${lostNode}: ended ${r?.status} "${r?.statusMessage ?? ""}"`);
      }
    } else if (r?.status === "Finished" && r.exitCode === 0 && n > 0) {
      finished++;
    } else {
      lost++;
      ctx.note(`${what} ended ${r?.status} (exit ${r?.exitCode}) "${r?.statusMessage ?? ""}", ${n} starts`);
    }
    if (n > 1) {
      twice++;
      ctx.note(`${what} started ${n} times`);
    }
    const e = events.get(j.id) ?? 0;
    if (e > 1) {
      lost++;
      ctx.note(`${what}: ${e} terminal status events`);
    } else if (e === 0) ctx.note(`${what}: no stream saw its terminal status`);
  }
  ctx.set("queueLost", lost);
  ctx.set("ranTwice", twice);
  return { lost, twice, finished, failedLost };
}

/**
 * SIGKILL node `d` while jobs are queued fleet-wide and one job is placed on it but not started.
 *  1. More jobs than slots through HAProxy: every slot runs one, the rest queue.
 *  2. Released one by one on node d, its jobs make way for the queued ones, until the queue is
 *     empty and node d runs one job of the scenario with a slot free.
 *  3. The steady load's submissions pause (its reads go on) until the queue is empty, and node d
 *     is frozen (SIGSTOP) while that slot is free; still Online for OFFLINE_AFTER, it is the only
 *     node with room: the next job submitted (straight to a peer) is placed on it and never
 *     started, the ones after it queue. Then node d is SIGKILLed and the load's submissions resume.
 *  4. All jobs are released; the queue drains on the survivors; once node d is lost, its Running
 *     job is Failed and the unstarted one goes back to the queue and runs elsewhere; node d restarts.
 */
export async function killNodeWhileQueued(
  suite: FailoverSuite,
  ctx: ScenarioContext,
  d: number,
): Promise<QueueOutcome> {
  const target = localTarget(suite);
  const fleet = target.fleet;
  const doomed = target.servers[d]!;
  const peer = (d + 1) % target.servers.length;
  const slots = await nodeSlots(target);
  const total = [...slots.values()].reduce((a, b) => a + b, 0);
  const doomedSlots = slots.get(doomed)!;
  const ledger = new Ledger();
  const jobs = new ScenarioJobs(suite, target, ledger, "failover-queue-kill");
  const problems: string[] = [];
  let frozen = false;
  let killed = false;
  let ok = false;
  try {
    // 1. More jobs than slots, through HAProxy.
    const queuedViaLb = Math.max(3, Math.ceil(total / 2));
    await jobs.fillAndQueue(total, queuedViaLb, problems);

    // 2. Drain the queue through node d until it runs exactly one of ours and has a slot free.
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (Date.now() > deadline)
        throw new Error(`could not bring ${doomed} to one job: ${describeStates(await jobs.states())}`);
      const st = await jobs.states();
      const queued = st.filter(isQueued).length;
      const onD = st.filter((s) => s.owner === doomed && live(s));
      const running = onD.filter((s) => s.status === "Running" && s.started > 0);
      if (queued === 0 && onD.length === 1 && running.length === 1) break;
      if (running.length > 0 && (onD.length >= 2 || (queued > 0 && onD.length >= doomedSlots))) {
        const r = running[0]!;
        ledger.release(r.tag);
        await waitFor(
          `${r.id} to end`,
          async () => TERMINAL.has((await jobs.states()).find((s) => s.id === r.id)!.status),
          {
            timeoutMs: 15_000,
          },
        );
      } else if (queued === 0 && onD.length === 0) {
        await jobs.viaLb();
      }
      await sleep(50);
    }

    // 3. Freeze node d while its slot is free and nothing waits in the fleet queue (a job queued
    // then would go before ours), and place one job on it through a peer; the jobs after it find
    // no room anywhere and queue. That one free slot is all the steady load's jobs have (about as
    // many a second as it can run), so the load's submissions pause until the kill.
    const pid = fleet.nodePid(d);
    if (pid === undefined) throw new Error(`${doomed} is not running`);
    suite.run.load.submissionsPaused = true;
    const ready = async () => (await jobs.used(doomed)) < doomedSlots && (await jobs.depth()) === 0;
    for (let attempt = 1; ; attempt++) {
      await waitFor(`a free slot on ${doomed} and an empty queue`, ready, { timeoutMs: 30_000 });
      process.kill(pid, "SIGSTOP");
      frozen = true;
      if ((await ready()) || attempt >= 10) break;
      // A job came first (one of the load's, submitted before the pause): thaw, and try again.
      process.kill(pid, "SIGCONT");
      frozen = false;
      await sleep(1_500);
    }
    ctx.hit(d);
    const placed = await jobs.direct(peer);
    const behind = 3;
    for (let i = 0; i < behind; i++) await jobs.direct(peer);
    await target.killNode(d);
    frozen = false;
    killed = true;
    suite.run.load.submissionsPaused = false;

    // What the fleet holds at the kill.
    const atKill = await jobs.states();
    const queuedAtKill = atKill.filter(isQueued);
    const runningOnD = atKill.filter((s) => s.owner === doomed && live(s) && s.started > 0);
    const unstartedOnD = atKill.filter((s) => s.owner === doomed && live(s) && s.started === 0);
    if (!unstartedOnD.some((s) => s.id === placed.id)) {
      const p = atKill.find((s) => s.id === placed.id)!;
      ctx.note(
        `the job sent to ${target.servers[peer]} after freezing ${doomed} was not placed on it ` +
          `(${p.status}${p.owner ? ` on ${p.owner}` : ", queued"}): the requeue path was not exercised`,
      );
    }
    const api = await jobs.api();
    for (const s of queuedAtKill) {
      const j = api.get(s.id);
      if (j?.status !== "Pending" || j.host)
        problems.push(`job ${s.id}, queued at the kill, through the API: ${JSON.stringify(j ?? null)}`);
    }

    // 4. Release everything; wait for node d to be settled lost, then restart it.
    ledger.releaseAll();
    const settled = new Set([...runningOnD, ...unstartedOnD].map((s) => s.id));
    await waitFor(
      `${doomed} to be settled lost (its jobs Failed or requeued)`,
      async () => (await jobs.states()).every((s) => !settled.has(s.id) || s.owner !== doomed || !live(s)),
      { timeoutMs: lostAfterMs("local") + 30_000 },
    ).catch((err: Error) => problems.push(err.message));
    const afterLost = await jobs.states();
    for (const s of afterLost.filter((x) => unstartedOnD.some((u) => u.id === x.id)))
      if (s.status === "Failed")
        ctx.note(`job ${s.id}, placed on ${doomed} and never started, was Failed: "${s.statusMessage}"`);
    await target.startNode(d);
    killed = false;

    const v = await verdict(ctx, jobs, doomed, new Set(runningOnD.map((s) => s.id)));
    const requeued = unstartedOnD.filter((u) => {
      const s = afterLost.find((x) => x.id === u.id);
      return s && s.status !== "Failed";
    }).length;
    ctx.note(
      `${jobs.jobs.length} jobs (${jobs.jobs.filter((j) => j.via === "lb").length} through HAProxy, ` +
        `${queuedViaLb} of them queued; ${1 + behind} straight to ${target.servers[peer]}); at the kill: ` +
        `${queuedAtKill.length} queued, on ${doomed} ${runningOnD.length} Running and ` +
        `${unstartedOnD.length} placed never started; requeued ${requeued}; Failed as lost ` +
        `${v.failedLost}; Finished ${v.finished}; lost ${v.lost}; ran twice ${v.twice}`,
    );
    ok = true;
  } finally {
    suite.run.load.submissionsPaused = false;
    ledger.releaseAll();
    const pid = fleet.nodePid(d);
    if (frozen && pid !== undefined) process.kill(pid, "SIGCONT");
    if (killed) await target.startNode(d).catch(() => undefined);
    if (ok && !process.env.FAILOVER_KEEP) ledger.remove();
    else ctx.note(`ledger kept in ${ledger.dir}`);
  }
  return { problems };
}

/**
 * Switch the Sentinel primary over (writes paused, SENTINEL FAILOVER) while jobs are queued
 * fleet-wide: the queue survives (the same jobs still queued on the new primary), then drains, each
 * job Finished once.
 */
export async function sentinelFailoverWhileQueued(
  suite: FailoverSuite,
  ctx: ScenarioContext,
): Promise<QueueOutcome> {
  const target = localTarget(suite);
  const slots = await nodeSlots(target);
  const total = [...slots.values()].reduce((a, b) => a + b, 0);
  const ledger = new Ledger();
  const jobs = new ScenarioJobs(suite, target, ledger, "failover-queue-sentinel");
  const problems: string[] = [];
  let ok = false;
  try {
    const queued = Math.max(3, Math.ceil(total / 2));
    await jobs.fillAndQueue(total, queued, problems);
    const before = new Set((await jobs.states()).filter(isQueued).map((s) => s.id));
    await target.failoverRedis("manual");
    // The same jobs still wait, as the API shows them once the nodes follow the switch.
    const api = await jobs.api();
    const still = [...before].filter((id) => {
      const j = api.get(id);
      return j?.status === "Pending" && !j.host;
    });
    if (still.length !== before.size)
      problems.push(
        `after the switch ${still.length} of ${before.size} queued jobs still queued: ` +
          [...before].map((id) => JSON.stringify(api.get(id) ?? id)).join(", "),
      );
    ledger.releaseAll();
    const v = await verdict(ctx, jobs, undefined, new Set());
    ctx.note(
      `${jobs.jobs.length} jobs through HAProxy, ${before.size} queued at the switch, ` +
        `${still.length} still queued after it; Finished ${v.finished}; lost ${v.lost}; ran twice ${v.twice}`,
    );
    ok = true;
  } finally {
    ledger.releaseAll();
    if (ok && !process.env.FAILOVER_KEEP) ledger.remove();
    else ctx.note(`ledger kept in ${ledger.dir}`);
  }
  return { problems };
}
