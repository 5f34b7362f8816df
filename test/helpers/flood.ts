// Many status events, fast, through the fleet's own event path: the scripts' `emit_event` (lib.lua:
// XADD to the stream, then PUBLISH with the predecessor's id), so every node's status bus delivers
// them exactly as it delivers real ones. Jobs are `flood-<n>` of one user, each event a new job.
// The flood jobs have no hashes: `emit_event` records each event id in a scratch hash (KEYS[1]) in
// place of the job's own.
import { readFileSync } from "node:fs";
import type { Redis } from "ioredis";
import { fleetKeys } from "../../src/cluster/keys.js";

const LIB = readFileSync(new URL("../../src/cluster/lua/lib.lua", import.meta.url), "utf8");
const SCRIPT = `${LIB}
local from = tonumber(ARGV[3])
for i = from, from + tonumber(ARGV[4]) - 1 do
  emit_event(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], {
    id = 'flood-' .. i, status = 'Running', ver = 1, user = ARGV[5], name = ARGV[6],
    statusMessage = ARGV[7], lastUpdateTime = '2026-01-01T00:00:00.000Z' })
end
return redis.call('GET', KEYS[3])
`;

export interface FloodOptions {
  /** The events' user (who may see them). */
  user?: string;
  /** The event's name and statusMessage, as long as the limits allow by default. */
  name?: string;
  statusMessage?: string;
  /** The stream's MAXLEN ~ for these appends. */
  retention?: number;
}

export class EventFlood {
  private next = 1;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly opts: FloodOptions = {},
  ) {}

  /** Number of events emitted so far (the last job is `flood-<emitted>`). */
  get emitted(): number {
    return this.next - 1;
  }

  /** Emits `count` events in one script run; returns the last event id. */
  async emit(count: number): Promise<string> {
    const k = fleetKeys(this.prefix);
    const last = (await this.redis.eval(
      SCRIPT,
      3,
      `${this.prefix}test:flood`,
      k.events,
      k.eventsLast,
      k.eventsChannel,
      this.opts.retention ?? 100_000,
      this.next,
      count,
      this.opts.user ?? "alice",
      this.opts.name ?? "n".repeat(1_024),
      this.opts.statusMessage ?? "m".repeat(1_024),
    )) as string;
    this.next += count;
    return last;
  }
}

/** Bytes one flood event takes as an NDJSON line, about. */
export const FLOOD_EVENT_BYTES = 2_200;
