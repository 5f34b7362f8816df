// Request checks that a JSON schema cannot express with a useful message. Messages name the field
// the way fastify's schema errors do (`body/…`), so clients see one style.
import type { FastifySchemaCompiler } from "fastify";
import type { Static, TSchema } from "typebox";
import { Compile } from "typebox/compile";
import { Value } from "typebox/value";
import { ApiError, decodeMountSource, ErrCode, type Job, MOUNT_TYPE_HOST, type Mount } from "../api/index.js";
import { type JobSubmitSchema, MAX_STDIN_BYTES } from "./schemas.js";

function invalid(message: string): ApiError {
  return new ApiError(ErrCode.InvalidRequest, message);
}

/**
 * A query list: fastify gives repeated keys as an array (and ajv's `coerceTypes: "array"` turns a
 * single value into one); each entry may also be a comma list. Blank entries are dropped.
 */
export function queryList(values: readonly string[] | undefined): string[] {
  if (!values) return [];
  return values
    .flatMap((v) => v.split(","))
    .map((v) => v.trim())
    .filter((v) => v !== "");
}

/**
 * Validator for JSON bodies: TypeBox's compiled checker, which (unlike fastify's ajv instance with
 * `coerceTypes`) never converts — `"command": 5` is rejected, not turned into `"5"`. Errors have
 * ajv's shape, so fastify words them the same way (`body/command must be string`).
 */
export const strictBodyCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const check = Compile(schema);
  const convert = httpPart !== "body";
  return (value: unknown) => {
    const data = convert ? Value.Convert(schema, value) : value;
    return check.Check(data) ? { value: data } : { error: check.Errors(data) };
  };
};

function isAbsolute(path: unknown): path is string {
  return typeof path === "string" && path.startsWith("/");
}

/** Only `host` mounts with absolute paths are accepted by the local runner. */
function checkMount(mount: Mount, index: number): Mount {
  const at = `body/mounts/${index}`;
  let source: ReturnType<typeof decodeMountSource>;
  try {
    source = decodeMountSource(mount.mountSource);
  } catch (err) {
    throw invalid(`${at}/mountSource: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (source.type !== MOUNT_TYPE_HOST) {
    throw invalid(
      `${at}/mountSource/type must be "host": only host mounts are supported (got ${JSON.stringify(source.type)})`,
    );
  }
  const hostPath = (source.source as { path: string }).path;
  if (!isAbsolute(hostPath)) {
    throw invalid(`${at}/mountSource/source/path must be an absolute path (got ${JSON.stringify(hostPath)})`);
  }
  if (!isAbsolute(mount.mountPath)) {
    throw invalid(`${at}/mountPath must be an absolute path (got ${JSON.stringify(mount.mountPath)})`);
  }
  return { ...mount, mountSource: source };
}

/** What the body schema admits: a Job whose `id` is optional (the server assigns it). */
export type JobSubmission = Static<typeof JobSubmitSchema>;

/**
 * Rules beyond the schema: exactly one of `command` and `exe` (empty counts as absent, as with
 * Go's omitempty), `stdin` at most 1 MiB in UTF-8, host mounts only. Returns the job to submit,
 * without any client-chosen `id`.
 */
export function checkSubmission(body: JobSubmission): Job {
  const hasCommand = body.command !== undefined && body.command !== "";
  const hasExe = body.exe !== undefined && body.exe !== "";
  if (hasCommand && hasExe) throw invalid("body/command and body/exe are mutually exclusive: set only one");
  if (!hasCommand && !hasExe) throw invalid("body must have either command or exe");
  if (body.stdin !== undefined && Buffer.byteLength(body.stdin, "utf8") > MAX_STDIN_BYTES) {
    throw invalid(`body/stdin must not be larger than ${MAX_STDIN_BYTES} bytes`);
  }
  const { id: _clientId, mounts, exposedPorts, ...rest } = body;
  return {
    ...rest,
    // The service assigns the id; an empty one says "not assigned yet".
    id: "",
    ...(mounts ? { mounts: mounts.map((m, i) => checkMount(m as Mount, i)) } : {}),
    // Go's Port.Set defaults the protocol to tcp; a JSON port may leave it out.
    ...(exposedPorts
      ? { exposedPorts: exposedPorts.map((p) => ({ ...p, protocol: p.protocol ?? "tcp" })) }
      : {}),
  };
}
