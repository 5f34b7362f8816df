/**
 * Job filters (Go: `api.JobFilter` and `Includes`, types.go:199-229).
 */
import { ApiError, ErrCode } from "./errors.js";
import type { Job } from "./job.js";
import { parseRfc3339 } from "./rfc3339.js";

/** Conditions (all optional) a job must meet to be included in a listing. */
export interface JobFilter {
  /** The job must carry every one of these tags. */
  tags?: string[];
  /** Inclusive lower bound on `submissionTime` (RFC 3339). */
  startTime?: string;
  /** Inclusive upper bound on `submissionTime` (RFC 3339). */
  endTime?: string;
  /** The job's status must be one of these (exact strings; normalise with `parseStatuses` first). */
  statuses?: string[];
  /** Field selection for the response; does not affect inclusion. */
  fields?: string[];
}

/**
 * Validates an RFC 3339 time from a request and returns it as UTC ISO text.
 * Throws InvalidRequest naming the field: `Invalid startTime: "xyz" is not an RFC 3339 time`.
 */
export function parseTime(text: string, field: string): string {
  const parsed = parseRfc3339(text);
  if (!parsed) throw invalidTime(text, field);
  return parsed.iso;
}

function invalidTime(text: string, field: string): ApiError {
  return new ApiError(
    ErrCode.InvalidRequest,
    `Invalid ${field}: ${JSON.stringify(text)} is not an RFC 3339 time`,
  );
}

/** The bound as an instant; an invalid bound is a caller error and throws like `parseTime`. */
function boundNs(text: string, field: string): bigint {
  const parsed = parseRfc3339(text);
  if (!parsed) throw invalidTime(text, field);
  return parsed.epochNs;
}

/**
 * Whether the job's submission time lies within the inclusive bounds. A job with no (or an
 * unparsable) submissionTime is excluded whenever a bound is set: Go dereferences nil and panics
 * here (the Launcher's semantics), so the port defines it as "not in range".
 */
function inTimeRange(filter: JobFilter, job: Job): boolean {
  if (filter.startTime === undefined && filter.endTime === undefined) return true;
  const start = filter.startTime === undefined ? undefined : boundNs(filter.startTime, "startTime");
  const end = filter.endTime === undefined ? undefined : boundNs(filter.endTime, "endTime");
  const submitted = job.submissionTime === undefined ? undefined : parseRfc3339(job.submissionTime);
  if (!submitted) return false;
  if (start !== undefined && submitted.epochNs < start) return false;
  if (end !== undefined && submitted.epochNs > end) return false;
  return true;
}

/** OR over statuses, exact and case-sensitive as in Go. A missing status compares as `""`. */
function statusMatches(filter: JobFilter, job: Job): boolean {
  const statuses = filter.statuses ?? [];
  return statuses.length === 0 || statuses.includes(job.status ?? "");
}

/** AND over tags: every filter tag must be one of the job's tags (exact match). */
function hasAllTags(filter: JobFilter, job: Job): boolean {
  const jobTags = job.tags ?? [];
  return (filter.tags ?? []).every((tag) => jobTags.includes(tag));
}

/**
 * Go `JobFilter.Includes`, checked in Go's order: start bound, end bound, statuses, tags.
 * `fields` plays no part.
 */
export function includes(filter: JobFilter, job: Job): boolean {
  return inTimeRange(filter, job) && statusMatches(filter, job) && hasAllTags(filter, job);
}
