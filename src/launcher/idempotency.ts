// Idempotent submission: a client that sends `Idempotency-Key` with a submission and repeats it
// (after a timeout, a 503, a dropped connection) gets the job the first one made, never a second
// job. The key is kept per user for LAUNCHER_JOB_EXPIRY_HOURS (create_job.lua checks and records
// it atomically with the job); the same key with a different request is refused.
import { createHash } from "node:crypto";
import { ApiError, ErrCode, type Job } from "../api/index.js";

/** The longest key accepted (the IETF draft's keys are UUIDs; a client may use its own scheme). */
export const MAX_IDEMPOTENCY_KEY_CHARS = 255;

/**
 * 400 naming the header unless the key is 1–255 visible ASCII characters (0x21–0x7E): no spaces,
 * tabs, control characters, or anything beyond ASCII (Node hands header bytes 0x80–0xFF over as
 * Latin-1 characters; they are refused here, never stored).
 */
export function checkIdempotencyKey(key: string): string {
  if (key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY_CHARS || !/^[\x21-\x7e]+$/.test(key)) {
    throw new ApiError(
      ErrCode.InvalidRequest,
      `Idempotency-Key must be 1 to ${MAX_IDEMPOTENCY_KEY_CHARS} visible ASCII characters (no spaces)`,
    );
  }
  return key;
}

/**
 * The key of a submission as HTTP delivers the header: absent, or checked as above. Sent twice, Node
 * joins the values with ", " (a space: refused); an array (never made by Node for this header) is
 * refused too. Checked before the body, so a bad key is a 400 whatever the job says.
 */
export function idempotencyKeyHeader(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) {
    throw new ApiError(ErrCode.InvalidRequest, "Idempotency-Key must be sent at most once");
  }
  return checkIdempotencyKey(value);
}

/** JSON with object keys sorted, so equal requests give equal digests whatever their key order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/** What makes two submissions "the same request": the job as submitted and whose it is. */
export function requestDigest(job: Job, user: string): string {
  return createHash("sha256").update(canonical({ job, user })).digest("hex");
}
