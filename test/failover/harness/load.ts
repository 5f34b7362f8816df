// Steady client load through the load balancer, and long-lived status streams that resume by
// eventId. Everything a client sees is recorded with its time: acknowledged submissions, errors,
// latencies, and every status event each stream received.
import { TERMINAL_STATUSES } from "../../../src/api/status.js";
import { ndjsonLines } from "../../helpers/ndjson.js";

export const TERMINAL: ReadonlySet<string> = new Set(TERMINAL_STATUSES);

export interface Acked {
  id: string;
  /** When the 201 arrived. */
  at: number;
  /** Long jobs (the rolling-restart probes) are not part of the steady load. */
  long: boolean;
}

export interface ClientError {
  t: number;
  op: string;
  /** HTTP status and error name, or the network failure. */
  what: string;
}

export interface LoadOptions {
  url: string;
  token: string;
  /** Requests per second (all kinds together). */
  rate: number;
  /** The short jobs the load submits. */
  command: string;
  /** A request without an answer after this long counts as an error (and is abandoned). */
  timeoutMs: number;
  /** At most this many requests in flight; a tick over the limit is skipped (and counted). */
  maxInFlight: number;
}

type Op = "submit" | "get" | "list";

/** One request: the status and the parsed JSON body, or a thrown network error or timeout. */
async function call(
  url: string,
  token: string,
  method: string,
  path: string,
  timeoutMs: number,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(new URL(path, url), {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    parsed = { text };
  }
  return { status: res.status, body: parsed };
}

function describe(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === "TimeoutError") return "timeout";
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
}

export class LoadGenerator {
  readonly acked = new Map<string, Acked>();
  readonly errors: ClientError[] = [];
  /** [time sent, latency ms] of every answered request. */
  readonly latencies: [number, number][] = [];
  requests = 0;
  skipped = 0;
  private inFlight = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private tick = 0;

  constructor(private readonly opts: LoadOptions) {}

  start(): void {
    const every = 1_000 / this.opts.rate;
    const started = Date.now();
    // Scheduled against the start time, so slow ticks do not lower the rate.
    const next = () => {
      this.tick++;
      this.timer = setTimeout(
        () => {
          this.fire();
          next();
        },
        Math.max(0, started + this.tick * every - Date.now()),
      );
    };
    next();
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await Promise.allSettled([...this.inFlight]);
  }

  /**
   * While set, the mix sends no submissions (its reads go on): for a scenario that needs the fleet
   * queue to drain for a moment (harness/queue-scenarios.ts).
   */
  submissionsPaused = false;

  /** The mix: 15 % short-job submissions, 55 % GET /jobs/{id}, 30 % GET /jobs (recent, small). */
  private pick(): Op {
    const r = Math.random();
    if ((r < 0.15 && !this.submissionsPaused) || this.acked.size === 0) return "submit";
    return r < 0.7 ? "get" : "list";
  }

  private fire(): void {
    if (this.inFlight.size >= this.opts.maxInFlight) {
      this.skipped++;
      return;
    }
    const p = this.one(this.pick()).finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  private async one(op: Op): Promise<void> {
    const sent = Date.now();
    this.requests++;
    try {
      if (op === "submit") {
        await this.submit({ command: this.opts.command, name: "failover-load" }, false);
      } else if (op === "get") {
        const ids = [...this.acked.keys()];
        const id = ids[Math.floor(Math.random() * ids.length)]!;
        const r = await call(this.opts.url, this.opts.token, "GET", `/jobs/${id}`, this.opts.timeoutMs);
        if (r.status !== 200) this.fail(sent, "GET /jobs/{id}", r);
      } else {
        const since = new Date(Date.now() - 15_000).toISOString();
        const path = `/jobs?startTime=${encodeURIComponent(since)}&fields=id,status`;
        const r = await call(this.opts.url, this.opts.token, "GET", path, this.opts.timeoutMs);
        if (r.status !== 200) this.fail(sent, "GET /jobs", r);
      }
      this.latencies.push([sent, Date.now() - sent]);
    } catch (err) {
      this.errors.push({
        t: sent,
        op: op === "submit" ? "POST /jobs" : op === "get" ? "GET /jobs/{id}" : "GET /jobs",
        what: describe(err),
      });
    }
  }

  private fail(t: number, op: string, r: { status: number; body: Record<string, unknown> }): void {
    // The nodes answer {"name": ...}; HAProxy's own answers (no server available) are HTML.
    const text = String(r.body.text ?? "");
    const what =
      r.body.name ?? (text.includes("<html>") ? "from HAProxy (no node available)" : text.slice(0, 60));
    this.errors.push({ t, op, what: `${r.status} ${String(what)}`.trim() });
  }

  /** POST /jobs; a 201 is an acknowledged job (remembered), anything else an error. */
  async submit(job: Record<string, unknown>, long: boolean): Promise<string | undefined> {
    const sent = Date.now();
    try {
      const r = await call(this.opts.url, this.opts.token, "POST", "/jobs", this.opts.timeoutMs, job);
      if (r.status === 201 && typeof r.body.id === "string") {
        this.acked.set(r.body.id, { id: r.body.id, at: Date.now(), long });
        return r.body.id;
      }
      this.fail(sent, "POST /jobs", r);
    } catch (err) {
      this.errors.push({ t: sent, op: "POST /jobs", what: describe(err) });
      if (long) throw err;
    }
    return undefined;
  }
}

export interface StreamEvent {
  eventId: string;
  id: string;
  status: string;
  /** Which connection of the stream delivered it (0 = the first). */
  conn: number;
}

export interface StreamBreak {
  t: number;
  /** Why the connection ended: an error line, an HTTP error, a network error, or the idle watchdog. */
  why: string;
}

/**
 * `GET /jobs/*\/status` through the load balancer, for as long as it runs. When a connection ends
 * or fails, it reconnects with `?since=<last eventId>`; a connection that stays silent longer than
 * `idleMs` (the load makes several events a second) is treated as dead and replaced the same way,
 * which is how a client finds out about a node that vanished from the network.
 */
export class StatusStreamClient {
  /** Events after the first connection's snapshot, in arrival order. */
  readonly events: StreamEvent[] = [];
  readonly breaks: StreamBreak[] = [];
  /** The first connection's snapshot position: events after it must all arrive, once. */
  basePosition: string | undefined;
  lastEventId: string | undefined;
  resyncs = 0;
  private conn = -1;
  private running = false;
  private loop: Promise<void> | undefined;
  private ctrl: AbortController | undefined;

  constructor(
    private readonly url: string,
    private readonly token: string,
    private readonly idleMs: number,
  ) {}

  /** Starts and resolves once the first connection delivered its snapshot (within `timeoutMs`). */
  async start(timeoutMs = 30_000): Promise<void> {
    this.running = true;
    let opened!: () => void;
    const first = new Promise<void>((r) => {
      opened = r;
    });
    this.loop = this.run(opened);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`status stream: no snapshot within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      await Promise.race([first, timeout]);
    } catch (err) {
      await this.stop();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    this.ctrl?.abort();
    await this.loop;
  }

  private async run(opened: () => void): Promise<void> {
    let backoff = 100;
    while (this.running) {
      const why = await this.connect(opened);
      if (!this.running) break;
      this.breaks.push({ t: Date.now(), why });
      await new Promise((r) => setTimeout(r, backoff));
      backoff = why.startsWith("ended") ? 100 : Math.min(backoff * 2, 1_000);
    }
  }

  /** One connection; resolves with why it ended. */
  private async connect(opened: () => void): Promise<string> {
    const ctrl = new AbortController();
    this.ctrl = ctrl;
    this.conn++;
    const conn = this.conn;
    let idle: NodeJS.Timeout | undefined;
    let idleFired = false;
    const arm = () => {
      clearTimeout(idle);
      idle = setTimeout(() => {
        idleFired = true;
        ctrl.abort();
      }, this.idleMs);
    };
    const since = this.lastEventId ? `?since=${encodeURIComponent(this.lastEventId)}` : "";
    arm();
    try {
      const res = await fetch(new URL(`/jobs/*/status${since}`, this.url), {
        headers: { authorization: `Bearer ${this.token}` },
        signal: ctrl.signal,
      });
      if (res.status !== 200 || !res.body) {
        const text = await res.text().catch(() => "");
        let name = "";
        try {
          name = String((JSON.parse(text) as { name?: string }).name ?? "");
        } catch {}
        return `HTTP ${res.status} ${name}`.trim();
      }
      for await (const line of ndjsonLines(res.body, arm)) {
        const msg = JSON.parse(line) as {
          eventId?: string;
          id?: string;
          status?: string;
          resync?: boolean;
          error?: { name?: string; message?: string };
        };
        if (msg.error) return `error line: ${msg.error.name ?? ""} ${msg.error.message ?? ""}`.trim();
        if (msg.resync) {
          this.resyncs++;
          continue;
        }
        if (!msg.eventId || !msg.id || !msg.status) continue;
        if (this.basePosition === undefined) this.basePosition = msg.eventId;
        // The first connection starts with a snapshot: every job at the same position.
        if (msg.eventId !== this.basePosition) {
          this.events.push({ eventId: msg.eventId, id: msg.id, status: msg.status, conn });
        }
        this.lastEventId = msg.eventId;
        opened();
      }
      return "ended";
    } catch (err) {
      if (idleFired) return `idle for ${this.idleMs} ms`;
      if (!this.running) return "stopped";
      return describe(err);
    } finally {
      clearTimeout(idle);
      ctrl.abort();
    }
  }
}
