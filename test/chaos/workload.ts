// The chaos workload: several users, each with a token, through HAProxy. Each user submits jobs
// (always with an Idempotency-Key, repeated with the same key on 503, connection errors and
// timeouts), controls them (suspend, resume, stop, kill, cancel), reads their output, and follows
// its `*` status stream; some jobs get a status stream of their own. Streams are dropped on purpose
// now and then and resumed with `?since=<last eventId>`. Every request, answer and stream event
// goes to the history (history.ts) with its time.
//
// Each job's command first appends `run <tag>` to the run's ledger file, where <tag> is unique to
// the submission and is also in the job's name, so the checker can count executions per job.
import { signToken } from "../../src/http/auth.js";
import { TERMINAL } from "../failover/harness/load.js";
import { ndjsonLines } from "../helpers/ndjson.js";
import type { History } from "./history.js";
import { Prng } from "./prng.js";

export const JOB_KINDS = ["short", "long", "failing", "chatty", "launch-fail", "cancel-early"] as const;
export type JobKind = (typeof JOB_KINDS)[number];

/** Lines a chatty job writes to stdout (and as many to stderr). */
export const CHATTY_LINES = 150;

export interface WorkloadOptions {
  url: string;
  secret: string;
  /** The admin's token: one `*` stream sees every job. */
  adminToken: string;
  adminUser: string;
  users: string[];
  ledger: string;
  /** A prefix of every tag (unique per run). */
  runTag: string;
  seed: number;
  /** Bound on every answer (ms): a request not answered by then is a hang. */
  boundMs: number;
  /** Give up a submission after retrying this long (ms). */
  submitGiveUpMs: number;
  /** Mean gap between two submissions of one user (ms). */
  submitGapMs: number;
  log: (line: string) => void;
}

interface Answer {
  status?: number;
  error?: string;
  body: Record<string, unknown>;
  ms: number;
}

interface KnownJob {
  id: string;
  tag: string;
  kind: JobKind;
  status: string;
}

function describeError(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === "TimeoutError") return "timeout";
  if (e.name === "AbortError") return "aborted";
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
}

/** What of an answer's body the history keeps. */
function keep(body: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of ["id", "status", "name", "code", "message", "statusMessage", "exitCode", "host"]) {
    if (body[k] !== undefined) out[k] = body[k];
  }
  if (body.text !== undefined) out.text = String(body.text).slice(0, 120);
  return out;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class Workload {
  private running = false;
  private readonly loops: Promise<void>[] = [];
  private readonly side = new Set<Promise<void>>();
  private readonly streams: StatusStream[] = [];
  private readonly tokens = new Map<string, string>();
  /** Per user: the jobs acknowledged to it, by id. */
  private readonly jobs = new Map<string, Map<string, KnownJob>>();
  private readonly rng: Prng;
  private seq = 0;
  submissions = 0;
  acked = 0;
  gaveUp = 0;

  constructor(
    private readonly opts: WorkloadOptions,
    private readonly history: History,
  ) {
    this.rng = new Prng(opts.seed ^ 0x5bd1e995);
  }

  async start(): Promise<void> {
    this.running = true;
    for (const user of this.opts.users) {
      this.tokens.set(user, await signToken(this.opts.secret, { user, ttl: "12h" }));
      this.jobs.set(user, new Map());
    }
    this.tokens.set(this.opts.adminUser, this.opts.adminToken);
    // `*` streams: the admin's (every job) and each user's (their own), dropped now and then.
    for (const user of [this.opts.adminUser, ...this.opts.users]) {
      const s = new StatusStream(this, user, "*", this.rng.fork(), (job, status) => this.seen(job, status));
      this.streams.push(s);
      s.start();
    }
    for (const user of this.opts.users) {
      const rng = this.rng.fork();
      this.loops.push(this.submitLoop(user, rng), this.controlLoop(user, rng.fork()));
    }
  }

  /** Stops submitting and controlling; waits for submissions in progress. Streams go on. */
  async stopLoad(): Promise<void> {
    this.running = false;
    await Promise.allSettled(this.loops);
    await Promise.allSettled([...this.side]);
  }

  async stopStreams(): Promise<void> {
    await Promise.allSettled(this.streams.map((s) => s.stop()));
  }

  token(user: string): string {
    return this.tokens.get(user)!;
  }

  get bound(): number {
    return this.opts.boundMs;
  }

  get url(): string {
    return this.opts.url;
  }

  record = (rec: Parameters<History["write"]>[0]) => this.history.write(rec);

  nextRid(): number {
    return this.history.nextRid();
  }

  private seen(job: string, status: string): void {
    for (const m of this.jobs.values()) {
      const j = m.get(job);
      if (j) j.status = status;
    }
  }

  /** One request, recorded with its answer. */
  async request(
    user: string,
    method: string,
    path: string,
    meta: { op: string; tag?: string; job?: string; key?: string; operation?: string; attempt?: number },
    body?: unknown,
  ): Promise<Answer> {
    const rid = this.history.nextRid();
    const sent = Date.now();
    this.history.write({
      type: "req",
      t: sent,
      rid,
      user,
      method,
      path,
      ...meta,
      boundMs: this.opts.boundMs,
    });
    const headers: Record<string, string> = { authorization: `Bearer ${this.token(user)}` };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (meta.key) headers["idempotency-key"] = meta.key;
    try {
      const res = await fetch(new URL(path, this.opts.url), {
        method,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(this.opts.boundMs),
      });
      const text = await res.text();
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(text) as Record<string, unknown>;
      } catch {
        parsed = { text };
      }
      const ms = Date.now() - sent;
      this.history.write({ type: "res", t: Date.now(), rid, ms, status: res.status, body: keep(parsed) });
      return { status: res.status, body: parsed, ms };
    } catch (err) {
      const ms = Date.now() - sent;
      const error = describeError(err);
      this.history.write({ type: "res", t: Date.now(), rid, ms, error });
      return { error, body: {}, ms };
    }
  }

  private jobBody(kind: JobKind, tag: string): Record<string, unknown> {
    const mark = `echo run ${tag} >> ${this.opts.ledger}`;
    const body: Record<string, unknown> = { name: `chaos ${tag}`, tags: ["chaos", kind] };
    switch (kind) {
      case "short":
        body.command = `${mark}; sleep 0.2`;
        break;
      case "long":
        body.command = `${mark}; sleep ${this.rng.int(4, 12)}`;
        break;
      case "failing":
        body.command = `${mark}; sleep 0.3; exit 3`;
        break;
      case "chatty":
        body.command = `${mark}; for i in $(seq 1 ${CHATTY_LINES}); do echo "line $i"; echo "err $i" >&2; sleep 0.01; done`;
        break;
      case "launch-fail":
        // A working directory that does not exist: the job cannot start, so it must never run.
        body.command = mark;
        body.workingDirectory = "/nonexistent/chaos-launch-fail";
        break;
      case "cancel-early":
        // Canceled right after it is acknowledged: if that lands while it is Pending, it must never run.
        body.command = `${mark}; sleep 2`;
        break;
    }
    return body;
  }

  private async submitLoop(user: string, rng: Prng): Promise<void> {
    while (this.running) {
      await sleep(rng.range(0.3, 1.7) * this.opts.submitGapMs);
      if (!this.running) break;
      const kind = rng.weighted<JobKind>({
        short: 30,
        long: 20,
        failing: 12,
        chatty: 20,
        "launch-fail": 6,
        "cancel-early": 12,
      });
      const p = this.submit(user, kind, rng.fork());
      this.side.add(p);
      void p.finally(() => this.side.delete(p));
    }
  }

  /** Submits until acknowledged (201, or 200 for a repeat), retrying with the same key. */
  private async submit(user: string, kind: JobKind, rng: Prng): Promise<void> {
    const tag = `${this.opts.runTag}-${user}-${++this.seq}`;
    const key = `chaos-${tag}`;
    const body = this.jobBody(kind, tag);
    const started = Date.now();
    this.submissions++;
    let backoff = 250;
    let last = "";
    for (let attempt = 1; ; attempt++) {
      const a = await this.request(user, "POST", "/jobs", { op: "submit", tag, key, attempt }, body);
      const id = typeof a.body.id === "string" ? a.body.id : undefined;
      if ((a.status === 201 || a.status === 200) && id) {
        this.acked++;
        this.history.write({
          type: "ack",
          t: Date.now(),
          tag,
          job: id,
          user,
          kind,
          key,
          status: a.status,
          attempts: attempt,
        });
        this.jobs.get(user)!.set(id, { id, tag, kind, status: String(a.body.status ?? "Pending") });
        await this.afterAck(user, id, kind, rng);
        return;
      }
      last = a.error ?? `${a.status} ${String(a.body.name ?? a.body.text ?? "").slice(0, 60)}`;
      // Retry what may be transient: a 503 (Redis or the owner unreachable), HAProxy's 502/504, a
      // network failure or a time-out. Anything else (400, 409) is final.
      const transient = a.error !== undefined || a.status === 503 || a.status === 502 || a.status === 504;
      if (!transient || Date.now() - started > this.opts.submitGiveUpMs) break;
      await sleep(backoff);
      backoff = Math.min(backoff * 2, 3_000);
    }
    this.gaveUp++;
    this.history.write({ type: "gaveup", t: Date.now(), tag, user, key, last });
  }

  private async afterAck(user: string, id: string, kind: JobKind, rng: Prng): Promise<void> {
    if (kind === "cancel-early") {
      await this.control(user, id, "cancel");
    }
    if (kind === "chatty" && rng.next() < 0.6) {
      const p = this.output(user, id);
      this.side.add(p);
      void p.finally(() => this.side.delete(p));
    }
    if (rng.next() < 0.25) {
      const s = new StatusStream(this, user, id, rng.fork(), (job, status) => this.seen(job, status));
      this.streams.push(s);
      s.start();
    }
  }

  async control(user: string, id: string, operation: string): Promise<void> {
    await this.request(
      user,
      "POST",
      `/jobs/${id}/control`,
      { op: "control", job: id, operation },
      { operation },
    );
  }

  private async controlLoop(user: string, rng: Prng): Promise<void> {
    while (this.running) {
      await sleep(rng.range(500, 2_500));
      if (!this.running) break;
      const mine = [...this.jobs.get(user)!.values()];
      const live = mine.filter((j) => !TERMINAL.has(j.status));
      if (mine.length === 0) continue;
      let job: KnownJob;
      let op: string;
      if (live.length > 0 && rng.next() < 0.85) {
        job = rng.pick(live);
        if (job.status === "Running") op = rng.weighted({ suspend: 5, stop: 1, kill: 1, resume: 0.3 });
        else if (job.status === "Suspended") op = rng.weighted({ resume: 5, kill: 1, stop: 0.5 });
        else op = rng.weighted({ cancel: 3, suspend: 0.5 });
      } else {
        // Any job, any operation: the answers to wrong states (409) are part of the history too.
        job = rng.pick(mine.slice(-50));
        op = rng.pick(["suspend", "resume", "stop", "kill", "cancel"]);
      }
      const p = rng.next() < 0.2 ? this.read(user, job.id) : this.control(user, job.id, op);
      this.side.add(p);
      void p.finally(() => this.side.delete(p));
    }
    // Forget terminal jobs' streams as they end; nothing else to do here.
  }

  private async read(user: string, id: string): Promise<void> {
    await this.request(user, "GET", `/jobs/${id}`, { op: "get", job: id });
  }

  /** Reads a job's stdout to the end (`{"complete":true}`), or until it breaks. */
  private async output(user: string, id: string): Promise<void> {
    const rid = this.history.nextRid();
    const path = `/jobs/${id}/output?outputType=stdout`;
    const sent = Date.now();
    this.history.write({
      type: "req",
      t: sent,
      rid,
      user,
      method: "GET",
      path,
      op: "output",
      job: id,
      boundMs: this.opts.boundMs,
    });
    const ctrl = new AbortController();
    const headerTimer = setTimeout(() => ctrl.abort(new DOMException("timeout", "TimeoutError")), this.bound);
    let stdout = "";
    let complete = false;
    let answered = false;
    let error: string | undefined;
    try {
      const res = await fetch(new URL(path, this.opts.url), {
        headers: { authorization: `Bearer ${this.token(user)}` },
        signal: ctrl.signal,
      });
      clearTimeout(headerTimer);
      answered = true;
      this.history.write({ type: "res", t: Date.now(), rid, ms: Date.now() - sent, status: res.status });
      if (res.status !== 200 || !res.body) {
        await res.text().catch(() => "");
        error = `HTTP ${res.status}`;
      } else {
        // A chatty job ends within seconds: a stream silent for long is a broken one.
        let idle: NodeJS.Timeout | undefined;
        const arm = () => {
          clearTimeout(idle);
          idle = setTimeout(() => ctrl.abort(), 60_000);
        };
        arm();
        try {
          for await (const line of ndjsonLines(res.body, arm)) {
            const msg = JSON.parse(line) as {
              output?: string;
              complete?: boolean;
              error?: { name?: string };
            };
            if (msg.output !== undefined) stdout += msg.output;
            if (msg.complete) complete = true;
            if (msg.error) error = `error line: ${msg.error.name ?? ""}`;
          }
        } finally {
          clearTimeout(idle);
        }
      }
    } catch (err) {
      clearTimeout(headerTimer);
      error = describeError(err);
      if (!answered) this.history.write({ type: "res", t: Date.now(), rid, ms: Date.now() - sent, error });
    }
    this.history.write({
      type: "output",
      t: Date.now(),
      rid,
      job: id,
      stdout,
      stderrLines: 0,
      complete,
      ...(error ? { error } : {}),
    });
  }
}

/**
 * A status stream (`*` or one job) that resumes with `?since=<last eventId>` whenever its
 * connection ends, fails, stays silent too long, or is dropped on purpose. A one-job stream stops
 * once it has seen the job's terminal status and the server ended it.
 */
class StatusStream {
  private static count = 0;
  readonly name: string;
  private conn = -1;
  private lastEventId: string | undefined;
  private running = false;
  private loop: Promise<void> | undefined;
  private ctrl: AbortController | undefined;
  private done = false;

  constructor(
    private readonly w: Workload,
    private readonly user: string,
    private readonly scope: string,
    private readonly rng: Prng,
    private readonly onEvent: (job: string, status: string) => void,
  ) {
    this.name = `${scope === "*" ? "all" : "job"}-${user}-${++StatusStream.count}`;
  }

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.ctrl?.abort();
    await this.loop;
  }

  private async run(): Promise<void> {
    let backoff = 100;
    while (this.running && !this.done) {
      const why = await this.connect();
      if (!this.running || this.done) break;
      await sleep(backoff);
      backoff = why === "ended" || why === "dropped" ? 100 : Math.min(backoff * 2, 1_000);
    }
  }

  private async connect(): Promise<string> {
    const conn = ++this.conn;
    const ctrl = new AbortController();
    this.ctrl = ctrl;
    const since = this.lastEventId;
    const path = `/jobs/${this.scope}/status${since ? `?since=${encodeURIComponent(since)}` : ""}`;
    const rid = this.w.nextRid();
    const sent = Date.now();
    this.w.record({
      type: "req",
      t: sent,
      rid,
      user: this.user,
      method: "GET",
      path,
      op: "status",
      ...(this.scope === "*" ? {} : { job: this.scope }),
      boundMs: this.w.bound,
    });
    this.w.record({
      type: "open",
      t: sent,
      stream: this.name,
      conn,
      user: this.user,
      scope: this.scope,
      ...(since ? { since } : {}),
    });
    let why = "ended";
    let resync = false;
    let answered = false;
    let phase: "headers" | "body" = "headers";
    let idle: NodeJS.Timeout | undefined;
    let idleFired = false;
    let dropped = false;
    // Until the headers arrive, the request's bound applies; then the idle watchdog (a stream
    // through a node that vanished stays silent) and, sometimes, a planned drop.
    let headerTimedOut = false;
    const headerTimer = setTimeout(() => {
      headerTimedOut = true;
      ctrl.abort();
    }, this.w.bound);
    const arm = () => {
      clearTimeout(idle);
      idle = setTimeout(() => {
        idleFired = true;
        ctrl.abort();
      }, 10_000);
    };
    const dropAfter = this.scope === "*" ? this.rng.range(3_000, 25_000) : this.rng.range(200, 3_000);
    const dropTimer =
      this.rng.next() < 0.7
        ? setTimeout(() => {
            dropped = true;
            ctrl.abort();
          }, dropAfter)
        : undefined;
    let snapshotAt: string | undefined;
    let first = true;
    try {
      const res = await fetch(new URL(path, this.w.url), {
        headers: { authorization: `Bearer ${this.w.token(this.user)}` },
        signal: ctrl.signal,
      });
      clearTimeout(headerTimer);
      phase = "body";
      answered = true;
      this.w.record({ type: "res", t: Date.now(), rid, ms: Date.now() - sent, status: res.status });
      if (res.status !== 200 || !res.body) {
        const text = await res.text().catch(() => "");
        if (res.status === 404 && this.scope !== "*") this.done = true;
        return `HTTP ${res.status} ${text.slice(0, 80)}`;
      }
      arm();
      for await (const line of ndjsonLines(res.body, arm)) {
        const msg = JSON.parse(line) as {
          eventId?: string;
          id?: string;
          status?: string;
          resync?: boolean;
          error?: { name?: string; message?: string };
        };
        if (msg.error) {
          why = `error line: ${msg.error.name ?? ""} ${msg.error.message ?? ""}`.trim();
          break;
        }
        if (msg.resync) {
          resync = true;
          first = true;
          snapshotAt = undefined;
          continue;
        }
        if (!msg.eventId || !msg.id || !msg.status) continue;
        // A fresh connection (or one after a resync) starts with a snapshot: every job in scope at
        // the same position, the first line's eventId.
        let snap = false;
        if ((since === undefined || resync) && (first || msg.eventId === snapshotAt)) {
          snap = true;
          snapshotAt ??= msg.eventId;
        }
        first = false;
        this.w.record({
          type: "ev",
          t: Date.now(),
          stream: this.name,
          conn,
          eventId: msg.eventId,
          job: msg.id,
          status: msg.status,
          ...(snap ? { snap } : {}),
        });
        this.lastEventId = msg.eventId;
        this.onEvent(msg.id, msg.status);
        if (this.scope !== "*" && TERMINAL.has(msg.status)) this.done = true;
      }
    } catch (err) {
      if (dropped) why = "dropped";
      else if (idleFired) why = "idle";
      else if (!this.running) why = "stopped";
      else if (phase === "headers" && headerTimedOut) why = "timeout";
      else why = describeError(err);
      if (!answered) this.w.record({ type: "res", t: Date.now(), rid, ms: Date.now() - sent, error: why });
    } finally {
      clearTimeout(headerTimer);
      clearTimeout(idle);
      clearTimeout(dropTimer);
      ctrl.abort();
    }
    this.w.record({
      type: "close",
      t: Date.now(),
      stream: this.name,
      conn,
      why,
      ...(resync ? { resync } : {}),
    });
    return why;
  }
}
