// The fleet's atomic multi-key updates: Lua scripts registered on a connection with ioredis
// `defineCommand` (EVALSHA, with ioredis falling back to EVAL after a Redis restart).
//
// Typed wrappers, as BullMQ does it: SCRIPTS names each script's KEYS in order (their count is the
// list's length, nowhere else), every key value comes from keys.ts, and each script has one method
// (JobScripts, NodeScripts) taking named values and returning a typed reply. Nothing else should
// call the positional commands. Each .lua file's header lists the same key names
// (test/cluster/scripts.test.ts checks they agree).
import { readFileSync } from "node:fs";
import type { Redis } from "ioredis";
import type { Keys } from "./keys.js";

/** Each script's file and the names of its KEYS, in KEYS[1], KEYS[2], … order. */
export const SCRIPTS = {
  createJob: {
    file: "create_job.lua",
    keys: [
      "job",
      "jobsAll",
      "jobsByUser",
      "receiverNode",
      "events",
      "eventsLast",
      "nodes",
      "queueClasses",
      "queueClass",
      "queueSeq",
      "queueHeads",
      "idempotency",
    ],
  },
  updateJob: {
    file: "update_job.lua",
    keys: ["job", "ownerJobs", "ownerNode", "events", "eventsLast", "expiry"],
  },
  settleLost: {
    file: "settle_lost.lua",
    keys: [
      "node",
      "nodeJobs",
      "nodes",
      "events",
      "eventsLast",
      "expiry",
      "inbox",
      "queueClasses",
      "queueHeads",
    ],
  },
  claimJobs: {
    file: "claim_jobs.lua",
    keys: ["node", "nodeJobs", "nodes", "queueClasses", "events", "eventsLast", "queueHeads"],
  },
  takeInbox: { file: "take_inbox.lua", keys: ["node", "inbox"] },
  releaseInbox: {
    file: "release_inbox.lua",
    keys: ["node", "inbox", "nodeJobs", "queueClasses", "events", "eventsLast", "queueHeads"],
  },
  cancelQueued: {
    file: "cancel_queued.lua",
    keys: ["job", "queueClasses", "events", "eventsLast", "expiry", "queueHeads"],
  },
  registerNode: { file: "register_node.lua", keys: ["node", "nodes"] },
  heartbeat: { file: "heartbeat.lua", keys: ["node", "nodes"] },
  expireJobs: { file: "expire_jobs.lua", keys: ["expiry", "jobsAll"] },
  readJobs: { file: "read_jobs.lua", keys: [] },
} as const satisfies Record<string, { file: string; keys: readonly string[] }>;

export type ScriptName = keyof typeof SCRIPTS;
type Arg = string | number;
/** The named KEYS of one script, each a key from keys.ts. */
type KeysOf<N extends ScriptName> = Record<(typeof SCRIPTS)[N]["keys"][number], string>;

/** A connection with the fleet's scripts defined on it (call them through JobScripts / NodeScripts). */
export type ScriptedRedis = Redis & { [K in ScriptName]: (...args: Arg[]) => Promise<unknown> };

let sources: Record<ScriptName, string> | undefined;

function loadSources(): Record<ScriptName, string> {
  if (sources) return sources;
  const read = (file: string) => readFileSync(new URL(`./lua/${file}`, import.meta.url), "utf8");
  const lib = read("lib.lua");
  const out = {} as Record<ScriptName, string>;
  for (const [name, { file }] of Object.entries(SCRIPTS)) out[name as ScriptName] = `${lib}\n${read(file)}`;
  sources = out;
  return out;
}

export function defineScripts(redis: Redis): ScriptedRedis {
  const src = loadSources();
  for (const [name, { keys }] of Object.entries(SCRIPTS)) {
    redis.defineCommand(name, { numberOfKeys: keys.length, lua: src[name as ScriptName] });
  }
  return redis as ScriptedRedis;
}

/** Runs a script with its keys in the order SCRIPTS declares them. */
function run<N extends ScriptName>(redis: ScriptedRedis, name: N, keys: KeysOf<N>, argv: readonly Arg[]) {
  const named = keys as Record<string, string>;
  const ordered = (SCRIPTS[name].keys as readonly string[]).map((k) => named[k]!);
  return redis[name](...ordered, ...argv);
}

/** Script error replies are words like `FENCED 7`; this gives the word and its argument. */
export function scriptError(err: unknown): { kind: string; arg: string } | undefined {
  if (!(err instanceof Error) || err.name !== "ReplyError") return undefined;
  const m = /^(?:ERR )?([A-Z]+)(?: (.*))?$/.exec(err.message.split("\n")[0] ?? "");
  return m ? { kind: m[1]!, arg: m[2] ?? "" } : undefined;
}

/** A node and the epoch its writes carry (fencing). */
export interface Writer {
  nodeId: string;
  epoch: number;
}

/** Flattens field/value pairs for a script's trailing ARGV. */
function flatPairs(fields: Readonly<Record<string, Arg>>): Arg[] {
  return Object.entries(fields).flat();
}

/** How a new job is placed (see create_job.lua). */
export interface Placement {
  /** Nodes that may run it, as the receiving node last saw them; the receiving node first if eligible. */
  candidates: readonly string[];
  /** Its queue class (see src/launcher/placement.ts): the id and the descriptor JSON. */
  classId: string;
  classDescriptor: string;
  /** The status message of the job when it waits: for a free slot, or for its user's cap. */
  queuedMessage: string;
  userCapMessage: string;
  offlineAfterMs: number;
  /** LAUNCHER_MAX_RUNNING_JOBS_PER_USER (0: no limit). */
  perUserCap: number;
}

/** The placement of a job pinned to its receiving node (no candidates, no queue). */
const PINNED: Placement = {
  candidates: [],
  classId: "pinned",
  classDescriptor: '{"q":[],"c":[],"u":""}',
  queuedMessage: "",
  userCapMessage: "",
  offlineAfterMs: 0,
  perUserCap: 0,
};

export interface CreateJobArgs {
  id: string;
  user: string;
  /** The receiving node: its epoch fences the write, and it wins ties. */
  receiver: Writer;
  submittedMs: number;
  nowIso: string;
  /** Undefined: the job is placed on the receiving node whatever its slots (store unit tests). */
  placement: Placement | undefined;
  /** The submission's Idempotency-Key, if it has one. */
  idempotency: Idempotency | undefined;
  /** Every field of the new hash (spec, user, name, files and the mutable ones), stored as given. */
  fields: Readonly<Record<string, Arg>>;
}

/** A submission's Idempotency-Key: the same key and user within `ttlMs` give the same job. */
export interface Idempotency {
  key: string;
  /** Digest of the request: the same key with another request is refused. */
  digest: string;
  ttlMs: number;
}

/** Where a new job went: the node it was placed on ('' when it waits in the fleet queue). */
export interface Created {
  /** Set when the Idempotency-Key had already made a job: its id (nothing else is set). */
  replayOf?: string;
  eventId: string;
  nodeId: string;
  host: string;
  /** What a queued job waits for ('' when placed). */
  statusMessage: string;
}

export interface ClaimArgs {
  node: Writer;
  /** The most jobs to take (the script also stops at the node's free slots). */
  max: number;
  perUserCap: number;
  offlineAfterMs: number;
  nowIso: string;
  statusMessage: string;
}

/** A job taken from the fleet queue, and when it was queued (Redis time, ms). */
export interface Claimed {
  id: string;
  queuedMs: number;
}

/** What a claim took, and whether the fleet queue was empty (nothing queued for any node). */
export interface ClaimResult {
  claimed: Claimed[];
  queueEmpty: boolean;
}

export interface UpdateJobArgs {
  id: string;
  owner: Writer;
  /** Fields to write; an empty value deletes the field. */
  fields: Readonly<Record<string, string>>;
}

export interface SettleLostArgs {
  nodeId: string;
  lostAfterMs: number;
  statusMessage: string;
  /** The status message of a job that goes back to the queue. */
  requeueMessage: string;
  /** lastUpdateTime of the jobs it settles (RFC 3339). */
  nowIso: string;
}

/** What settling a lost node did, or why it did nothing. */
export type Settlement = { failed: number; requeued: number } | "not-lost" | "already-settled";

export interface ReadJobsArgs {
  ids: readonly string[];
  /** Hash fields to read, `ver` first (every job has it: none means the job expired). */
  fields: readonly string[];
  /** Keep only jobs with one of these statuses (none: any). */
  statuses?: readonly string[] | undefined;
  /** Keep only jobs whose `spec` contains every one of these texts. */
  needles?: readonly string[] | undefined;
}

/** A job `expire_jobs` removed, with its `files` field as stored ('' unless this node owned it). */
export interface ExpiredJob {
  id: string;
  files: string;
}

/** The job scripts: every write of a job record, each with its status event. */
export class JobScripts {
  constructor(
    private readonly redis: ScriptedRedis,
    private readonly keys: Keys,
    /** MAXLEN ~ of the events stream. */
    private readonly eventRetention: number,
  ) {}

  /** Records and places a new job; errors FENCED <epoch> or EXISTS (see scriptError). */
  async createJob(a: CreateJobArgs): Promise<Created> {
    const k = this.keys;
    const p = a.placement ?? PINNED;
    const reply = (await run(
      this.redis,
      "createJob",
      {
        job: k.job(a.id),
        jobsAll: k.jobsAll,
        jobsByUser: k.jobsByUser(a.user),
        receiverNode: k.node(a.receiver.nodeId),
        events: k.events,
        eventsLast: k.eventsLast,
        nodes: k.nodes,
        queueClasses: k.queueClasses,
        queueClass: k.queueClass(p.classId),
        queueSeq: k.queueSeq,
        queueHeads: k.queueHeads,
        idempotency: k.idempotency(a.user, a.idempotency?.key ?? ""),
      },
      [
        a.receiver.epoch,
        this.eventRetention,
        k.eventsChannel,
        a.id,
        a.submittedMs,
        a.receiver.nodeId,
        k.scriptPrefixes.node,
        k.scriptSuffixes.nodeJobs,
        k.scriptSuffixes.nodeInbox,
        k.scriptPrefixes.userActive,
        p.offlineAfterMs,
        p.perUserCap,
        k.queueChannel,
        p.classId,
        p.classDescriptor,
        p.queuedMessage,
        p.userCapMessage,
        a.nowIso,
        k.scriptPrefixes.queueClass,
        a.idempotency?.digest ?? "",
        a.idempotency?.ttlMs ?? 0,
        a.placement ? p.candidates.length : -1,
        ...p.candidates,
        ...flatPairs(a.fields),
      ],
    )) as string[];
    const [eventId, nodeId, host, statusMessage, replayOf] = reply.map(String) as [
      string,
      string,
      string,
      string,
      string,
    ];
    return { eventId, nodeId, host, statusMessage, ...(replayOf ? { replayOf } : {}) };
  }

  /** Errors NOTFOUND, NOTOWNER, FENCED <epoch>, TERMINAL <status>, STATE <status> (see scriptError). */
  async updateJob(a: UpdateJobArgs): Promise<{ ver: number; eventId: string }> {
    const k = this.keys;
    const [ver, eventId] = (await run(
      this.redis,
      "updateJob",
      {
        job: k.job(a.id),
        ownerJobs: k.nodeJobs(a.owner.nodeId),
        ownerNode: k.node(a.owner.nodeId),
        events: k.events,
        eventsLast: k.eventsLast,
        expiry: k.expiry,
      },
      [
        a.owner.nodeId,
        a.owner.epoch,
        this.eventRetention,
        k.eventsChannel,
        a.id,
        k.scriptPrefixes.userActive,
        ...flatPairs(a.fields),
      ],
    )) as [number, string];
    return { ver: Number(ver), eventId: String(eventId) };
  }

  /** Fails (or sends back to the queue) a lost node's jobs, unless it is not lost or already settled. */
  async settleLost(a: SettleLostArgs): Promise<Settlement> {
    const k = this.keys;
    const reply = (await run(
      this.redis,
      "settleLost",
      {
        node: k.node(a.nodeId),
        nodeJobs: k.nodeJobs(a.nodeId),
        nodes: k.nodes,
        events: k.events,
        eventsLast: k.eventsLast,
        expiry: k.expiry,
        inbox: k.nodeInbox(a.nodeId),
        queueClasses: k.queueClasses,
        queueHeads: k.queueHeads,
      },
      [
        a.nodeId,
        a.lostAfterMs,
        this.eventRetention,
        k.eventsChannel,
        k.scriptPrefixes.job,
        a.statusMessage,
        a.nowIso,
        k.scriptPrefixes.queueClass,
        k.scriptPrefixes.userActive,
        k.queueChannel,
        a.requeueMessage,
      ],
    )) as number | [number, number];
    if (reply === -1) return "not-lost";
    if (!Array.isArray(reply)) return "already-settled";
    return { failed: Number(reply[0]), requeued: Number(reply[1]) };
  }

  /** Takes the oldest queued jobs `node` may run, up to its free slots; errors FENCED <epoch>. */
  async claimJobs(a: ClaimArgs): Promise<ClaimResult> {
    const k = this.keys;
    const reply = (await run(
      this.redis,
      "claimJobs",
      {
        node: k.node(a.node.nodeId),
        nodeJobs: k.nodeJobs(a.node.nodeId),
        nodes: k.nodes,
        queueClasses: k.queueClasses,
        events: k.events,
        eventsLast: k.eventsLast,
        queueHeads: k.queueHeads,
      },
      [
        a.node.nodeId,
        a.node.epoch,
        this.eventRetention,
        k.eventsChannel,
        k.scriptPrefixes.job,
        k.scriptPrefixes.queueClass,
        k.scriptPrefixes.userActive,
        a.perUserCap,
        a.max,
        a.offlineAfterMs,
        a.nowIso,
        a.statusMessage,
      ],
    )) as string[] | 0;
    if (reply === 0) return { claimed: [], queueEmpty: true };
    const claimed: Claimed[] = [];
    for (let i = 0; i < reply.length; i += 2) claimed.push({ id: reply[i]!, queuedMs: Number(reply[i + 1]) });
    return { claimed, queueEmpty: false };
  }

  /** The jobs peers placed on `node`, now marked launching; errors FENCED <epoch>. */
  async takeInbox(node: Writer): Promise<string[]> {
    const k = this.keys;
    const ids = await run(
      this.redis,
      "takeInbox",
      { node: k.node(node.nodeId), inbox: k.nodeInbox(node.nodeId) },
      [node.nodeId, node.epoch, k.scriptPrefixes.job],
    );
    return (ids as string[]).map(String);
  }

  /** A draining node gives the jobs placed on it back to the queue; returns how many. */
  async releaseInbox(node: Writer, statusMessage: string, nowIso: string): Promise<number> {
    const k = this.keys;
    const n = await run(
      this.redis,
      "releaseInbox",
      {
        node: k.node(node.nodeId),
        inbox: k.nodeInbox(node.nodeId),
        nodeJobs: k.nodeJobs(node.nodeId),
        queueClasses: k.queueClasses,
        events: k.events,
        eventsLast: k.eventsLast,
        queueHeads: k.queueHeads,
      },
      [
        node.nodeId,
        node.epoch,
        this.eventRetention,
        k.eventsChannel,
        k.scriptPrefixes.job,
        k.scriptPrefixes.queueClass,
        k.scriptPrefixes.userActive,
        k.queueChannel,
        statusMessage,
        nowIso,
      ],
    );
    return Number(n);
  }

  /** Cancels a queued job; errors NOTFOUND, OWNED <node>, TERMINAL <status> (see scriptError). */
  async cancelQueued(
    id: string,
    statusMessage: string,
    nowIso: string,
  ): Promise<{ ver: number; eventId: string }> {
    const k = this.keys;
    const [ver, eventId] = (await run(
      this.redis,
      "cancelQueued",
      {
        job: k.job(id),
        queueClasses: k.queueClasses,
        events: k.events,
        eventsLast: k.eventsLast,
        expiry: k.expiry,
        queueHeads: k.queueHeads,
      },
      [id, k.scriptPrefixes.queueClass, this.eventRetention, k.eventsChannel, statusMessage, nowIso],
    )) as [number, string];
    return { ver: Number(ver), eventId: String(eventId) };
  }

  /** Removes up to `max` terminal jobs older than `cutoffMs` that `nodeId` (or no live record) owns. */
  async expireJobs(cutoffMs: number, nodeId: string, max: number): Promise<ExpiredJob[]> {
    const k = this.keys;
    const p = k.scriptPrefixes;
    const flat = (await run(this.redis, "expireJobs", { expiry: k.expiry, jobsAll: k.jobsAll }, [
      cutoffMs,
      p.job,
      p.node,
      p.jobsByUser,
      nodeId,
      max,
    ])) as string[];
    const out: ExpiredJob[] = [];
    for (let i = 0; i < flat.length; i += 2) out.push({ id: flat[i]!, files: flat[i + 1] ?? "" });
    return out;
  }

  /**
   * `fields` (`ver` first) of the jobs `ids` names, in that order, leaving out expired jobs and
   * those `statuses` (when not empty; needs `status` among the fields) or `needles` (text the
   * `spec` field must contain) rule out. A flat list: id, then its values, for each job kept.
   */
  async readJobs(a: ReadJobsArgs): Promise<(string | null)[]> {
    const statuses = a.statuses ?? [];
    const needles = a.needles ?? [];
    return (await run(this.redis, "readJobs", {}, [
      this.keys.scriptPrefixes.job,
      a.fields.length,
      ...a.fields,
      statuses.length,
      ...statuses,
      needles.length,
      ...needles,
      ...a.ids,
    ])) as (string | null)[];
  }
}

/** What a heartbeat learnt: `fenced` when `epoch` (the current one) is no longer the caller's. */
export interface Beat {
  fenced: boolean;
  epoch: number;
  /** Redis server time (ms) when the script ran. */
  nowMs: number;
}

/** The node record scripts: registration and heartbeat. */
export class NodeScripts {
  constructor(
    private readonly redis: ScriptedRedis,
    private readonly keys: Keys,
  ) {}

  /** A new epoch for `nodeId`, and Redis server time (ms); `fields` go into the record. */
  async registerNode(
    nodeId: string,
    fields: Readonly<Record<string, Arg>>,
  ): Promise<{ epoch: number; nowMs: number }> {
    const k = this.keys;
    const [epoch, now] = (await run(this.redis, "registerNode", { node: k.node(nodeId), nodes: k.nodes }, [
      nodeId,
      k.nodesChannel,
      ...flatPairs(fields),
    ])) as [number, number];
    return { epoch: Number(epoch), nowMs: Number(now) };
  }

  async heartbeat(writer: Writer, status: string, runningJobs: number): Promise<Beat> {
    const k = this.keys;
    const [ok, epoch, now] = (await run(
      this.redis,
      "heartbeat",
      { node: k.node(writer.nodeId), nodes: k.nodes },
      [writer.nodeId, writer.epoch, k.nodesChannel, status, runningJobs],
    )) as [number, number, number];
    return { fenced: Number(ok) !== 1, epoch: Number(epoch), nowMs: Number(now) };
  }
}
