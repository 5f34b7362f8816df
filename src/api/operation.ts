/**
 * Job control operations (Go: `api.JobOperation`, types.go:570-621). Operations are ints on the
 * plugin wire; our HTTP API also accepts their names.
 */
import { ApiError, ErrCode, goValue } from "./errors.js";
import { JobStatus } from "./status.js";

export enum JobOperation {
  /** SIGSTOP. */
  Suspend = 0,
  /** SIGCONT. */
  Resume,
  /** SIGTERM. */
  Stop,
  /** SIGKILL. */
  Kill,
  /** Cancel a pending job, if possible. */
  Cancel,
}

const NAMES = ["Suspend", "Resume", "Stop", "Kill", "Cancel"] as const;

// Indexed by operation: the status an operation requires.
const REQUIRED: readonly JobStatus[] = [
  JobStatus.Running,
  JobStatus.Suspended,
  JobStatus.Running,
  JobStatus.Running,
  JobStatus.Pending,
];

const STATE_MESSAGES: readonly string[] = [
  "Job must be running to suspend it",
  "Job must be suspended to resume it",
  "Job must be running to stop it",
  "Job must be running to kill it",
  "Job must be pending to cancel it",
];

function isOperation(op: unknown): op is JobOperation {
  return (
    typeof op === "number" && Number.isInteger(op) && op >= JobOperation.Suspend && op <= JobOperation.Cancel
  );
}

/** Go `JobOperation.String()`; any unknown value gives `Cancel` (Go's fallthrough). */
export function operationString(op: number): string {
  return isOperation(op) ? NAMES[op] : "Cancel";
}

/** Go `ValidForStatus`: the status the job must have. Any unknown value gives `Pending`. */
export function validForStatus(op: number): JobStatus {
  return isOperation(op) ? (REQUIRED[op] ?? JobStatus.Pending) : JobStatus.Pending;
}

/** Launcher-style message for an operation attempted in the wrong state (409 InvalidJobState). */
export function invalidStateMessage(op: JobOperation): string {
  return (isOperation(op) ? STATE_MESSAGES[op] : undefined) ?? STATE_MESSAGES[JobOperation.Cancel]!;
}

const BY_LOWER: ReadonlyMap<string, JobOperation> = new Map(
  NAMES.map((name, op) => [name.toLowerCase(), op]),
);

/**
 * Parses a control request's `operation`: an int 0–4 or a name, ignoring case (`"stop"`, `"Kill"`).
 * Anything else is InvalidRequest `Unknown control job operation (<input>) for job <id>`, the Go
 * runtime's rejection text (launcher.go:477-489).
 */
export function parseOperation(input: unknown, jobId: string): JobOperation {
  if (isOperation(input)) return input;
  const named = typeof input === "string" ? BY_LOWER.get(input.toLowerCase()) : undefined;
  if (named !== undefined) return named;
  throw new ApiError(
    ErrCode.InvalidRequest,
    `Unknown control job operation (${goValue(input)}) for job ${jobId}`,
  );
}
