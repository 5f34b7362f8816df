// The one checker of a job submission, for every front door. The schema (./schemas.ts) types each
// field; these are the rules a schema cannot word well, then the caps and C-string rules of
// src/api/limits.ts. Every message names the field the way fastify words schema errors,
// `<at>/<path> …`, where `at` is how the front door calls the job: `body` over HTTP, `job` in a
// plugin SubmitJob message. One style, so no front door rewrites another's messages.
import { Compile } from "typebox/compile";
import {
  ApiError,
  checkJobLimits,
  decodeMountSource,
  ErrCode,
  type Job,
  MAX_STDIN_BYTES,
  MOUNT_TYPE_HOST,
  type Mount,
} from "../../api/index.js";
import { type JobSubmission, JobSubmitSchema } from "./schemas.js";

/** How the front door names the submitted job in its messages. */
export type SubmissionAt = "body" | "job";

function invalid(message: string): ApiError {
  return new ApiError(ErrCode.InvalidRequest, message);
}

const submitChecker = Compile(JobSubmitSchema);

/**
 * The schema check, for input that no framework validated (fastify checks HTTP bodies against the
 * same schema, and words its first error the same way: `job/command must be string`).
 */
export function parseSubmission(input: unknown, at: SubmissionAt): JobSubmission {
  if (submitChecker.Check(input)) return input;
  const first = submitChecker.Errors(input)[0];
  throw invalid(first ? `${at}${first.instancePath} ${first.message}` : `${at} is not a valid Job`);
}

function isAbsolute(path: unknown): path is string {
  return typeof path === "string" && path.startsWith("/");
}

/** Only `host` mounts with absolute paths are accepted by the local runner. */
function checkMount(mount: Mount, index: number, at: SubmissionAt): Mount {
  const where = `${at}/mounts/${index}`;
  let source: ReturnType<typeof decodeMountSource>;
  try {
    source = decodeMountSource(mount.mountSource);
  } catch (err) {
    throw invalid(`${where}/mountSource: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (source.type !== MOUNT_TYPE_HOST) {
    throw invalid(
      `${where}/mountSource/type must be "host": only host mounts are supported (got ${JSON.stringify(source.type)})`,
    );
  }
  const hostPath = (source.source as { path: string }).path;
  if (!isAbsolute(hostPath)) {
    throw invalid(
      `${where}/mountSource/source/path must be an absolute path (got ${JSON.stringify(hostPath)})`,
    );
  }
  if (!isAbsolute(mount.mountPath)) {
    throw invalid(`${where}/mountPath must be an absolute path (got ${JSON.stringify(mount.mountPath)})`);
  }
  return { ...mount, mountSource: source };
}

/** Exactly one of `command` and `exe` (empty counts as absent, as with Go's omitempty). */
function checkProgram(body: JobSubmission, at: SubmissionAt): void {
  const hasCommand = body.command !== undefined && body.command !== "";
  const hasExe = body.exe !== undefined && body.exe !== "";
  if (hasCommand && hasExe) throw invalid(`${at}/command and ${at}/exe are mutually exclusive: set only one`);
  if (!hasCommand && !hasExe) throw invalid(`${at} must have either command or exe`);
}

/** What the local runner cannot honour: a relative working directory, a container. */
function checkRunnable(job: Job, at: SubmissionAt): void {
  const dir = job.workingDirectory;
  if (dir !== undefined && dir !== "" && !isAbsolute(dir)) {
    throw invalid(`${at}/workingDirectory must be an absolute path (got ${JSON.stringify(dir)})`);
  }
  if (job.container) throw invalid(`${at}/container: the local runner does not support containers`);
}

/**
 * Every rule beyond the schema, before anything is created. Returns the job to submit: no
 * client-chosen `id` (the service assigns it), mounts decoded, ports with their default protocol.
 */
/** The fields a submission may carry: the Job's, but for those only the fleet sets. */
const SUBMITTABLE = new Set(Object.keys(JobSubmitSchema.properties).filter((k) => k !== "node"));

/**
 * Over HTTP an unknown field is refused: a misspelt one (`workdir`, `stdout`) would otherwise be
 * stored, echoed back, and silently do nothing. The Launcher's own messages may carry fields of later
 * protocol versions (`instanceId`), which it expects back as it sent them: those are kept. `node` is
 * the fleet's to set, whoever sends it.
 */
function checkFields(body: JobSubmission, at: SubmissionAt): void {
  if ("node" in body) {
    throw invalid(
      `${at}/node is the node that runs the job, set by the fleet; a submission cannot choose it (use placementConstraints)`,
    );
  }
  if (at !== "body") return;
  const unknown = Object.keys(body).find((key) => !SUBMITTABLE.has(key));
  if (unknown !== undefined) throw invalid(`${at}/${unknown} is not a Job field`);
}

export function checkSubmission(body: JobSubmission, at: SubmissionAt): Job {
  checkFields(body, at);
  checkProgram(body, at);
  if (body.stdin !== undefined && Buffer.byteLength(body.stdin, "utf8") > MAX_STDIN_BYTES) {
    throw invalid(`${at}/stdin must not be larger than ${MAX_STDIN_BYTES} bytes`);
  }
  const { id: _clientId, mounts, exposedPorts, ...rest } = body;
  const job: Job = {
    ...rest,
    // An empty id says "not assigned yet".
    id: "",
    ...(mounts ? { mounts: mounts.map((m, i) => checkMount(m as Mount, i, at)) } : {}),
    // Go's Port.Set defaults the protocol to tcp; a JSON port may leave it out.
    ...(exposedPorts
      ? { exposedPorts: exposedPorts.map((p) => ({ ...p, protocol: p.protocol ?? "tcp" })) }
      : {}),
  };
  checkJobLimits(job, at);
  checkRunnable(job, at);
  return job;
}
