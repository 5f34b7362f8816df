// The fleet-wide job store: job records and their indexes in Redis. Any node reads any job;
// only the owner writes, through scripts that check its epoch (fencing).
import type { Job } from "../api/index.js";
import type { Keys } from "./keys.js";
import { isUnavailable, redisUnavailable, whileAvailable } from "./redis.js";
import { type ScriptedRedis, scriptError } from "./scripts.js";

/** Fields that change after submission; everything else lives in the immutable `spec`. */
export interface MutableFields {
  status?: string;
  statusMessage?: string;
  statusCode?: string;
  pid?: number;
  exitCode?: number;
  lastUpdateTime?: string;
}

const MUTABLE: readonly (keyof MutableFields)[] = [
  "status",
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
}

/** Why the store refused a write. */
export class StoreConflict extends Error {
  constructor(
    readonly kind: "NOTFOUND" | "NOTOWNER" | "FENCED" | "TERMINAL" | "STATE" | "EXISTS",
    readonly arg: string,
  ) {
    super(`${kind}${arg ? ` ${arg}` : ""}`);
    this.name = "StoreConflict";
  }
}

export interface Owner {
  nodeId: string;
  epoch: number;
}

function rethrow(err: unknown): never {
  const e = scriptError(err);
  if (e && ["NOTFOUND", "NOTOWNER", "FENCED", "TERMINAL", "STATE", "EXISTS"].includes(e.kind)) {
    throw new StoreConflict(e.kind as StoreConflict["kind"], e.arg);
  }
  throw isUnavailable(err) ? redisUnavailable(err) : err;
}

function fieldPairs(fields: MutableFields): string[] {
  const out: string[] = [];
  for (const k of MUTABLE) {
    const v = fields[k];
    if (v !== undefined) out.push(k, String(v));
  }
  return out;
}

/** Rebuilds the public Job from its hash: the spec plus the current mutable fields. */
export function decodeJob(id: string, h: Record<string, string>): StoredJob | undefined {
  if (!h.spec) return undefined;
  const { id: _stored, ...spec } = JSON.parse(h.spec) as Job;
  const job: Job = { id, ...spec };
  for (const k of MUTABLE) {
    const v = h[k];
    if (v === undefined || v === "") continue;
    (job as unknown as Record<string, unknown>)[k] = NUMERIC.has(k) ? Number(v) : v;
  }
  return {
    job,
    owner: h.owner ?? "",
    user: h.user ?? "",
    ver: Number(h.ver ?? 0),
    files: h.files ? (JSON.parse(h.files) as string[]) : [],
  };
}

export interface ListQuery {
  /** Only this user's jobs; undefined for every user. */
  user?: string;
  /** Inclusive submission-time bounds (ms). */
  startMs?: number;
  endMs?: number;
}

export class JobStore {
  constructor(
    private readonly redis: ScriptedRedis,
    private readonly keys: Keys,
    private readonly eventRetention: number,
  ) {}

  /** Records a new job (status and times already set) owned by `owner`; returns its first event id. */
  async create(job: Job, owner: Owner, files: string[]): Promise<string> {
    const { id, user = "" } = job;
    const spec: Record<string, unknown> = { ...job };
    for (const k of [...MUTABLE, "id"]) delete spec[k];
    const submittedMs = Date.parse(job.submissionTime ?? "") || 0;
    const k = this.keys;
    try {
      return (await this.redis.createJob(
        k.job(id),
        k.jobsAll,
        k.jobsByUser(user),
        k.nodeJobs(owner.nodeId),
        k.node(owner.nodeId),
        k.events,
        k.eventsLast,
        owner.epoch,
        this.eventRetention,
        k.eventsChannel,
        id,
        submittedMs,
        "spec",
        JSON.stringify(spec),
        "owner",
        owner.nodeId,
        "user",
        user,
        "name",
        job.name ?? "",
        "files",
        JSON.stringify(files),
        ...fieldPairs(job),
      )) as string;
    } catch (err) {
      rethrow(err);
    }
  }

  /**
   * The owner changes a job. `requireStatus` makes the change conditional on the current status
   * (e.g. Suspend only from Running). Throws StoreConflict when refused.
   */
  async update(
    id: string,
    owner: Owner,
    fields: MutableFields,
    requireStatus: readonly string[] = [],
  ): Promise<{ ver: number; eventId: string }> {
    const k = this.keys;
    const pairs: string[] = [];
    for (const key of MUTABLE) {
      if (key in fields) pairs.push(key, fields[key] === undefined ? "" : String(fields[key]));
    }
    try {
      const [ver, eventId] = (await this.redis.updateJob(
        k.job(id),
        k.nodeJobs(owner.nodeId),
        k.node(owner.nodeId),
        k.events,
        k.eventsLast,
        k.expiry,
        owner.nodeId,
        owner.epoch,
        this.eventRetention,
        k.eventsChannel,
        id,
        requireStatus.join(","),
        ...pairs,
      )) as [number, string];
      return { ver: Number(ver), eventId };
    } catch (err) {
      rethrow(err);
    }
  }

  async get(id: string): Promise<StoredJob | undefined> {
    return decodeJob(id, await whileAvailable(this.redis.hgetall(this.keys.job(id))));
  }

  /** Reads many jobs in one round trip, skipping ids that vanished (expired) meanwhile. */
  async getMany(ids: readonly string[]): Promise<StoredJob[]> {
    const out: StoredJob[] = [];
    const BATCH = 1000;
    for (let i = 0; i < ids.length; i += BATCH) {
      const chunk = ids.slice(i, i + BATCH);
      const pipe = this.redis.pipeline();
      for (const id of chunk) pipe.hgetall(this.keys.job(id));
      const res = (await whileAvailable(pipe.exec())) ?? [];
      res.forEach(([err, h], j) => {
        // A pipeline resolves even when Redis went away mid-way: each command carries the error.
        if (err) throw isUnavailable(err) ? redisUnavailable(err) : err;
        const job = decodeJob(chunk[j]!, h as Record<string, string>);
        if (job) out.push(job);
      });
    }
    return out;
  }

  /** Jobs from the submission-time index (by user when given): never a scan of every key. */
  async list(q: ListQuery): Promise<StoredJob[]> {
    const key = q.user === undefined ? this.keys.jobsAll : this.keys.jobsByUser(q.user);
    const ids = await whileAvailable(this.redis.zrangebyscore(key, q.startMs ?? "-inf", q.endMs ?? "+inf"));
    return this.getMany(ids);
  }

  /** The unfinished jobs a node owns. */
  async unfinishedOf(nodeId: string): Promise<string[]> {
    return whileAvailable(this.redis.smembers(this.keys.nodeJobs(nodeId)));
  }

  /** Settles a lost node's unfinished jobs as Failed; -1 not lost yet, -2 already settled. */
  async settleLost(nodeId: string, lostAfterMs: number, message: string, nowIso: string): Promise<number> {
    const k = this.keys;
    return Number(
      await this.redis.settleLost(
        k.node(nodeId),
        k.nodeJobs(nodeId),
        k.nodes,
        k.events,
        k.eventsLast,
        k.expiry,
        nodeId,
        lostAfterMs,
        this.eventRetention,
        k.eventsChannel,
        k.job(""),
        message,
        nowIso,
      ),
    );
  }

  /** Removes terminal jobs last updated before `cutoffMs`; returns the files to delete locally. */
  async expire(cutoffMs: number, nodeId: string, max = 500): Promise<{ id: string; files: string[] }[]> {
    const flat = (await this.redis.expireJobs(
      this.keys.expiry,
      this.keys.jobsAll,
      cutoffMs,
      `${this.keys.prefix}:`,
      nodeId,
      max,
    )) as string[];
    const out: { id: string; files: string[] }[] = [];
    for (let i = 0; i < flat.length; i += 2) {
      const files = flat[i + 1];
      out.push({ id: flat[i]!, files: files ? (JSON.parse(files) as string[]) : [] });
    }
    return out;
  }
}
