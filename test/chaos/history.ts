// The run's history: one NDJSON line per thing that happened, each with its time (ms since the
// epoch, `t`). The checker (check.ts) reads it back; the record types are shared here.
import { createWriteStream, type WriteStream } from "node:fs";

/** A request sent (`req`) and its answer (`res`: HTTP status, or `error` for a network failure). */
export interface ReqRecord {
  type: "req";
  t: number;
  /** Request number, unique in the run. */
  rid: number;
  user: string;
  method: string;
  path: string;
  /** What the workload meant: submit, control, get, output, status. */
  op: string;
  /** The job tag (submissions) or the job id (everything else). */
  tag?: string;
  job?: string;
  key?: string;
  /** The control operation. */
  operation?: string;
  attempt?: number;
  /** Bound on the answer (ms): a request not answered by then is a hang. */
  boundMs: number;
}

export interface ResRecord {
  type: "res";
  t: number;
  rid: number;
  ms: number;
  status?: number;
  /** Network failure or timeout, instead of an HTTP status. */
  error?: string;
  /** What mattered of the body: id, status, error name and message. */
  body?: Record<string, unknown>;
}

/** An acknowledged submission: its tag's job id (201 or a 200 repeat). */
export interface AckRecord {
  type: "ack";
  t: number;
  tag: string;
  job: string;
  user: string;
  kind: string;
  key: string;
  /** How the acknowledgement came: 201 or 200 (a repeat of the key). */
  status: number;
  attempts: number;
}

/** A submission given up on (no acknowledgement after every retry). */
export interface GaveUpRecord {
  type: "gaveup";
  t: number;
  tag: string;
  user: string;
  key: string;
  last: string;
}

/** A stream connection opened: `since` is the eventId it resumed after (absent: a fresh one). */
export interface OpenRecord {
  type: "open";
  t: number;
  stream: string;
  conn: number;
  user: string;
  /** `*` or a job id. */
  scope: string;
  since?: string;
}

/** A status event received on a stream connection (`snap`: part of a fresh connection's snapshot). */
export interface EventRecord {
  type: "ev";
  t: number;
  stream: string;
  conn: number;
  eventId: string;
  job: string;
  status: string;
  snap?: boolean;
}

/** A stream connection ended: why (ended, an error line, idle, dropped on purpose, network). */
export interface CloseRecord {
  type: "close";
  t: number;
  stream: string;
  conn: number;
  why: string;
  /** `{"resync":true}` was received on it. */
  resync?: boolean;
}

/** An output stream that ended: bytes of stdout and stderr, whether it ended with complete. */
export interface OutputRecord {
  type: "output";
  t: number;
  rid: number;
  job: string;
  stdout: string;
  stderrLines: number;
  complete: boolean;
  error?: string;
}

export interface FaultRecord {
  type: "fault";
  t: number;
  n: number;
  kind: string;
  node?: number;
  ms?: number;
  phase: "start" | "end" | "error";
  note?: string;
}

export type HistoryRecord =
  | ReqRecord
  | ResRecord
  | AckRecord
  | GaveUpRecord
  | OpenRecord
  | EventRecord
  | CloseRecord
  | OutputRecord
  | FaultRecord;

export class History {
  private readonly out: WriteStream;
  private rid = 0;
  count = 0;

  constructor(readonly file: string) {
    this.out = createWriteStream(file, { flags: "a" });
  }

  nextRid(): number {
    return ++this.rid;
  }

  write(rec: HistoryRecord): void {
    this.count++;
    this.out.write(`${JSON.stringify(rec)}\n`);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.out.end(resolve));
  }
}
