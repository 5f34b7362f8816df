// The chaos checker: reads a run directory (history.ndjson, events.ndjson from the Redis events
// stream, jobs.ndjson with every job's final record, the ledger, meta.json) and checks the
// invariants. Each row of the table says how many things were checked and how many broke the
// invariant; any violation fails the run. Counts of documented behaviours (jobs Failed with their
// lost node, jobs lost with their supervisor daemon) are reported, not failed.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type JobStatus, TERMINAL_STATUSES, TRANSITIONS } from "../../src/api/status.js";
import { compareEventIds } from "../../src/cluster/event-id.js";
import type {
  AckRecord,
  CloseRecord,
  EventRecord,
  FaultRecord,
  GaveUpRecord,
  HistoryRecord,
  OpenRecord,
  OutputRecord,
  ReqRecord,
  ResRecord,
} from "./history.js";
import { CHATTY_LINES } from "./workload.js";

const TERMINAL: ReadonlySet<string> = new Set(TERMINAL_STATUSES);

interface RedisEvent {
  eventId: string;
  id: string;
  status: string;
  user?: string;
  statusMessage?: string;
  statusCode?: string;
}

interface FinalJob {
  id: string;
  name: string;
  user?: string;
  status?: string;
  exitCode?: number;
  statusMessage?: string;
  owner?: string;
  live: boolean;
}

export interface Row {
  invariant: string;
  checked: number;
  violations: number;
  /** Up to a few examples of what broke it. */
  examples: string[];
}

export interface Report {
  runDir: string;
  meta: Record<string, unknown>;
  rows: Row[];
  violations: number;
  figures: Record<string, number | string>;
  notes: string[];
}

function readNdjson<T>(file: string): T[] {
  if (!existsSync(file)) return [];
  const out: T[] = [];
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as T);
    } catch {
      // a torn last line (the run was killed): ignore it
    }
  }
  return out;
}

class RowBuilder {
  readonly row: Row;
  constructor(invariant: string) {
    this.row = { invariant, checked: 0, violations: 0, examples: [] };
  }
  check(ok: boolean, example: () => string): void {
    this.row.checked++;
    if (!ok) this.fail(example());
  }
  fail(example: string): void {
    this.row.violations++;
    if (this.row.examples.length < 5) this.row.examples.push(example);
  }
}

/** The tag of a chaos job from its name (`chaos <tag>`). */
function tagOf(name: string): string | undefined {
  const m = /^chaos (\S+)$/.exec(name);
  return m?.[1];
}

export function checkRun(runDir: string): Report {
  const meta = existsSync(join(runDir, "meta.json"))
    ? (JSON.parse(readFileSync(join(runDir, "meta.json"), "utf8")) as Record<string, unknown>)
    : {};
  const notes: string[] = [];
  const history = readNdjson<HistoryRecord>(join(runDir, "history.ndjson"));
  const events = readNdjson<RedisEvent>(join(runDir, "events.ndjson"));
  const jobs = readNdjson<FinalJob>(join(runDir, "jobs.ndjson"));
  if (!meta.collected) notes.push("the run did not finish collecting: events and jobs may be missing");
  const ledgerText = existsSync(join(runDir, "ledger")) ? readFileSync(join(runDir, "ledger"), "utf8") : "";
  const runs = new Map<string, number>();
  for (const line of ledgerText.split("\n")) {
    const m = /^run (\S+)$/.exec(line.trim());
    if (m) runs.set(m[1]!, (runs.get(m[1]!) ?? 0) + 1);
  }

  const byType = <K extends HistoryRecord["type"]>(type: K) =>
    history.filter((r) => r.type === type) as Extract<HistoryRecord, { type: K }>[];
  const reqs = byType("req") as ReqRecord[];
  const ress = byType("res") as ResRecord[];
  const acks = byType("ack") as AckRecord[];
  const gaveUps = byType("gaveup") as GaveUpRecord[];
  const opens = byType("open") as OpenRecord[];
  const evs = byType("ev") as EventRecord[];
  const closes = byType("close") as CloseRecord[];
  const outputs = byType("output") as OutputRecord[];
  const faults = byType("fault") as FaultRecord[];

  const jobById = new Map(jobs.map((j) => [j.id, j]));
  const eventsByJob = new Map<string, RedisEvent[]>();
  for (const e of events) {
    const list = eventsByJob.get(e.id) ?? [];
    list.push(e);
    eventsByJob.set(e.id, list);
  }
  const statusesOf = (id: string) => (eventsByJob.get(id) ?? []).map((e) => e.status);
  const ackByJob = new Map<string, AckRecord>();
  const ackByTag = new Map<string, AckRecord[]>();
  for (const a of acks) {
    ackByJob.set(a.job, a);
    const l = ackByTag.get(a.tag) ?? [];
    l.push(a);
    ackByTag.set(a.tag, l);
  }
  const jobsByTag = new Map<string, FinalJob[]>();
  for (const j of jobs) {
    const tag = tagOf(j.name);
    if (!tag) continue;
    const l = jobsByTag.get(tag) ?? [];
    l.push(j);
    jobsByTag.set(tag, l);
  }
  const rows: Row[] = [];

  // 1. Every acknowledged submission exists and ends in one terminal status, or runs on a live node.
  const exists = new RowBuilder("acknowledged job exists");
  const ends = new RowBuilder("acknowledged job terminal, or running on a live node");
  // Still waiting in the fleet queue when the run was collected (the settling time ran out): not lost,
  // not done either; a figure. One placed on a node and still Pending has not started there: a violation.
  let pendingQueued = 0;
  let pendingPlaced = 0;
  for (const a of acks) {
    const j = jobById.get(a.job);
    exists.check(
      j !== undefined && eventsByJob.has(a.job),
      () => `${a.job} (${a.tag}) acknowledged, not found`,
    );
    if (!j) continue;
    if (j.status === "Pending" && !j.owner) {
      pendingQueued++;
      continue;
    }
    if (j.status === "Pending") pendingPlaced++;
    ends.check(
      TERMINAL.has(j.status ?? "") || j.live,
      () => `${a.job} (${a.tag}) ${j.status} on ${j.owner || "no node"}, not live`,
    );
  }
  rows.push(exists.row, ends.row);

  // 2. Statuses follow the Launcher's transitions; nothing leaves a terminal status; one terminal.
  const trans = new RowBuilder("statuses follow TRANSITIONS, nothing leaves a terminal status");
  const oneTerminal = new RowBuilder("exactly one terminal status per ended job");
  for (const [id, list] of eventsByJob) {
    let prev: string | undefined;
    let bad: string | undefined;
    for (const e of list) {
      if (prev === undefined) {
        if (e.status !== "Pending") bad = `first status ${e.status}`;
      } else if (TERMINAL.has(prev)) {
        bad = `${prev} -> ${e.status} (left a terminal status) at ${e.eventId}`;
      } else if (prev !== e.status && !TRANSITIONS[prev as JobStatus]?.includes(e.status as JobStatus)) {
        bad = `${prev} -> ${e.status} at ${e.eventId}`;
      }
      if (bad) break;
      prev = e.status;
    }
    trans.check(bad === undefined, () => `${id}: ${bad}`);
    const terminals = list.filter((e) => TERMINAL.has(e.status));
    const final = jobById.get(id);
    if (terminals.length > 0 || TERMINAL.has(final?.status ?? "")) {
      oneTerminal.check(
        terminals.length === 1 && final?.status === terminals[0]!.status,
        () =>
          `${id}: terminal events [${terminals.map((e) => e.status).join(", ")}], final record ${final?.status}`,
      );
    }
  }
  rows.push(trans.row, oneTerminal.row);

  // 3. One job per Idempotency-Key (tag), and every acknowledgement of a tag names that job.
  const perKey = new RowBuilder("one job per Idempotency-Key, repeats answer that job");
  const tags = new Set([...ackByTag.keys(), ...gaveUps.map((g) => g.tag), ...jobsByTag.keys()]);
  for (const tag of tags) {
    const made = jobsByTag.get(tag) ?? [];
    const ids = new Set((ackByTag.get(tag) ?? []).map((a) => a.job));
    perKey.check(
      made.length <= 1 && ids.size <= 1 && (ids.size === 0 || made[0]?.id === [...ids][0]),
      () => `${tag}: jobs [${made.map((j) => j.id).join(", ")}], acknowledged [${[...ids].join(", ")}]`,
    );
  }
  const submitRids = new Map(reqs.filter((r) => r.op === "submit").map((r) => [r.rid, r]));
  for (const r of ress) {
    const q = submitRids.get(r.rid);
    if (q && r.status === 409) perKey.fail(`${q.tag}: attempt ${q.attempt} answered 409 for its own key`);
  }
  rows.push(perKey.row);

  // 4. No job runs twice; no job canceled while Pending, or that failed to launch, ever ran.
  const once = new RowBuilder("no job runs twice (ledger)");
  for (const [tag, n] of runs) once.check(n <= 1, () => `${tag} ran ${n} times`);
  rows.push(once.row);
  const neverRan = new RowBuilder("canceled while Pending / failed to launch: never ran");
  let failedPendingByLoss = 0;
  let failedPendingByLossRan = 0;
  for (const j of jobs) {
    const tag = tagOf(j.name);
    if (!tag) continue;
    const statuses = statusesOf(j.id);
    const everRunning = statuses.some((s) => s === "Running" || s === "Suspended");
    const ran = (runs.get(tag) ?? 0) > 0;
    if (j.status === "Canceled") {
      neverRan.check(!ran, () => `${j.id} (${tag}) Canceled, but its command ran`);
    } else if (j.status === "Failed" && !everRunning) {
      const msg = j.statusMessage ?? "";
      // A node lost with a job it had just started (still Pending) fails it without knowing.
      if (/was lost|supervisor/i.test(msg)) {
        failedPendingByLoss++;
        if (ran) failedPendingByLossRan++;
      } else neverRan.check(!ran, () => `${j.id} (${tag}) failed to launch (${msg}), but its command ran`);
    }
    const kind = ackByJob.get(j.id)?.kind;
    if (kind === "launch-fail") neverRan.check(!ran, () => `${j.id} (${tag}) cannot launch, but ran`);
  }
  rows.push(neverRan.row);

  // 5. Resumed streams: every event after `since`, no gap, no duplicate (against XRANGE).
  const streamRow = new RowBuilder("streams resumed with since=: no gap, no duplicate");
  const freshRow = new RowBuilder("fresh streams after their snapshot: no gap, no duplicate");
  const known = new Set(events.map((e) => e.eventId));
  const admin = String(meta.admin ?? "chaos-admin");
  const eventsByUser = new Map<string, RedisEvent[]>();
  for (const e of events) {
    const l = eventsByUser.get(e.user ?? "") ?? [];
    l.push(e);
    eventsByUser.set(e.user ?? "", l);
  }
  /** The index of the first event after `id` in a list in stream order. */
  const firstAfter = (list: RedisEvent[], id: string): number => {
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compareEventIds(list[mid]!.eventId, id) > 0) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };
  const evsByConn = new Map<string, EventRecord[]>();
  for (const e of evs) {
    const k = `${e.stream}#${e.conn}`;
    const l = evsByConn.get(k) ?? [];
    l.push(e);
    evsByConn.set(k, l);
  }
  const closeByConn = new Map(closes.map((c) => [`${c.stream}#${c.conn}`, c]));
  let resyncs = 0;
  let eventsMissed = 0;
  let eventsDup = 0;
  let streamEventsChecked = 0;
  for (const o of opens) {
    const k = `${o.stream}#${o.conn}`;
    const got = evsByConn.get(k) ?? [];
    const close = closeByConn.get(k);
    if (close?.resync) {
      resyncs++;
      streamRow.fail(`${k}: {"resync":true} after since=${o.since ?? "-"}`);
      continue;
    }
    let after = o.since;
    const live = got.filter((e) => !e.snap);
    if (after === undefined) {
      const snap = got.find((e) => e.snap);
      if (!snap) continue;
      after = snap.eventId;
    }
    if (live.length === 0 && o.since === undefined) continue;
    const pool =
      o.scope !== "*"
        ? (eventsByJob.get(o.scope) ?? [])
        : o.user === admin
          ? events
          : (eventsByUser.get(o.user) ?? []);
    const expected = pool.slice(firstAfter(pool, after));
    // After a snapshot, a job's events up to the state the snapshot showed are not sent again (the
    // snapshot's position is a lower bound: the jobs were read after it). Those may be skipped,
    // only before the job's first live event, and only up to the snapshot's status.
    const snapStatus = new Map(got.filter((e) => e.snap).map((e) => [e.job, e.status]));
    const synced = new Set<string>();
    const skipped = new Map<string, RedisEvent>();
    let problem: string | undefined;
    let idx = 0;
    for (const e of expected) {
      if (idx >= live.length) break;
      const g = live[idx]!;
      if (g.eventId === e.eventId) {
        idx++;
        synced.add(e.id);
        streamEventsChecked++;
        continue;
      }
      if (snapStatus.has(e.id) && !synced.has(e.id)) {
        skipped.set(e.id, e);
        continue;
      }
      if (!known.has(g.eventId)) {
        problem = `event ${g.eventId} (${g.job} ${g.status}) is not in the Redis stream`;
      } else if (compareEventIds(g.eventId, e.eventId) > 0) {
        const missed = expected.filter(
          (x) =>
            compareEventIds(x.eventId, e.eventId) >= 0 &&
            compareEventIds(x.eventId, g.eventId) < 0 &&
            !(snapStatus.has(x.id) && !synced.has(x.id)),
        ).length;
        eventsMissed += missed;
        problem = `missed ${missed} event(s) from ${e.eventId} (${e.id} ${e.status}) before ${g.eventId}`;
      } else {
        eventsDup++;
        problem = `event ${g.eventId} (${g.job} ${g.status}) out of order or twice (expected ${e.eventId})`;
      }
      break;
    }
    if (!problem && idx < live.length) {
      const g = live[idx]!;
      eventsDup++;
      problem = `event ${g.eventId} (${g.job} ${g.status}) out of order, twice, or out of scope`;
    }
    for (const [job, e] of skipped) {
      if (problem) break;
      if (snapStatus.get(job) !== e.status)
        problem = `skipped ${e.eventId} (${job} ${e.status}) after a snapshot that showed ${snapStatus.get(job)}`;
    }
    const row = o.since === undefined ? freshRow : streamRow;
    row.check(problem === undefined, () => `${k} (${o.user} ${o.scope}, since ${after}): ${problem}`);
  }
  rows.push(streamRow.row, freshRow.row);

  // 6. Controls answered 200 are reflected in the job's statuses.
  const ctl = new RowBuilder("control answered 200 is reflected in the statuses");
  // The first answer of a request is its answer (a stream that breaks later is not a late answer).
  const resByRid = new Map<number, ResRecord>();
  for (const r of ress) if (!resByRid.has(r.rid)) resByRid.set(r.rid, r);
  const controlCounts = new Map<string, number>();
  for (const q of reqs) {
    if (q.op !== "control") continue;
    const r = resByRid.get(q.rid);
    const key = `${q.operation} ${r?.status ?? r?.error ?? "no answer"}`;
    controlCounts.set(key, (controlCounts.get(key) ?? 0) + 1);
    if (r?.status !== 200 || !q.job) continue;
    const statuses = statusesOf(q.job);
    const final = jobById.get(q.job)?.status ?? "";
    let ok: boolean;
    switch (q.operation) {
      case "suspend":
        ok = statuses.includes("Suspended");
        break;
      case "resume":
        ok = statuses.some((s, i) => s === "Running" && statuses.slice(0, i).includes("Suspended"));
        break;
      case "kill":
        ok = final === "Killed";
        break;
      case "cancel":
        ok = final === "Canceled";
        break;
      default:
        ok = TERMINAL.has(final);
    }
    ctl.check(ok, () => `${q.operation} of ${q.job} answered 200; statuses [${statuses.join(", ")}]`);
  }
  rows.push(ctl.row);

  // 7. Every request answered within its bound.
  const bound = new RowBuilder("every request answered within its bound (no hang)");
  let longest = 0;
  let longestWhat = "";
  const errorsByKind = new Map<string, number>();
  for (const q of reqs) {
    const r = resByRid.get(q.rid);
    if (!r) {
      // A stream still waiting for its headers when the run stopped it is not a hang.
      bound.fail(`${q.method} ${q.path} (${q.op}) at ${new Date(q.t).toISOString()}: no answer`);
      continue;
    }
    if (r.error === "stopped" || r.error === "dropped" || r.error === "idle") {
      bound.check(true, () => "");
      continue;
    }
    const hung = r.error === "timeout" || r.ms > q.boundMs;
    bound.check(
      !hung,
      () =>
        `${q.method} ${q.path} (${q.op}) at ${new Date(q.t).toISOString()}: ${r.error ?? r.status} after ${r.ms} ms`,
    );
    if (r.ms > longest) {
      longest = r.ms;
      longestWhat = `${q.method} ${q.path} at ${new Date(q.t).toISOString()}`;
    }
    const k = r.error ? `${q.op}: ${r.error}` : r.status! >= 500 ? `${q.op}: ${r.status}` : "";
    if (k) errorsByKind.set(k, (errorsByKind.get(k) ?? 0) + 1);
  }
  rows.push(bound.row);

  // 8. A chatty job that Finished with exit 0, whose output stream ended complete, got every line.
  const out = new RowBuilder("complete output of a finished chatty job has every line");
  const want = Array.from({ length: CHATTY_LINES }, (_, i) => `line ${i + 1}`).join("\n");
  for (const o of outputs) {
    const j = jobById.get(o.job);
    if (!o.complete || j?.status !== "Finished" || j.exitCode !== 0) continue;
    out.check(o.stdout.trimEnd() === want, () => `${o.job}: ${o.stdout.split("\n").length - 1} lines`);
  }
  rows.push(out.row);

  // Documented behaviours: counted, not failed.
  const ackJobs = acks.map((a) => jobById.get(a.job)).filter((j): j is FinalJob => j !== undefined);
  const lostWithNode = ackJobs.filter(
    (j) => j.status === "Failed" && /Node \S+ was lost/.test(j.statusMessage ?? ""),
  ).length;
  const supervisorFailed = ackJobs.filter(
    (j) => j.status === "Failed" && /supervisor/i.test(j.statusMessage ?? ""),
  ).length;
  const supervisor137 = ackJobs.filter(
    (j) => j.status === "Finished" && j.exitCode === 137 && !j.statusMessage,
  ).length;
  const finalStatuses = new Map<string, number>();
  for (const j of ackJobs) finalStatuses.set(j.status ?? "?", (finalStatuses.get(j.status ?? "?") ?? 0) + 1);
  const faultsByKind = new Map<string, number>();
  for (const f of faults) {
    if (f.phase === "end") faultsByKind.set(f.kind, (faultsByKind.get(f.kind) ?? 0) + 1);
  }
  const faultErrors = faults.filter((f) => f.phase === "error");
  const violations = rows.reduce((s, r) => s + r.violations, 0);
  const figures: Record<string, number | string> = {
    seed: String(meta.seed ?? "?"),
    "requests sent": reqs.length,
    "submissions (distinct keys)": new Set(reqs.filter((r) => r.op === "submit").map((r) => r.tag)).size,
    "submission attempts": submitRids.size,
    "acknowledged submissions": new Set(acks.map((a) => a.tag)).size,
    "acknowledged by a repeat (200)": acks.filter((a) => a.status === 200).length,
    "submissions given up": gaveUps.length,
    "acknowledged, still Pending at the end: queued / placed": `${pendingQueued} / ${pendingPlaced}`,
    "jobs run (ledger)": runs.size,
    "status events (Redis)": events.length,
    "stream events received": evs.length,
    "stream events checked after since/snapshot": streamEventsChecked,
    "stream connections": opens.length,
    "stream connections resumed with since=": opens.filter((o) => o.since !== undefined).length,
    "faults done": [...faultsByKind.values()].reduce((a, b) => a + b, 0),
    "faults that failed to inject": faultErrors.length,
    "longest answer (ms)": longest,
    "Failed: node lost (documented)": lostWithNode,
    "Failed: supervisor daemon died": supervisorFailed,
    "Finished 137, no message (old supervisor behaviour)": supervisor137,
    "Pending -> Failed by loss (ran / total)": `${failedPendingByLossRan} / ${failedPendingByLoss}`,
    resyncs,
    "events missed": eventsMissed,
    "events twice or out of order": eventsDup,
  };
  for (const k of [...faultsByKind.keys()].sort()) figures[`fault ${k}`] = faultsByKind.get(k)!;
  for (const k of [...finalStatuses.keys()].sort()) figures[`final ${k}`] = finalStatuses.get(k)!;
  for (const k of [...controlCounts.keys()].sort()) figures[`control ${k}`] = controlCounts.get(k)!;
  for (const k of [...errorsByKind.keys()].sort()) figures[`error ${k}`] = errorsByKind.get(k)!;
  if (longestWhat) notes.push(`longest answer: ${longest} ms, ${longestWhat}`);
  for (const f of faultErrors.slice(0, 10)) notes.push(`fault #${f.n} ${f.kind} failed: ${f.note}`);
  const report: Report = { runDir, meta, rows, violations, figures, notes };
  writeFileSync(join(runDir, "check.json"), `${JSON.stringify(report, null, 2)}\n`);
  return report;
}

export function printReport(r: Report): void {
  const w = Math.max(...r.rows.map((x) => x.invariant.length));
  const lines = [
    `chaos check of ${r.runDir}`,
    `${"invariant".padEnd(w)}  ${"checked".padStart(8)}  ${"violations".padStart(10)}`,
    ...r.rows.map(
      (x) =>
        `${x.invariant.padEnd(w)}  ${String(x.checked).padStart(8)}  ${String(x.violations).padStart(10)}`,
    ),
  ];
  for (const x of r.rows) for (const e of x.examples) lines.push(`  ! ${x.invariant}: ${e}`);
  lines.push("", "figures:");
  const fw = Math.max(...Object.keys(r.figures).map((k) => k.length));
  for (const [k, v] of Object.entries(r.figures)) lines.push(`  ${k.padEnd(fw)}  ${v}`);
  for (const n of r.notes) lines.push(`note: ${n}`);
  lines.push(
    r.violations === 0 ? "chaos check: 0 violations" : `chaos check: ${r.violations} VIOLATIONS (see above)`,
  );
  console.log(lines.join("\n"));
}
