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
    keys: ["job", "jobsAll", "jobsByUser", "ownerJobs", "ownerNode", "events", "eventsLast"],
  },
  updateJob: {
    file: "update_job.lua",
    keys: ["job", "ownerJobs", "ownerNode", "events", "eventsLast", "expiry"],
  },
  settleLost: {
    file: "settle_lost.lua",
    keys: ["node", "nodeJobs", "nodes", "events", "eventsLast", "expiry"],
  },
  registerNode: { file: "register_node.lua", keys: ["node", "nodes"] },
  heartbeat: { file: "heartbeat.lua", keys: ["node", "nodes"] },
  expireJobs: { file: "expire_jobs.lua", keys: ["expiry", "jobsAll"] },
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

export interface CreateJobArgs {
  id: string;
  user: string;
  owner: Writer;
  submittedMs: number;
  /** Every field of the new hash (spec, owner, user, name, files and the mutable ones), stored as given. */
  fields: Readonly<Record<string, Arg>>;
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
  /** lastUpdateTime of the jobs it fails (RFC 3339). */
  nowIso: string;
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

  /** Returns the id of the job's first event; errors FENCED <epoch> or EXISTS (see scriptError). */
  async createJob(a: CreateJobArgs): Promise<string> {
    const k = this.keys;
    const reply = await run(
      this.redis,
      "createJob",
      {
        job: k.job(a.id),
        jobsAll: k.jobsAll,
        jobsByUser: k.jobsByUser(a.user),
        ownerJobs: k.nodeJobs(a.owner.nodeId),
        ownerNode: k.node(a.owner.nodeId),
        events: k.events,
        eventsLast: k.eventsLast,
      },
      [a.owner.epoch, this.eventRetention, k.eventsChannel, a.id, a.submittedMs, ...flatPairs(a.fields)],
    );
    return String(reply);
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
      [a.owner.nodeId, a.owner.epoch, this.eventRetention, k.eventsChannel, a.id, ...flatPairs(a.fields)],
    )) as [number, string];
    return { ver: Number(ver), eventId: String(eventId) };
  }

  /** The number of jobs settled, or -1 (not lost yet on Redis time) / -2 (this epoch already settled). */
  async settleLost(a: SettleLostArgs): Promise<number> {
    const k = this.keys;
    const reply = await run(
      this.redis,
      "settleLost",
      {
        node: k.node(a.nodeId),
        nodeJobs: k.nodeJobs(a.nodeId),
        nodes: k.nodes,
        events: k.events,
        eventsLast: k.eventsLast,
        expiry: k.expiry,
      },
      [
        a.nodeId,
        a.lostAfterMs,
        this.eventRetention,
        k.eventsChannel,
        k.scriptPrefixes.job,
        a.statusMessage,
        a.nowIso,
      ],
    );
    return Number(reply);
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
