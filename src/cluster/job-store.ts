// The fleet-wide job store: job records and their indexes in Redis. Any node reads any job;
// only the owner writes, through scripts that check its epoch (fencing).
import { type Job, MAX_STATUS_MESSAGE_LENGTH, truncateChars } from "../api/index.js";
import type { Keys } from "./keys.js";
import { isUnavailable, redisUnavailable, whileAvailable } from "./redis.js";
import {
  type ClaimArgs,
  type ClaimResult,
  type Created,
  type Idempotency,
  JobScripts,
  type Placement,
  type ScriptedRedis,
  type Settlement,
  scriptError,
  type Writer,
} from "./scripts.js";

/** Fields that change after submission; everything else lives in the immutable `spec`. */
export interface MutableFields {
  status?: string;
  /** Set when the job is placed on a node (a queued job has none). */
  host?: string;
  /** Set by the node that starts the job when the submission named none (its own output dir). */
  stdoutFile?: string;
  stderrFile?: string;
  statusMessage?: string;
  statusCode?: string;
  pid?: number;
  exitCode?: number;
  lastUpdateTime?: string;
}

/** What only the owner node reads back: never part of the public Job (see StoredJob). */
export interface OwnerFields {
  /** The output files the owner created for the job (removed on expiry). */
  files?: string[];
  /** What the job's process opened for its output (StoredJob.outputs). */
  outputs?: string;
}

const MUTABLE: readonly (keyof MutableFields)[] = [
  "status",
  "host",
  "stdoutFile",
  "stderrFile",
  "statusMessage",
  "statusCode",
  "pid",
  "exitCode",
  "lastUpdateTime",
];
const NUMERIC = new Set<string>(["pid", "exitCode"]);

export interface StoredJob {
  job: Job;
  owner: string;
  user: string;
  /** Rises by one with every change; status events carry it so streams drop stale copies. */
  ver: number;
  /** Output files this node created for the job (removed on expiry). */
  files: string[];
  /**
   * What the job's process opened for its output, recorded by its owner with Running (encoded by
   * src/runner/output-records.ts; opaque here): the only files its output may be streamed from.
   */
  outputs?: string;
  /** Its owner may have started it (false: placed or queued, provably never started). */
  launching: boolean;
  /** The id of its newest status event (absent on jobs stored before it was recorded). */
  lastEventId?: string;
}

/** Why the store refused a write. */
export class StoreConflict extends Error {
  constructor(
    readonly kind:
      | "NOTFOUND"
      | "NOTOWNER"
      | "FENCED"
      | "TERMINAL"
      | "STATE"
      | "EXISTS"
      | "OWNED"
      | "IDEMPOTENCY",
    readonly arg: string,
  ) {
    super(`${kind}${arg ? ` ${arg}` : ""}`);
    this.name = "StoreConflict";
  }
}

/** The node that owns a job, and the epoch its writes carry. */
export type Owner = Writer;

function rethrow(err: unknown): never {
  const e = scriptError(err);
  if (
    e &&
    ["NOTFOUND", "NOTOWNER", "FENCED", "TERMINAL", "STATE", "EXISTS", "OWNED", "IDEMPOTENCY"].includes(e.kind)
  ) {
    throw new StoreConflict(e.kind as StoreConflict["kind"], e.arg);
  }
  throw isUnavailable(err) ? redisUnavailable(err) : err;
}

/**
 * A mutable field as stored. Every status event copies `statusMessage` (into the events stream and
 * to every listening node), so it is cut to MAX_STATUS_MESSAGE_LENGTH: the node words these itself,
 * but some quote what a job gave (a launch failure naming its path).
 */
function stored(key: keyof MutableFields, value: string | number): string {
  const text = String(value);
  return key === "statusMessage" ? truncateChars(text, MAX_STATUS_MESSAGE_LENGTH) : text;
}

/** The mutable fields present, as stored (a new job's initial values). */
function storedFields(fields: MutableFields): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of MUTABLE) {
    const v = fields[k];
    if (v !== undefined) out[k] = stored(k, v);
  }
  return out;
}

/** Copies the mutable fields present in the hash onto the job (empty means cleared). */
function setMutable(job: Job, h: Record<string, string>): void {
  for (const k of MUTABLE) {
    const v = h[k];
    if (v === undefined || v === "") continue;
    (job as unknown as Record<string, unknown>)[k] = NUMERIC.has(k) ? Number(v) : v;
  }
}

/** Rebuilds the public Job from its hash: the spec plus the current mutable fields. */
export function decodeJob(id: string, h: Record<string, string>): StoredJob | undefined {
  if (!h.spec) return undefined;
  const { id: _stored, ...spec } = JSON.parse(h.spec) as Job;
  const job: Job = { id, ...spec };
  setMutable(job, h);
  if (h.owner) job.node = h.owner;
  return {
    job,
    owner: h.owner ?? "",
    user: h.user ?? "",
    ver: Number(h.ver ?? 0),
    files: h.files ? (JSON.parse(h.files) as string[]) : [],
    ...(h.outputs ? { outputs: h.outputs } : {}),
    launching: h.launching === "1",
    ...(h.eventId ? { lastEventId: h.eventId } : {}),
  };
}

/** Jobs read per pipeline by `readBatches`: bounds both the reply and the decoded jobs held at once. Exported only for test/node/listing-many.test.ts (its only user outside this file). */
export const READ_BATCH = 500;

/** Job fields a summary holds exactly as a full read would (the mutable ones; not `name`, see below). */
export const SUMMARY_EXACT_FIELDS: ReadonlySet<string> = new Set<string>([...MUTABLE, "node"]);

/** What `decodeSummary` reads: the short fields, never `spec` or `files`. */
const SUMMARY_FIELDS = ["ver", "owner", "user", "name", "launching", ...MUTABLE] as const;

/**
 * A job without its spec, from an HMGET of SUMMARY_FIELDS: `id`, `name` (when not empty) and the
 * mutable fields, exactly as `decodeJob` would give them (those never live in the spec); `files`
 * empty. Enough for status events and for listings that select only mutable fields. The hash's
 * `name` is the spec's name as submitted (`""` for none).
 */
export function decodeSummary(id: string, values: readonly (string | null)[]): StoredJob | undefined {
  const h: Record<string, string> = {};
  SUMMARY_FIELDS.forEach((k, i) => {
    const v = values[i];
    if (v !== null && v !== undefined) h[k] = v;
  });
  // Every job hash has `ver` from its creation; none means the job vanished (expired).
  if (h.ver === undefined) return undefined;
  const job: Job = { id };
  if (h.name) job.name = h.name;
  setMutable(job, h);
  if (h.owner) job.node = h.owner;
  return {
    job,
    owner: h.owner ?? "",
    user: h.user ?? "",
    ver: Number(h.ver),
    files: [],
    launching: h.launching === "1",
  };
}

/**
 * Jobs per `read_jobs` call: a script holds Redis for its whole run (pipelined commands let other
 * clients in between), ~7 µs per whole job, so 250 jobs hold it ~2 ms.
 */
export const LIST_BATCH = 250;

/** What a listing reads of a whole job (`readListed`): `ver` (every job has it), `spec`, `owner` and the mutable fields. */
export const LIST_FIELDS = ["ver", "spec", "owner", ...MUTABLE] as const;

/** A job as a listing read it: its id and the values of LIST_FIELDS or SUMMARY_FIELDS, in order. */
export interface ListedJob {
  id: string;
  values: readonly (string | null)[];
}

/** `decodeJob` of a LIST_FIELDS read. */
export function decodeListed(id: string, values: readonly (string | null)[]): Job | undefined {
  const h: Record<string, string> = {};
  LIST_FIELDS.forEach((k, i) => {
    const v = values[i];
    if (v !== null && v !== undefined) h[k] = v;
  });
  return decodeJob(id, h)?.job;
}

/**
 * `JSON.stringify` of the job `decodeJob` builds from a LIST_FIELDS read, without parsing its spec:
 * the spec is stored as `JSON.stringify` of an object (create leaves out `id`, `node` and the
 * mutable fields), whose text a parse and a stringify give back unchanged, and the job is `id`,
 * then the spec's keys, then the mutable fields present (in MUTABLE order), then `node`. Undefined
 * for a job without a spec (as `decodeJob`).
 */
export function listedJson(id: string, values: readonly (string | null)[]): string | undefined {
  const spec = values[1];
  if (!spec) return undefined;
  let text = `{"id":${JSON.stringify(id)}`;
  // `{}` has no keys to splice; any other spec is `{…}` with at least one.
  if (spec.length > 2) text += `,${spec.slice(1, -1)}`;
  for (let i = 0; i < MUTABLE.length; i++) {
    const v = values[3 + i];
    if (v === null || v === undefined || v === "") continue;
    const k = MUTABLE[i]!;
    text += `,"${k}":${NUMERIC.has(k) ? JSON.stringify(Number(v)) : JSON.stringify(v)}`;
  }
  const owner = values[2];
  if (owner) text += `,"node":${JSON.stringify(owner)}`;
  return `${text}}`;
}

export interface ListQuery {
  /** Only this user's jobs; undefined for every user. */
  user?: string;
  /** Inclusive submission-time bounds (ms). */
  startMs?: number;
  endMs?: number;
}

export class JobStore {
  private readonly scripts: JobScripts;

  constructor(
    private readonly redis: ScriptedRedis,
    private readonly keys: Keys,
    eventRetention: number,
  ) {
    this.scripts = new JobScripts(redis, keys, eventRetention);
  }

  /**
   * Records a new job (status and times already set), received by `receiver`, and places it (see
   * create_job.lua): on a node, or in the fleet queue (`nodeId` ''). Without `placement` it is
   * placed on the receiving node whatever its slots (the store's own tests).
   */
  async create(
    job: Job,
    receiver: Writer,
    files: string[],
    placement?: Placement,
    idempotency?: Idempotency,
  ): Promise<Created> {
    const { id, user = "" } = job;
    const spec: Record<string, unknown> = { ...job };
    for (const k of [...MUTABLE, "id", "node"]) delete spec[k];
    const submittedMs = Date.parse(job.submissionTime ?? "") || 0;
    const fields = {
      spec: JSON.stringify(spec),
      user,
      name: job.name ?? "",
      files: JSON.stringify(files),
      ...storedFields({ ...job, host: undefined }),
    };
    const nowIso = job.submissionTime ?? new Date().toISOString();
    try {
      return await this.scripts.createJob({
        id,
        user,
        receiver,
        submittedMs,
        nowIso,
        placement,
        idempotency,
        fields,
      });
    } catch (err) {
      rethrow(err);
    }
  }

  /**
   * The owner changes a job. A new status must be a move the job lifecycle allows from the current
   * one (TRANSITIONS, src/api/status.ts; the script holds the same table). Throws StoreConflict
   * when refused: STATE with the current status, TERMINAL, FENCED, NOTOWNER, NOTFOUND.
   */
  async update(
    id: string,
    owner: Owner,
    fields: MutableFields,
    owned: OwnerFields = {},
  ): Promise<{ ver: number; eventId: string }> {
    // Every field named is written; one set to undefined is cleared ('' deletes it).
    const set: Record<string, string> = {};
    if (owned.files) set.files = JSON.stringify(owned.files);
    if (owned.outputs) set.outputs = owned.outputs;
    for (const key of MUTABLE) {
      const value = fields[key];
      if (key in fields) set[key] = value === undefined ? "" : stored(key, value);
    }
    try {
      return await this.scripts.updateJob({ id, owner, fields: set });
    } catch (err) {
      rethrow(err);
    }
  }

  async get(id: string): Promise<StoredJob | undefined> {
    return decodeJob(id, await whileAvailable(this.redis.hgetall(this.keys.job(id))));
  }

  /** Reads many jobs (bounded round trips), skipping ids that vanished (expired) meanwhile. */
  async getMany(ids: readonly string[]): Promise<StoredJob[]> {
    const out: StoredJob[] = [];
    for await (const batch of this.readBatches(ids)) out.push(...batch);
    return out;
  }

  /**
   * Reads the jobs `ids` names, in that order, one pipeline of `batchSize` at a time, skipping ids
   * that vanished (expired) meanwhile. Callers that serve each batch before asking for the next
   * hold one batch of decoded jobs, however many jobs there are: at 10,000 jobs, reading them all
   * at once grew the heap by ~60 MB, which V8 then kept.
   * `summary`: see `decodeSummary`; reads a few short fields instead of the whole hash.
   */
  async *readBatches(
    ids: readonly string[],
    opts: { batchSize?: number; summary?: boolean } = {},
  ): AsyncGenerator<StoredJob[], void, undefined> {
    const size = opts.batchSize ?? READ_BATCH;
    for (let i = 0; i < ids.length; i += size) {
      const chunk = ids.slice(i, i + size);
      const pipe = this.redis.pipeline();
      for (const id of chunk) {
        if (opts.summary) pipe.hmget(this.keys.job(id), ...SUMMARY_FIELDS);
        else pipe.hgetall(this.keys.job(id));
      }
      const res = (await whileAvailable(pipe.exec())) ?? [];
      const out: StoredJob[] = [];
      res.forEach(([err, reply], j) => {
        // A pipeline resolves even when Redis went away mid-way: each command carries the error.
        if (err) throw isUnavailable(err) ? redisUnavailable(err) : err;
        const id = chunk[j]!;
        const job = opts.summary
          ? decodeSummary(id, reply as (string | null)[])
          : decodeJob(id, reply as Record<string, string>);
        if (job) out.push(job);
      });
      yield out;
    }
  }

  /**
   * Listing reads (read_jobs.lua): the jobs `ids` names, in that order, `batchSize` per call (one
   * call per batch, not one command per job), skipping expired ones and those whose status is not
   * among `statuses` (when given) or whose spec lacks one of `needles`. Values are LIST_FIELDS, or
   * SUMMARY_FIELDS with `summary` (then `needles` must be empty: there is no spec).
   */
  async *readListed(
    ids: readonly string[],
    opts: {
      summary?: boolean;
      statuses?: readonly string[] | undefined;
      needles?: readonly string[] | undefined;
      batchSize?: number;
    } = {},
  ): AsyncGenerator<ListedJob[], void, undefined> {
    const size = opts.batchSize ?? LIST_BATCH;
    const fields: readonly string[] = opts.summary ? SUMMARY_FIELDS : LIST_FIELDS;
    const width = fields.length + 1;
    const read = (from: number) =>
      whileAvailable(
        this.scripts.readJobs({
          ids: ids.slice(from, from + size),
          fields,
          statuses: opts.statuses,
          needles: opts.summary ? undefined : opts.needles,
        }),
      );
    // The next batch is asked for before this one is handed on: Redis reads it meanwhile.
    let next = ids.length > 0 ? read(0) : undefined;
    for (let i = 0; next !== undefined; i += size) {
      const flat = await next;
      next = i + size < ids.length ? read(i + size) : undefined;
      // A caller that stops early leaves the read ahead unanswered: its failure is nobody's.
      next?.catch(() => undefined);
      const out: ListedJob[] = [];
      for (let j = 0; j + width <= flat.length; j += width) {
        out.push({ id: String(flat[j]), values: flat.slice(j + 1, j + width) });
      }
      yield out;
    }
  }

  /** Jobs from the submission-time index (by user when given): never a scan of every key. */
  async list(q: ListQuery): Promise<StoredJob[]> {
    return this.getMany(await this.listIds(q));
  }

  /** Ids from the submission-time index (by user when given), in submission order. */
  async listIds(q: ListQuery): Promise<string[]> {
    const key = q.user === undefined ? this.keys.jobsAll : this.keys.jobsByUser(q.user);
    return whileAvailable(this.redis.zrangebyscore(key, q.startMs ?? "-inf", q.endMs ?? "+inf"));
  }

  /** The unfinished jobs a node owns. */
  async unfinishedOf(nodeId: string): Promise<string[]> {
    return whileAvailable(this.redis.smembers(this.keys.nodeJobs(nodeId)));
  }

  /** Settles a lost node's unfinished jobs: Failed, or back to the queue when never started. */
  async settleLost(
    nodeId: string,
    lostAfterMs: number,
    message: string,
    nowIso: string,
  ): Promise<Settlement> {
    const statusMessage = truncateChars(message, MAX_STATUS_MESSAGE_LENGTH);
    const requeueMessage = truncateChars(
      `Queued again: ${message.charAt(0).toLowerCase()}${message.slice(1)} before it started the job`,
      MAX_STATUS_MESSAGE_LENGTH,
    );
    return this.scripts.settleLost({ nodeId, lostAfterMs, statusMessage, requeueMessage, nowIso });
  }

  /**
   * Takes queued jobs for `node` (up to its free slots and `max`); they are its to start now.
   * `queueEmpty`: nothing was queued for any node.
   */
  async claim(a: ClaimArgs): Promise<ClaimResult> {
    try {
      return await this.scripts.claimJobs(a);
    } catch (err) {
      rethrow(err);
    }
  }

  /** The jobs peers placed on `node`, now its to start. */
  async takeInbox(node: Writer): Promise<string[]> {
    try {
      return await this.scripts.takeInbox(node);
    } catch (err) {
      rethrow(err);
    }
  }

  /** Gives the jobs peers placed on `node` (draining) back to the fleet queue. */
  async releaseInbox(node: Writer, message: string, nowIso: string): Promise<number> {
    try {
      return await this.scripts.releaseInbox(node, message, nowIso);
    } catch (err) {
      rethrow(err);
    }
  }

  /** Cancels a job waiting in the fleet queue; StoreConflict OWNED <node> when a node took it first. */
  async cancelQueued(id: string, message: string, nowIso: string): Promise<void> {
    try {
      await this.scripts.cancelQueued(id, message, nowIso);
    } catch (err) {
      rethrow(err);
    }
  }

  /** Jobs waiting in the fleet queue, by queue (a job naming several counts under `a,b`). */
  async queueDepth(): Promise<Map<string, number>> {
    const classes = await whileAvailable(this.redis.hgetall(this.keys.queueClasses));
    const ids = Object.keys(classes);
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.zcard(this.keys.queueClass(id));
    const res = ids.length ? ((await whileAvailable(pipe.exec())) ?? []) : [];
    const depth = new Map<string, number>();
    ids.forEach((id, i) => {
      const queue = (JSON.parse(classes[id]!) as { q: string[] }).q.join(",");
      depth.set(queue, (depth.get(queue) ?? 0) + Number(res[i]?.[1] ?? 0));
    });
    return depth;
  }

  /**
   * Whether `replicas` replicas have every write this connection made so far (Redis `WAIT`), within
   * `timeoutMs`. With asynchronous replication, a write the primary acknowledged but no replica has
   * yet is lost when a replica is promoted: what the fleet acknowledges must be confirmed first.
   */
  async replicated(replicas: number, timeoutMs: number): Promise<boolean> {
    if (replicas <= 0) return true;
    const acked = await whileAvailable(this.redis.wait(replicas, timeoutMs));
    return Number(acked) >= replicas;
  }

  /** Jobs placed on each node and not finished (each holds one of its slots). */
  async placedCounts(nodeIds: readonly string[]): Promise<number[]> {
    if (nodeIds.length === 0) return [];
    const pipe = this.redis.pipeline();
    for (const id of nodeIds) pipe.scard(this.keys.nodeJobs(id));
    const res = (await whileAvailable(pipe.exec())) ?? [];
    return res.map(([, n]) => Number(n ?? 0));
  }

  /** Removes terminal jobs last updated before `cutoffMs`; returns the files to delete locally. */
  async expire(cutoffMs: number, nodeId: string, max = 500): Promise<{ id: string; files: string[] }[]> {
    const expired = await this.scripts.expireJobs(cutoffMs, nodeId, max);
    return expired.map(({ id, files }) => ({ id, files: files ? (JSON.parse(files) as string[]) : [] }));
  }
}
