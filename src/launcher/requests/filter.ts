// A job listing's filter from either front door: HTTP query strings and plugin JobState messages
// give the same five inputs; this turns them into the contract's JobFilter, with one set of
// messages (`Invalid startTime: "x" is not an RFC 3339 time`).
import { type JobFilter, parseStatuses, parseTime } from "../../api/index.js";

/** A filter as a request carries it; absent and empty lists mean "no condition". */
export interface FilterInput {
  tags?: readonly string[];
  statuses?: readonly string[];
  startTime?: string | undefined;
  endTime?: string | undefined;
  fields?: readonly string[];
}

/**
 * Which times a front door accepts: `rfc3339` (HTTP), or `launcher`, which also takes the C++
 * SDK's documented `YYYY-MM-DDThh:mm:ss[.fff]` without a zone, as UTC (what the Posit Launcher
 * sends its plugins).
 */
export type TimeGrammar = "rfc3339" | "launcher";

const ZONELESS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?$/;

/** A filter bound as UTC ISO text; InvalidRequest naming `field` otherwise. */
export function filterTime(text: string, field: string, grammar: TimeGrammar = "launcher"): string {
  const zoneless = grammar === "launcher" && ZONELESS.test(text);
  return parseTime(zoneless ? `${text}Z` : text, field);
}

/** The JobFilter of a request: statuses normalised, times checked, empty conditions left out. */
export function jobFilter(input: FilterInput, grammar: TimeGrammar): JobFilter {
  const filter: JobFilter = {};
  if (input.tags?.length) filter.tags = [...input.tags];
  const statuses = parseStatuses(input.statuses ?? []);
  if (statuses.length > 0) filter.statuses = statuses;
  if (input.startTime !== undefined) filter.startTime = filterTime(input.startTime, "startTime", grammar);
  if (input.endTime !== undefined) filter.endTime = filterTime(input.endTime, "endTime", grammar);
  if (input.fields?.length) filter.fields = [...input.fields];
  return filter;
}
