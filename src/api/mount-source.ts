/**
 * Decoding and validating mount sources.
 *
 * Decoding follows Go's `MountSource.UnmarshalJSON` (types.go:712-736): a `host` source is decoded
 * into a HostMount (extra keys dropped, no required-field check), every other type keeps its source
 * unchanged. Validation follows the C++ SDK's per-type schemas (Job.cpp:996-1059, 1167-1374),
 * which Go lacks; unknown types pass through unvalidated in both.
 */
import { ApiError, ErrCode } from "./errors.js";
import { type HostMount, MOUNT_TYPE_HOST, type Mount, type MountSource } from "./job.js";

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function invalid(message: string): ApiError {
  return new ApiError(ErrCode.InvalidRequest, `Invalid mountSource: ${message}`);
}

/**
 * Go decodes a host source with `json.Unmarshal` into HostMount: a missing source is an error
 * ("unexpected end of JSON input"), `null` is a no-op (empty path), a non-object or a non-string
 * `path` is a type error, and other keys are dropped.
 */
function decodeHostMount(source: unknown): HostMount {
  if (source === undefined) throw invalid('a host mount requires a "source"');
  if (source === null) return { path: "" };
  if (!isObject(source)) throw invalid("the source of a host mount must be an object");
  const path = source.path ?? "";
  if (typeof path !== "string") throw invalid('"path" of a host mount must be a string');
  return { path };
}

/**
 * Decodes a `mountSource` JSON value the way Go does. Throws InvalidRequest for what Go rejects
 * (non-object input, non-string `type`, host without a source or with a non-object source).
 * A missing type decodes as `""`; a non-host type with no source gets `null` (Go re-encodes the
 * empty raw message as `null`).
 */
export function decodeMountSource(raw: unknown): MountSource {
  if (!isObject(raw)) throw invalid("must be an object");
  const type = raw.type ?? "";
  if (typeof type !== "string") throw invalid('"type" must be a string');
  if (type === MOUNT_TYPE_HOST) return { type, source: decodeHostMount(raw.source) };
  return { type, source: raw.source ?? null };
}

type FieldCheck = (source: Record<string, unknown>, type: string) => string | undefined;

const requireString =
  (field: string): FieldCheck =>
  (source, type) =>
    typeof source[field] === "string" ? undefined : `${type} mount requires "${field}"`;

/** cephFs `monitors`: a list of strings with at least one entry. */
const requireMonitors: FieldCheck = (source, type) => {
  const monitors = source.monitors;
  if (!Array.isArray(monitors) || !monitors.every((m) => typeof m === "string")) {
    return `${type} mount requires "monitors"`;
  }
  return monitors.length === 0 ? `${type} mount requires at least one entry in "monitors"` : undefined;
};

/** The C++ schemas' required fields per known type; optional fields are not checked. */
const SCHEMAS: ReadonlyMap<string, readonly FieldCheck[]> = new Map([
  ["azureFile", [requireString("secretName"), requireString("shareName")]],
  ["cephFs", [requireMonitors]],
  ["glusterFs", [requireString("endpoints"), requireString("path")]],
  [MOUNT_TYPE_HOST, [requireString("path")]],
  ["nfs", [requireString("host"), requireString("path")]],
]);

/**
 * Validates a mount source against the C++ schema for its type. Returns a message naming the first
 * missing field (e.g. `nfs mount requires "host"`), or `undefined` when valid. Unknown types
 * (`passthrough`, custom names) are always valid.
 */
export function validateMountSource(ms: MountSource): string | undefined {
  const checks = SCHEMAS.get(ms.type);
  if (checks === undefined) return undefined;
  if (!isObject(ms.source)) return `${ms.type} mount requires a "source" object`;
  for (const check of checks) {
    const problem = check(ms.source, ms.type);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

/** Whether the mount is a `host` mount (by type only; the only type the local runner accepts). */
export function isHostMount(m: Mount): boolean {
  return m.mountSource?.type === MOUNT_TYPE_HOST;
}

/**
 * The host path of a host mount, or `undefined` if it is not a host mount or its source is not a
 * HostMount value (Go's `Source.(HostMount)` type assertion in `Mount.String`).
 */
export function hostMountPath(m: Mount): string | undefined {
  if (!isHostMount(m)) return undefined;
  const source = m.mountSource.source;
  return isObject(source) && typeof source.path === "string" ? source.path : undefined;
}
