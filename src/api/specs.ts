/**
 * The flag grammars of Go's `flag.Value` implementations on Env, Mount and Port (types.go:331-360,
 * 624-746, 757-819). Used by the CLI's `--env`, `--mount` and `--port`. Errors mirror Go's
 * `fmt.Errorf("%w: %q", sentinel, value)`.
 */
import { type Env, MOUNT_TYPE_HOST, type Mount, type Port } from "./job.js";
import { hostMountPath } from "./mount-source.js";

/** A mount spec (`src[:dst[:ro|rw]]`) has the wrong shape. */
export const ErrInvalidMountSpec = "invalid mount spec";
/** A path in a mount spec is not absolute. */
export const ErrInvalidMountPath = "invalid mount path";
/** A port spec (`published[:target][/protocol]`) has the wrong shape. */
export const ErrInvalidPortSpec = "invalid port spec";
/** A port in a port spec is not a decimal integer. */
export const ErrInvalidPort = "invalid port";
/** An env spec (`NAME=VALUE`) has the wrong shape. */
export const ErrInvalidEnvSpec = "invalid env spec";

export type SpecSentinel =
  | typeof ErrInvalidMountSpec
  | typeof ErrInvalidMountPath
  | typeof ErrInvalidPortSpec
  | typeof ErrInvalidPort
  | typeof ErrInvalidEnvSpec;

/** A spec parsing error: `<sentinel>: "<value>"`; test the sentinel with {@link isSpecError}. */
export class SpecError extends Error {
  readonly sentinel: SpecSentinel;
  /** The offending text (unquoted). */
  readonly value: string;

  constructor(sentinel: SpecSentinel, value: string) {
    // Go's %q; JSON string escaping is the same for the characters that occur in specs.
    super(`${sentinel}: ${JSON.stringify(value)}`);
    this.name = "SpecError";
    this.sentinel = sentinel;
    this.value = value;
  }
}

/** Go `errors.Is(err, ErrInvalid…)`: whether `err` is a SpecError (with that sentinel, if given). */
export function isSpecError(err: unknown, sentinel?: SpecSentinel): err is SpecError {
  return err instanceof SpecError && (sentinel === undefined || err.sentinel === sentinel);
}

/**
 * Go `Env.Set`: splits on every `=` and needs exactly two parts, so `A=` and `=B` are accepted
 * (no name validation) but values containing `=` are rejected.
 */
export function parseEnvSpec(s: string): Env {
  const parts = s.split("=");
  if (parts.length !== 2) throw new SpecError(ErrInvalidEnvSpec, s);
  return { name: parts[0]!, value: parts[1]! };
}

/** Go `Env.String`: `name=value`, or empty for no env. */
export function envToString(e: Env | undefined): string {
  return e === undefined ? "" : `${e.name}=${e.value}`;
}

/** Go's `path.IsAbs`: purely lexical, no cleaning (`/a/../b` is absolute). */
function isAbs(p: string): boolean {
  return p.startsWith("/");
}

/** The third part of a mount spec: `rw` (default) or `ro`, exactly. */
function readOnlyOption(option: string, spec: string): boolean {
  if (option === "ro") return true;
  if (option === "rw") return false;
  throw new SpecError(ErrInvalidMountSpec, spec);
}

/**
 * Go `Mount.Set`, grammar `src[:dst[:ro|rw]]`. Order of checks matters and is Go's: src must be
 * absolute first; then the shape (and the ro/rw option) is checked before dst is. There is no
 * `src:opt` form (`/a:ro` has dst `ro`). The result is a host mount; `readOnly` only when `ro`.
 */
export function parseMountSpec(s: string): Mount {
  const parts = s.split(":");
  const src = parts[0]!;
  if (!isAbs(src)) throw new SpecError(ErrInvalidMountPath, src);
  if (parts.length > 3) throw new SpecError(ErrInvalidMountSpec, s);
  const dst = parts[1] ?? src;
  const readOnly = parts.length === 3 ? readOnlyOption(parts[2]!, s) : false;
  if (!isAbs(dst)) throw new SpecError(ErrInvalidMountPath, dst);
  return {
    mountPath: dst,
    ...(readOnly ? { readOnly: true } : {}),
    mountSource: { type: MOUNT_TYPE_HOST, source: { path: src } },
  };
}

/**
 * Go `Mount.String`: `<hostPath>:<mountPath>:<rw|ro>`, always three parts (so `/x` round-trips to
 * `/x:/x:rw`). Empty for no mount, a non-host mount, or a host mount without a usable source.
 */
export function mountToString(m: Mount | undefined): string {
  if (m === undefined) return "";
  const hostPath = hostMountPath(m);
  if (hostPath === undefined) return "";
  return `${hostPath}:${m.mountPath}:${m.readOnly ? "ro" : "rw"}`;
}

const SIGNED_DECIMAL = /^[+-]?\d+$/;

/**
 * Go `strconv.Atoi`: optional sign, decimal digits, leading zeros fine, no range check beyond the
 * integer type. JS cannot hold Go's full int64 exactly, so values beyond 2^53 are rejected.
 */
function parsePort(text: string): number {
  const n = SIGNED_DECIMAL.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw new SpecError(ErrInvalidPort, text);
  return n === 0 ? 0 : n; // normalise -0
}

/**
 * Go `Port.Set`, grammar `published[:target][/protocol]`. The protocol is everything after the
 * first `/`, as-is (may be empty or contain `/`), default `tcp`. `publishedPort` is set only when
 * it differs from the target.
 */
export function parsePortSpec(s: string): Port {
  const slash = s.indexOf("/");
  const ports = slash < 0 ? s : s.slice(0, slash);
  const protocol = slash < 0 ? "tcp" : s.slice(slash + 1);
  const parts = ports.split(":");
  if (parts.length > 2) throw new SpecError(ErrInvalidPortSpec, s);
  const first = parsePort(parts[0]!);
  const target = parts[1] === undefined ? first : parsePort(parts[1]);
  return {
    targetPort: target,
    ...(target !== first ? { publishedPort: first } : {}),
    protocol,
  };
}

/**
 * Go `Port.String`: `<published>:<target>/<protocol>`; published defaults to the target and an
 * empty protocol prints as `tcp` (case otherwise preserved). Empty for no port.
 */
export function portToString(p: Port | undefined): string {
  if (p === undefined) return "";
  return `${p.publishedPort ?? p.targetPort}:${p.targetPort}/${p.protocol || "tcp"}`;
}
