/**
 * Output stream selection (Go: `api.JobOutput`, types.go:232-276).
 */
import { ApiError, ErrCode, goValue } from "./errors.js";

export enum JobOutput {
  Stdout = 0,
  Stderr = 1,
  /** Both streams. Called `both` on input but `mixed` on output. */
  Both = 2,
}

/** The output-type names used in output chunks. */
export type OutputTypeName = "stdout" | "stderr" | "mixed";

const NAMES: readonly OutputTypeName[] = ["stdout", "stderr", "mixed"];

/** Go `JobOutput.String()` (and MarshalText); anything unknown is `mixed`. */
export function outputString(o: number): OutputTypeName {
  return (Number.isInteger(o) ? NAMES[o] : undefined) ?? "mixed";
}

/**
 * Go `JobOutput.UnmarshalText`: only `stdout`, `stderr` and `mixed`, case-sensitive. `both` is
 * rejected. Throws InvalidRequest `invalid output type: <text>` (Go's text, unquoted).
 */
export function parseOutputText(text: string): JobOutput {
  const index = NAMES.indexOf(text as OutputTypeName);
  if (index < 0) throw new ApiError(ErrCode.InvalidRequest, `invalid output type: ${text}`);
  return index;
}

const REQUEST_NAMES: ReadonlyMap<string, JobOutput> = new Map([
  ["0", JobOutput.Stdout],
  ["1", JobOutput.Stderr],
  ["2", JobOutput.Both],
  ["stdout", JobOutput.Stdout],
  ["stderr", JobOutput.Stderr],
  ["both", JobOutput.Both],
  ["mixed", JobOutput.Both],
]);

/** Numbers become their decimal text, names are compared ignoring case; other types never match. */
function requestKey(input: unknown): string {
  if (typeof input === "number") return String(input);
  return typeof input === "string" ? input.toLowerCase() : "";
}

/**
 * Parses a request's `outputType`. Launcher sends ints 0/1/2 (which Go's text unmarshaller would
 * refuse; the Launcher's semantics), so accepted are: the numbers 0/1/2, their decimal strings, and the
 * names `stdout`/`stderr`/`both`/`mixed` in any case. Absent (`undefined`) means the API default,
 * `both`. Anything else is InvalidRequest naming `outputType`.
 */
export function parseOutputType(input: unknown): JobOutput {
  if (input === undefined) return JobOutput.Both;
  const output = REQUEST_NAMES.get(requestKey(input));
  if (output !== undefined) return output;
  const shown = typeof input === "string" ? JSON.stringify(input) : goValue(input);
  throw new ApiError(
    ErrCode.InvalidRequest,
    `Invalid outputType: ${shown} (expected stdout, stderr, both or 0, 1, 2)`,
  );
}
