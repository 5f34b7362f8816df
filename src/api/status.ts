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

const TERMINAL: ReadonlySet<string> = new Set<string>([
  JobStatus.Finished,
  JobStatus.Failed,
  JobStatus.Killed,
  JobStatus.Canceled,
]);

/**
 * Go `TerminalStatus`: true when the status will never change again. Exact, case-sensitive match,
 * so `"Unknown"`, `""` and `"finished"` are all non-terminal.
 */
export function terminalStatus(status: string): boolean {
  return TERMINAL.has(status);
}

const BY_LOWER: ReadonlyMap<string, JobStatus> = new Map(ALL_STATUSES.map((s) => [s.toLowerCase(), s]));

/**
 * Parses a status from user input, trimming and ignoring case. This is the C++ SDK's behaviour for
 * the `statuses` filter (Go compares exactly; api-semantics §5.9 recommends the C++ one).
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
