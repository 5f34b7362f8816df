// The fleet's atomic multi-key updates: Lua scripts registered on a connection with ioredis
// `defineCommand` (EVALSHA, with ioredis falling back to EVAL after a Redis restart).
import { readFileSync } from "node:fs";
import type { Redis } from "ioredis";

const SCRIPTS = {
  createJob: { file: "create_job.lua", keys: 7 },
  updateJob: { file: "update_job.lua", keys: 6 },
  settleLost: { file: "settle_lost.lua", keys: 6 },
  registerNode: { file: "register_node.lua", keys: 2 },
  heartbeat: { file: "heartbeat.lua", keys: 2 },
  expireJobs: { file: "expire_jobs.lua", keys: 2 },
} as const;

type ScriptName = keyof typeof SCRIPTS;
type Arg = string | number;

/** A connection with the fleet's scripts defined on it. */
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
    redis.defineCommand(name, { numberOfKeys: keys, lua: src[name as ScriptName] });
  }
  return redis as ScriptedRedis;
}

/** Script error replies are words like `FENCED 7`; this gives the word and its argument. */
export function scriptError(err: unknown): { kind: string; arg: string } | undefined {
  if (!(err instanceof Error) || err.name !== "ReplyError") return undefined;
  const m = /^(?:ERR )?([A-Z]+)(?: (.*))?$/.exec(err.message.split("\n")[0] ?? "");
  return m ? { kind: m[1]!, arg: m[2] ?? "" } : undefined;
}
