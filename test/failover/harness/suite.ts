// Runs failure scenarios one after another against a target under steady client load, and turns
// what the clients saw into the figures of the failover report.

import { setTimeout as sleep } from "node:timers/promises";
import { compareEventIds } from "../../../src/cluster/event-id.js";
import { waitFor } from "../../../src/topology/readiness.js";
import { LbWatch } from "./lb-watch.js";
import { LoadGenerator, StatusStreamClient, TERMINAL } from "./load.js";
import type { Target } from "./target.js";

export interface Figures {
  scenario: string;
  requests: number;
  errors: number;
  /** First and last failed request, ms after the failure was injected. */
  firstErrorMs?: number;
  lastErrorMs?: number;
  maxLatencyMs: number;
  /** Time from the failure hitting a node until HAProxy marked it DOWN (the slowest, if several). */
  lbOutMs?: number;
  /** Time from the start of the scenario until HAProxy routed to every node that should be up again. */
  lbBackMs?: number;
  streamBreaks: number;
  /** Must be 0: acknowledged (201) submissions that no longer exist. */
  ackedLost: number;
  /** Must be 0: status events a resumed stream missed / received more than once. */
  eventsLost: number;
  eventsDup: number;
  /** Must be 0: acknowledged jobs neither terminal nor genuinely running on a live node once settled. */
  wrongState: number;
  /** Must be 0: `sleep 8` jobs started before a rolling restart that did not end Finished, exit 0. */
  rollingKilled: number;
  /**
   * Must be 0 (the queue scenarios, harness/queue-scenarios.ts): their jobs that did not end in the
   * one terminal status expected of them (a queued or never-started job Failed, stuck or gone).
   */
  queueLost: number;
  /** Must be 0 (the queue scenarios): their jobs that started more than once (ledger lines). */
  ranTwice: number;
  errorKinds: string;
  details: string[];
}

export const MUST_BE_ZERO = [
  "ackedLost",
  "eventsLost",
  "eventsDup",
  "wrongState",
  "rollingKilled",
  "queueLost",
  "ranTwice",
] as const;

/** The figures a scenario reports itself (the others are measured by the run). */
export type ScenarioFigure = "rollingKilled" | "queueLost" | "ranTwice";

export interface ScenarioContext {
  /** The failure hits node i now: HAProxy's reaction is measured from here. */
  hit(i: number): void;
  note(text: string): void;
  set(figure: ScenarioFigure, value: number): void;
  /** Submits a job through the load balancer outside the steady mix (acknowledged ones are checked too). */
  submit(job: Record<string, unknown>): Promise<string>;
  /** Waits until HAProxy marks node i DOWN. */
  waitDown(i: number, timeoutMs: number): Promise<void>;
  /** Waits until HAProxy routes to node i again. */
  waitRouted(i: number, timeoutMs: number): Promise<void>;
  /** Waits until these jobs are terminal; returns their final rows. */
  waitTerminal(ids: string[], timeoutMs: number): Promise<JobRow[]>;
}

export interface ScenarioOptions {
  /** Nodes that must be routed again before the scenario settles (default: all). */
  up?: number[];
}

export interface RunOptions {
  rate: number;
  command: string;
  streams: number;
  /** A stream silent this long is considered dead and resumed (the load makes events every second). */
  streamIdleMs: number;
  /** Allowed time for acknowledged short jobs to end once a scenario is over. */
  settleMs: number;
  log?: (line: string) => void;
}

export interface JobRow {
  id: string;
  status: string;
  exitCode?: number;
  statusMessage?: string;
}

export class FailoverRun {
  readonly results: Figures[] = [];
  readonly load: LoadGenerator;
  readonly lb: LbWatch;
  readonly streams: StatusStreamClient[] = [];
  private streamsStartedAt = 0;
  /** Problems already counted (each is reported once, by the scenario that found it). */
  private readonly reported = new Set<string>();

  constructor(
    readonly target: Target,
    private readonly opts: RunOptions,
  ) {
    this.load = new LoadGenerator({
      url: target.lbUrl,
      token: target.token,
      rate: opts.rate,
      command: opts.command,
      timeoutMs: 10_000,
      maxInFlight: 60,
    });
    this.lb = new LbWatch(target.statsUrl);
  }

  private get log(): (line: string) => void {
    return this.opts.log ?? (() => {});
  }

  /** A first job (so the streams' snapshots are not empty), then the watchers, the streams and the load. */
  async start(): Promise<void> {
    this.lb.start();
    await waitFor("HAProxy to route to every node", async () => this.lb.allUp(this.target.servers), {
      timeoutMs: 30_000,
    });
    const seed = await this.submit({ command: "true", name: "failover-seed" });
    await this.waitTerminal([seed], 30_000);
    for (let i = 0; i < this.opts.streams; i++) {
      const s = new StatusStreamClient(this.target.lbUrl, this.target.token, this.opts.streamIdleMs);
      await s.start();
      this.streams.push(s);
    }
    this.streamsStartedAt = Date.now();
    this.load.start();
  }

  async stop(): Promise<void> {
    await this.load.stop();
    await Promise.all(this.streams.map((s) => s.stop()));
    await this.lb.stop();
  }

  async submit(job: Record<string, unknown>): Promise<string> {
    for (let attempt = 0; ; attempt++) {
      const id = await this.load.submit(job, true).catch(() => undefined);
      if (id) return id;
      if (attempt >= 20) throw new Error(`could not submit ${JSON.stringify(job)}`);
      await sleep(250);
    }
  }

  private async request(path: string): Promise<{ status: number; body: unknown }> {
    const res = await fetch(new URL(path, this.target.lbUrl), {
      headers: { authorization: `Bearer ${this.target.token}` },
      signal: AbortSignal.timeout(10_000),
    });
    return { status: res.status, body: await res.json().catch(() => undefined) };
  }

  /** Every job of the fleet (its status fields), read through the load balancer. */
  async listJobs(): Promise<Map<string, JobRow>> {
    for (let attempt = 0; ; attempt++) {
      try {
        const r = await this.request("/jobs?fields=id,status,exitCode,statusMessage");
        if (r.status === 200) return new Map((r.body as { jobs: JobRow[] }).jobs.map((j) => [j.id, j]));
      } catch {}
      if (attempt >= 40) throw new Error("GET /jobs kept failing");
      await sleep(250);
    }
  }

  async waitTerminal(ids: string[], timeoutMs: number): Promise<JobRow[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const rows = await this.listJobs();
      const out = ids.map((id) => rows.get(id) ?? { id, status: "(missing)" });
      if (out.every((r) => TERMINAL.has(r.status)) || Date.now() > deadline) return out;
      await sleep(500);
    }
  }

  /** Runs one scenario and its checks; the figures are also kept for the report. */
  async scenario(
    name: string,
    action: (ctx: ScenarioContext) => Promise<void>,
    options: ScenarioOptions = {},
  ): Promise<Figures> {
    const t0 = Date.now();
    const hits: [number, number][] = [];
    const details: string[] = [];
    const set: Partial<Figures> = {};
    this.log(`--- ${name}`);
    await action({
      hit: (i) => hits.push([i, Date.now()]),
      note: (text) => details.push(text),
      set: (figure, value) => {
        set[figure] = value;
      },
      submit: (job) => this.submit(job),
      waitTerminal: (ids, timeoutMs) => this.waitTerminal(ids, timeoutMs),
      waitDown: (i, timeoutMs) =>
        waitFor(
          `HAProxy to mark ${this.target.servers[i]} DOWN`,
          async () => this.lb.downAt(this.target.servers[i]!, t0) !== undefined,
          { timeoutMs },
        ),
      waitRouted: (i, timeoutMs) =>
        waitFor(
          `HAProxy to route to ${this.target.servers[i]}`,
          async () => this.lb.allUp([this.target.servers[i]!]),
          {
            timeoutMs,
          },
        ),
    });

    // Settle: every node that should be up is routed again, then acknowledged jobs end.
    const up = (options.up ?? this.target.servers.map((_, i) => i)).map((i) => this.target.servers[i]!);
    try {
      await waitFor(`HAProxy to route to ${up.join(", ")}`, async () => this.lb.allUp(up), {
        timeoutMs: 60_000,
      });
    } catch (err) {
      details.push((err as Error).message);
    }
    const lbBack = Math.max(...up.map((s) => this.lb.upAt(s, t0) ?? Number.POSITIVE_INFINITY));
    const anyChange = this.lb.changes.some((c) => c.t >= t0 && up.includes(c.server));
    await sleep(1_000);
    const checks = await this.check(details);
    const t1 = Date.now();

    const inWindow = <T extends { t: number }>(xs: T[]) => xs.filter((x) => x.t >= t0 && x.t <= t1);
    const errors = inWindow(this.load.errors);
    const kinds = new Map<string, number>();
    for (const e of errors) kinds.set(`${e.op} ${e.what}`, (kinds.get(`${e.op} ${e.what}`) ?? 0) + 1);
    const outs = hits.map(([i, t]) => {
      const down = this.lb.downAt(this.target.servers[i]!, t);
      return down === undefined ? Number.POSITIVE_INFINITY : down - t;
    });
    const figures: Figures = {
      scenario: name,
      requests: this.load.latencies.filter(([t]) => t >= t0 && t <= t1).length + errors.length,
      errors: errors.length,
      ...(errors.length > 0
        ? {
            firstErrorMs: Math.min(...errors.map((e) => e.t)) - t0,
            lastErrorMs: Math.max(...errors.map((e) => e.t)) - t0,
          }
        : {}),
      maxLatencyMs: Math.max(
        0,
        ...this.load.latencies.filter(([t]) => t >= t0 && t <= t1).map(([, ms]) => ms),
      ),
      ...(outs.length > 0 && outs.every(Number.isFinite) ? { lbOutMs: Math.max(...outs) } : {}),
      ...(anyChange && Number.isFinite(lbBack) ? { lbBackMs: lbBack - t0 } : {}),
      streamBreaks: this.streams.reduce((n, s) => n + inWindow(s.breaks).length, 0),
      ...checks,
      rollingKilled: set.rollingKilled ?? 0,
      queueLost: set.queueLost ?? 0,
      ranTwice: set.ranTwice ?? 0,
      errorKinds: [...kinds].map(([k, n]) => `${k} ×${n}`).join("; "),
      details,
    };
    if (outs.some((o) => !Number.isFinite(o))) details.push("HAProxy never marked a failed node DOWN");
    this.results.push(figures);
    this.log(`${name}: ${JSON.stringify(figures)}`);
    return figures;
  }

  /** Lost acknowledged jobs, jobs in a wrong state, and lost or duplicated stream events. */
  private async check(
    details: string[],
  ): Promise<Pick<Figures, "ackedLost" | "wrongState" | "eventsLost" | "eventsDup">> {
    const fresh = (key: string) => {
      if (this.reported.has(key)) return false;
      this.reported.add(key);
      return true;
    };
    // Short jobs take a fraction of a second: everything acknowledged before the cutoff should end.
    const cutoff = Date.now() - 1_000;
    const acked = [...this.load.acked.values()].filter((a) => a.at <= cutoff);
    const deadline = Date.now() + this.opts.settleMs;
    let rows = await this.listJobs();
    while (
      Date.now() < deadline &&
      acked.some((a) => !a.long && !TERMINAL.has(rows.get(a.id)?.status ?? ""))
    ) {
      await sleep(500);
      rows = await this.listJobs();
    }

    let ackedLost = 0;
    for (const a of acked.filter((x) => !rows.has(x.id))) {
      const r = await this.request(`/jobs/${a.id}`).catch(() => ({ status: 0 }));
      if (r.status === 404 && fresh(`lost:${a.id}`)) {
        ackedLost++;
        details.push(`acknowledged job ${a.id} is gone (201 at ${new Date(a.at).toISOString()})`);
      }
    }
    let wrongState = 0;
    for (const a of acked) {
      const row = rows.get(a.id);
      if (!row || TERMINAL.has(row.status)) continue;
      if (await this.target.jobIsLive(a.id).catch(() => false)) continue;
      if (fresh(`wrong:${a.id}`)) {
        wrongState++;
        details.push(`job ${a.id} is ${row.status} but not running on a live node`);
      }
    }

    const events = await this.checkStreams(rows, fresh, details);
    return { ackedLost, wrongState, ...events };
  }

  private async checkStreams(
    rows: Map<string, JobRow>,
    fresh: (key: string) => boolean,
    details: string[],
  ): Promise<{ eventsLost: number; eventsDup: number }> {
    let eventsLost = 0;
    let eventsDup = 0;
    // Every terminal status of every acknowledged job reaches every stream exactly once. Streams
    // lag a little behind: give them time to receive what is already terminal.
    const terminal = [...this.load.acked.values()].filter(
      (a) => a.at >= this.streamsStartedAt && TERMINAL.has(rows.get(a.id)?.status ?? ""),
    );
    const terminalCounts = (s: StatusStreamClient) => {
      const counts = new Map<string, number>();
      for (const e of s.events) if (TERMINAL.has(e.status)) counts.set(e.id, (counts.get(e.id) ?? 0) + 1);
      return counts;
    };
    await waitFor(
      "streams to receive every terminal status",
      async () => this.streams.every((s) => terminal.every((a) => terminalCounts(s).has(a.id))),
      { timeoutMs: 10_000 },
    ).catch(() => undefined);
    for (const [si, s] of this.streams.entries()) {
      const counts = terminalCounts(s);
      for (const a of terminal) {
        const n = counts.get(a.id) ?? 0;
        if (n === 0 && fresh(`term-lost:${si}:${a.id}`)) {
          eventsLost++;
          details.push(`stream ${si} never received the terminal status of ${a.id}`);
        }
        if (n > 1 && fresh(`term-dup:${si}:${a.id}`)) {
          eventsDup++;
          details.push(`stream ${si} received the terminal status of ${a.id} ${n} times`);
        }
      }
      if (s.resyncs > 0 && fresh(`resync:${si}:${s.resyncs}`)) {
        eventsLost++;
        details.push(`stream ${si} was told to resync (events beyond the retention window)`);
      }
    }
    // With Redis at hand: each stream received exactly the fleet's event history after its
    // first snapshot, in order (XRANGE of <prefix>:events).
    const redis = this.target.redis;
    if (!redis || !this.target.keyPrefix) return { eventsLost, eventsDup };
    const key = `${this.target.keyPrefix}:events`;
    for (const [si, s] of this.streams.entries()) {
      // What the stream has received up to now (it goes on receiving while Redis is read).
      const upTo = s.lastEventId;
      const received = s.events.slice();
      if (!s.basePosition || !upTo) continue;
      const expected: string[] = [];
      let from = `(${s.basePosition}`;
      for (;;) {
        const batch = (await retryWhileReconnecting(() => redis.xrange(key, from, upTo, "COUNT", 5_000))) as [
          string,
          string[],
        ][];
        expected.push(...batch.map(([id]) => id));
        if (batch.length < 5_000) break;
        from = `(${batch[batch.length - 1]![0]}`;
      }
      const got = new Map<string, number>();
      let prev = s.basePosition;
      for (const e of received) {
        got.set(e.eventId, (got.get(e.eventId) ?? 0) + 1);
        if (compareEventIds(e.eventId, prev) <= 0 && fresh(`order:${si}:${e.eventId}`)) {
          eventsDup++;
          details.push(`stream ${si}: event ${e.eventId} (${e.id} ${e.status}) after ${prev}`);
        }
        prev = e.eventId;
      }
      const expectedSet = new Set(expected);
      for (const id of expected) {
        if (!got.has(id) && fresh(`lost:${si}:${id}`)) {
          eventsLost++;
          details.push(`stream ${si} missed event ${id}`);
        }
      }
      for (const [id, n] of got) {
        if (n > 1 && fresh(`dup:${si}:${id}`)) {
          eventsDup++;
          details.push(`stream ${si} received event ${id} ${n} times`);
        }
        if (!expectedSet.has(id) && fresh(`gone:${si}:${id}`)) {
          eventsLost++;
          details.push(
            `stream ${si} received event ${id}, which is not in the event history (lost by Redis)`,
          );
        }
      }
    }
    return { eventsLost, eventsDup };
  }
}

// ---------------------------------------------------------------------------------------------

const fmtMs = (ms: number | undefined) => (ms === undefined ? "-" : (ms / 1000).toFixed(1));

/** The report: one row per scenario; the columns marked * must be 0. */
export function formatTable(results: Figures[], title: string): string {
  const header = [
    "scenario",
    "requests",
    "errors",
    "1st err s",
    "last err s",
    "max lat s",
    "LB out s",
    "LB back s",
    "stream breaks",
    "acked lost*",
    "events lost*",
    "events dup*",
    "wrong state*",
    "rolling killed*",
    "queue lost*",
    "ran twice*",
  ];
  const rows = results.map((f) => [
    f.scenario,
    String(f.requests),
    String(f.errors),
    fmtMs(f.firstErrorMs),
    fmtMs(f.lastErrorMs),
    fmtMs(f.maxLatencyMs),
    fmtMs(f.lbOutMs),
    fmtMs(f.lbBackMs),
    String(f.streamBreaks),
    String(f.ackedLost),
    String(f.eventsLost),
    String(f.eventsDup),
    String(f.wrongState),
    String(f.rollingKilled),
    String(f.queueLost),
    String(f.ranTwice),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(" | ")} |`;
  const sep = `|${widths.map((w, i) => (i === 0 ? `:${"-".repeat(w + 1)}` : `${"-".repeat(w + 1)}:`)).join("|")}|`;
  const notes = results.flatMap((f) => [
    ...(f.errorKinds ? [`- ${f.scenario}: errors: ${f.errorKinds}`] : []),
    ...f.details.slice(0, 20).map((d) => `- ${f.scenario}: ${d}`),
    ...(f.details.length > 20 ? [`- ${f.scenario}: ... ${f.details.length - 20} more`] : []),
  ]);
  return [
    `\n${title}`,
    line(header),
    sep,
    ...rows.map(line),
    "",
    "Times in seconds after the failure was injected (LB out: after it hit the node; LB back: after the scenario began).",
    "* must be 0.",
    ...notes,
    "",
  ].join("\n");
}

/**
 * The checker's own Redis client may still be following a failover (the primary it knew was just
 * killed): retry a read for a while instead of failing the scenario on "Connection is closed".
 */
async function retryWhileReconnecting<T>(read: () => Promise<T>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await read();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
