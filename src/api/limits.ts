// What one job submission may hold (docs/http-api.md "Users, privileges and limits"), in one place. Every
// front door (HTTP, the Posit plugin) goes through the request layer's `checkSubmission`
// (src/launcher/requests/), which applies `checkJobLimits`; the request schemas also state the
// caps, so the OpenAPI document shows them.
import { ApiError, ErrCode } from "./errors.js";
import type { Job } from "./job.js";

/** Longest job `name`, in characters (Unicode code points, as JSON Schema's `maxLength` counts). */
export const MAX_NAME_LENGTH = 1_024;
/** Most `tags` on one job. */
export const MAX_TAGS = 64;
/** Longest tag, in characters. */
export const MAX_TAG_LENGTH = 256;
/** Longest `user`, in characters: the same bound as a token's `sub`. */
export const MAX_USER_LENGTH = 256;
/**
 * Longest `statusMessage` stored with a job and copied into its status events (the node writes
 * these, e.g. a launch failure naming a path); a longer one is cut to this length.
 */
export const MAX_STATUS_MESSAGE_LENGTH = 1_024;
/** Largest `stdin`, in UTF-8 bytes. */
export const MAX_STDIN_BYTES = 1024 * 1024;
// Every list of a job has a cap, stated as `maxItems` in the submission schema
// (src/launcher/requests/schemas.ts), so one check refuses an over-long list with a 400 naming it,
// over HTTP and through the plugin alike (docs/http-api.md "Users, privileges and limits").
/** Most `args`. */
export const MAX_ARGS = 10_000;
/** Most `environment` entries. */
export const MAX_ENVIRONMENT = 10_000;
/**
 * Most `queues`. Each must be one some node of the fleet serves (src/launcher/placement.ts), and
 * the list is part of the job's fleet-queue class, stored with every job waiting in it.
 */
export const MAX_QUEUES = 100;
/** Most `placementConstraints`: each must match a label of one node, and they too are part of the class. */
export const MAX_PLACEMENT_CONSTRAINTS = 100;
/** Most `metadata` keys (an object, not a list, but as open-ended). */
export const MAX_METADATA_KEYS = 1_000;
/** Most entries of every other list of a job (exposedPorts, mounts, config, resourceLimits, supplementalGroupIds). */
export const MAX_LIST = 1_000;

/** Whether `s` has more than `max` code points, without counting a long string to its end. */
export function longerThan(s: string, max: number): boolean {
  if (s.length <= max) return false; // a code point is one or two UTF-16 units
  if (s.length > 2 * max) return true;
  let n = 0;
  for (const _ of s) if (++n > max) return true;
  return false;
}

/** `s` cut to at most `max` code points (never in the middle of a surrogate pair). */
export function truncateChars(s: string, max: number): string {
  if (!longerThan(s, max)) return s;
  let n = 0;
  let end = 0;
  for (const ch of s) {
    if (++n > max) break;
    end += ch.length;
  }
  return s.slice(0, end);
}

/** InvalidRequest with the field path (the message's start) under `at`. */
function invalidField(at: string | undefined, message: string): ApiError {
  return new ApiError(ErrCode.InvalidRequest, at ? `${at}/${message}` : message);
}

/** Fields handed to the operating system as C strings, where a NUL byte would cut the value short. */
const C_STRING_FIELDS = ["command", "exe", "workingDirectory", "stdoutFile", "stderrFile", "user"] as const;

/**
 * The caps and C-string rules of a submission; throws InvalidRequest naming the first field that
 * breaks one (`name`, `tags/3`, `environment/0/name`, …), after `at/` when given (`body/name`), so
 * the message reads like the schema errors of the same front door. Values that are not strings
 * are left to the schema checks that run before.
 */
export function checkJobLimits(job: Job, at?: string): void {
  const invalid = (message: string) => invalidField(at, message);
  if (typeof job.name === "string" && longerThan(job.name, MAX_NAME_LENGTH)) {
    throw invalid(`name must be at most ${MAX_NAME_LENGTH} characters`);
  }
  if (typeof job.user === "string" && longerThan(job.user, MAX_USER_LENGTH)) {
    throw invalid(`user must be at most ${MAX_USER_LENGTH} characters`);
  }
  const tags = job.tags ?? [];
  if (tags.length > MAX_TAGS) throw invalid(`tags: at most ${MAX_TAGS} tags (got ${tags.length})`);
  tags.forEach((tag, i) => {
    if (typeof tag === "string" && longerThan(tag, MAX_TAG_LENGTH)) {
      throw invalid(`tags/${i} must be at most ${MAX_TAG_LENGTH} characters`);
    }
  });
  for (const field of C_STRING_FIELDS) {
    const value = job[field];
    if (typeof value === "string" && value.includes("\0")) {
      throw invalid(`${field} must not contain NUL bytes`);
    }
  }
  (job.args ?? []).forEach((arg, i) => {
    if (typeof arg === "string" && arg.includes("\0")) throw invalid(`args/${i} must not contain NUL bytes`);
  });
  (job.environment ?? []).forEach((env, i) => {
    const { name, value } = env ?? {};
    if (typeof name === "string") {
      if (name === "") throw invalid(`environment/${i}/name must not be empty`);
      if (name.includes("\0")) throw invalid(`environment/${i}/name must not contain NUL bytes`);
      if (name.includes("=")) throw invalid(`environment/${i}/name must not contain "="`);
    }
    if (typeof value === "string" && value.includes("\0")) {
      throw invalid(`environment/${i}/value must not contain NUL bytes`);
    }
  });
}
