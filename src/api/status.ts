/**
 * Job statuses (Go: the `Status*` constants and `TerminalStatus`, types.go).
 */
import { ApiError, ErrCode } from "./errors.js";

/** The available statuses of a Job; the values are the exact wire strings. */
export const JobStatus = {
  Pending: "Pending",
  Running: "Running",
  Suspended: "Suspended",
  Finished: "Finished",
  Failed: "Failed",
  Killed: "Killed",
  Canceled: "Canceled",
} as const;
export type JobStatus = (typeof JobStatus)[keyof typeof JobStatus];

/** Every status, in lifecycle order. */
export const ALL_STATUSES: readonly JobStatus[] = Object.freeze(Object.values(JobStatus));

/** The statuses that never change again. */
export const TERMINAL_STATUSES: readonly JobStatus[] = Object.freeze([
  JobStatus.Finished,
  JobStatus.Failed,
  JobStatus.Killed,
  JobStatus.Canceled,
]);
const TERMINAL: ReadonlySet<string> = new Set<string>(TERMINAL_STATUSES);

/**
 * Go `TerminalStatus`: true when the status will never change again. Exact, case-sensitive match,
 * so `"Unknown"`, `""` and `"finished"` are all non-terminal.
 */
export function terminalStatus(status: string): boolean {
  return TERMINAL.has(status);
}

/**
 * The job lifecycle: which statuses a job may move to from each status. A terminal status has none
 * ("terminal is final"). The job store's update script (src/cluster/lua/lib.lua, `NEXT`) holds the
 * same table and refuses any other change; a test keeps the two equal.
 *  - Pending: it starts (Running), cannot start (Failed), is canceled, or turns out to have run and
 *    ended while its node was down (Finished, recorded from the supervisor's state at re-adoption).
 *  - Running and Suspended: suspend/resume, and the three ends a started job has.
 */
export const TRANSITIONS: Readonly<Record<JobStatus, readonly JobStatus[]>> = Object.freeze({
  Pending: [JobStatus.Running, JobStatus.Failed, JobStatus.Canceled, JobStatus.Finished],
  Running: [JobStatus.Suspended, JobStatus.Finished, JobStatus.Failed, JobStatus.Killed],
  Suspended: [JobStatus.Running, JobStatus.Finished, JobStatus.Failed, JobStatus.Killed],
  Finished: [],
  Failed: [],
  Killed: [],
  Canceled: [],
});

const BY_LOWER: ReadonlyMap<string, JobStatus> = new Map(ALL_STATUSES.map((s) => [s.toLowerCase(), s]));

/**
 * Parses a status from user input, trimming and ignoring case. This is the C++ SDK's behaviour for
 * the `statuses` filter (Go compares exactly; the Launcher's semantics recommend the C++ one).
 */
export function parseStatus(text: string): JobStatus | undefined {
  return BY_LOWER.get(text.trim().toLowerCase());
}

/**
 * Parses a `statuses` filter. Blank entries (e.g. from `?statuses=Running,`) are skipped and
 * duplicates collapse. Any unknown status rejects the whole list, as C++ does, with InvalidRequest
 * `Invalid status(es): <bad, ...>`.
 */
export function parseStatuses(list: readonly string[]): JobStatus[] {
  const good = new Set<JobStatus>();
  const bad: string[] = [];
  for (const text of list) {
    if (text.trim() === "") continue;
    const status = parseStatus(text);
    if (status === undefined) bad.push(text);
    else good.add(status);
  }
  if (bad.length > 0) {
    throw new ApiError(ErrCode.InvalidRequest, `Invalid status(es): ${bad.join(", ")}`);
  }
  return [...good];
}
