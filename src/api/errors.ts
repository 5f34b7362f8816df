/**
 * Error codes and the structured API error (Go: `api.ErrCode`, `api.Error`, types.go:14-136).
 *
 * The port keeps Go's semantics exactly: the `Error()` text falls back to the code's string when
 * the message is empty, and `Is` matches code-only sentinels in either direction.
 */

/** Launcher Plugin error codes (iota 0–10). GO docs/GUIDE.md's 1/2/3/10/20… numbering is stale. */
export enum ErrCode {
  Unknown = 0,
  RequestNotSupported,
  InvalidRequest,
  JobNotFound,
  PluginRestarted,
  Timeout,
  JobNotRunning,
  JobOutputNotFound,
  InvalidJobState,
  JobControlFailure,
  UnsupportedVersion,
}

// Indexed by code. Kept as tables (not switch) so the three views cannot drift apart.
const CODE_STRINGS: readonly string[] = [
  "an error occurred",
  "not supported",
  "invalid request",
  "job not found",
  "plugin is restarting",
  "timeout",
  "job not running",
  "job output not found",
  "invalid job state",
  "job control failure",
  "unsupported version",
];

const CODE_NAMES: readonly string[] = [
  "Unknown",
  "RequestNotSupported",
  "InvalidRequest",
  "JobNotFound",
  "PluginRestarted",
  "Timeout",
  "JobNotRunning",
  "JobOutputNotFound",
  "InvalidJobState",
  "JobControlFailure",
  "UnsupportedVersion",
];

// The HTTP mapping from docs/http-api.md's error table (401 for auth failures is the HTTP layer's business).
const CODE_HTTP: readonly number[] = [500, 501, 400, 404, 503, 504, 409, 404, 409, 500, 500];

function lookup<T>(table: readonly T[], code: number, fallback: T): T {
  return Number.isInteger(code) ? (table[code] ?? fallback) : fallback;
}

/** Go `ErrCode.String()`. Any value outside 0–10 gives `an error occurred`, as in Go. */
export function errCodeString(code: number): string {
  return lookup(CODE_STRINGS, code, "an error occurred");
}

/** The code's identifier (`JobNotFound`), used as `name` in HTTP error bodies. Out of range → `Unknown`. */
export function errCodeName(code: number): string {
  return lookup(CODE_NAMES, code, "Unknown");
}

/** HTTP status for a code, per docs/http-api.md. Unknown values map to 500 like `Unknown`. */
export function httpStatusFor(code: ErrCode): number {
  return lookup(CODE_HTTP, code, 500);
}

/** The HTTP error body: `{"code","name","message"}` (docs/http-api.md "Errors"). */
export interface ErrorBody {
  code: number;
  name: string;
  message: string;
}

/** Go `*api.Error`: a code plus an optional message. */
export class ApiError extends Error {
  readonly code: ErrCode;
  /** Go `Msg`; may be empty (code-only sentinels). */
  readonly msg: string;

  constructor(code: ErrCode, msg = "", options?: ErrorOptions) {
    // Go Error(): the message if non-empty, otherwise the code's string.
    super(msg !== "" ? msg : errCodeString(code), options);
    this.name = "ApiError";
    this.code = code;
    this.msg = msg;
  }

  /**
   * Go `(*Error).Is`: false for non-ApiError targets; false when both messages are non-empty and
   * differ; otherwise whether the codes are equal. So `{3,"x"}` does NOT match `{3,"y"}`, but a
   * code-only sentinel matches any message with its code, in either direction.
   */
  is(target: unknown): boolean {
    if (!(target instanceof ApiError)) return false;
    if (target.msg !== "" && this.msg !== "" && target.msg !== this.msg) return false;
    return target.code === this.code;
  }

  /** Go's JSON encoding of `Error` (`json:"code"`, `json:"message"`): `message` is the raw Msg. */
  toJSON(): { code: number; message: string } {
    return { code: this.code, message: this.msg };
  }

  /** The HTTP error body; `message` is never empty (it is the Go `Error()` text). */
  toBody(): ErrorBody {
    return { code: this.code, name: errCodeName(this.code), message: this.message };
  }
}

/**
 * An InvalidRequest that HTTP answers with a status of its own rather than 400: 409 Conflict (an
 * Idempotency-Key used again with another request), 403 Forbidden (an admin-only request).
 */
export class StatusError extends ApiError {
  constructor(
    msg: string,
    readonly httpStatus: 403 | 409,
  ) {
    super(ErrCode.InvalidRequest, msg);
  }
}

/**
 * Go's `%v` for a JSON-decoded request value, as the Go runtime shows a rejected field:
 * nil is `<nil>`, arrays are `[a b]`, objects their JSON, anything else its text.
 */
export function goValue(value: unknown): string {
  if (value === null || value === undefined) return "<nil>";
  if (Array.isArray(value)) return `[${value.map(goValue).join(" ")}]`;
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** Common API errors (code-only, so they match any error with the same code via `is`/`errorIs`). */
export const ErrJobNotRunning: ApiError = new ApiError(ErrCode.JobNotRunning);
export const ErrJobNotFound: ApiError = new ApiError(ErrCode.JobNotFound);
export const ErrInvalidJobState: ApiError = new ApiError(ErrCode.InvalidJobState);

/** The errors directly wrapped by `err`: its `cause`, or the members of an AggregateError (Go's `Unwrap() []error`). */
function unwrap(err: unknown): unknown[] {
  if (err instanceof AggregateError) return [...err.errors];
  if (typeof err === "object" && err !== null && "cause" in err) return [err.cause];
  return [];
}

/** Depth-first walk of `err` and everything it wraps, guarding against cause cycles. */
function* errorChain(err: unknown): Generator<unknown> {
  const seen = new Set<unknown>();
  const stack: unknown[] = [err];
  while (stack.length > 0) {
    const current = stack.pop();
    if (current === undefined || current === null || seen.has(current)) continue;
    seen.add(current);
    yield current;
    stack.push(...unwrap(current).reverse());
  }
}

/**
 * Go `errors.Is(err, target)`: true if `err` or anything it wraps (via `cause`, or AggregateError
 * members) is `target` or an ApiError whose `is(target)` holds.
 */
export function errorIs(err: unknown, target: ApiError): boolean {
  for (const e of errorChain(err)) {
    if (e === target) return true;
    if (e instanceof ApiError && e.is(target)) return true;
  }
  return false;
}

/** Go `errors.As(err, &apiErr)`: the first ApiError in the chain, if any. Exported only for test/api/errors.test.ts (its only user outside this file). */
export function findApiError(err: unknown): ApiError | undefined {
  for (const e of errorChain(err)) {
    if (e instanceof ApiError) return e;
  }
  return undefined;
}

/** The text Go's `err.Error()` would give for an arbitrary thrown value. */
export function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === "string") return err;
  try {
    return String(err);
  } catch {
    // e.g. Object.create(null) has no toString.
    return "an error occurred";
  }
}

/**
 * The runtime's error mapping (launcher.go `WriteError`): an ApiError is returned as-is; any other
 * error becomes code Unknown with its text, unless it wraps an ApiError, in which case the wrapped
 * code is kept and the outer text is used (Go writes `err.Error()` with the `errors.As` code).
 */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const inner = findApiError(err);
  return new ApiError(inner?.code ?? ErrCode.Unknown, errorText(err), { cause: err });
}

/** Go `ConfigReloadErrorType`: classifies config reload failures. */
export enum ConfigReloadErrorType {
  Unknown = -1,
  None = 0,
  Load = 1,
  Validate = 2,
  Save = 3,
}

const RELOAD_STRINGS: ReadonlyMap<number, string> = new Map([
  [ConfigReloadErrorType.Unknown, "unknown error"],
  [ConfigReloadErrorType.None, "none"],
  [ConfigReloadErrorType.Load, "load error"],
  [ConfigReloadErrorType.Validate, "validation error"],
  [ConfigReloadErrorType.Save, "save error"],
]);

/** Go `ConfigReloadErrorType.String()`; anything outside -1…3 is `unknown error`. */
export function configReloadErrorString(type: number): string {
  return RELOAD_STRINGS.get(type) ?? "unknown error";
}
