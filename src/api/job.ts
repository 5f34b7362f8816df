import { ApiError, ErrCode } from "./errors.js";

/**
 * The Job and its parts (Go: `api.Job` and friends, types.go), with the seed's exact JSON names.
 * Go's `omitempty` fields are optional here; the plugin-private `Misc` map is never on the wire and
 * so is not modelled. Times are RFC 3339 strings.
 */

/** Container fields for a Job. */
export interface Container {
  /** The name of the container image to use. */
  image: string;
  runAsUserId?: number;
  runAsGroupId?: number;
  supplementalGroupIds?: number[];
}

/** An environment variable. */
export interface Env {
  name: string;
  value: string;
}

/** A volume mounted from the host filesystem (mount type `host`). */
export interface HostMount {
  /** The path of the mount on the host filesystem. */
  path: string;
}

/** The mount type for host filesystem mounts. */
export const MOUNT_TYPE_HOST = "host";

/**
 * The underlying source of a mount. For `host` the source is a {@link HostMount}; any other type
 * (`nfs`, `azureFile`, `cephFs`, `glusterFs`, `passthrough`, custom) carries its JSON as-is.
 */
export interface MountSource {
  type: string;
  source: unknown;
}

/** A volume mounted into a Job. */
export interface Mount {
  /** The destination path of the mount. */
  mountPath: string;
  readOnly?: boolean;
  mountSource: MountSource;
}

/** An exposed port for containerized jobs. */
export interface Port {
  targetPort: number;
  /** Only present when different from `targetPort`. */
  publishedPort?: number;
  protocol: string;
}

/** A custom Job configuration value. */
export interface JobConfig {
  name: string;
  valueType?: string;
  value?: string;
}

/** Resource controls for a Job (`cpuCount`, `cpuTime`, `memory`, `memorySwap`). */
export interface ResourceLimit {
  type: string;
  value?: string;
  defaultValue?: string;
  maxValue?: string;
}

/** A generic Job placement constraint. */
export interface PlacementConstraint {
  name: string;
  value?: string;
}

/**
 * A resource profile available on a cluster. Go always emits `queue` and `placementConstraints`
 * (no omitempty) but documents them as optional; our contract omits empty fields, so they are
 * optional here.
 */
export interface ResourceProfile {
  name: string;
  displayName?: string;
  limits?: ResourceLimit[];
  queue?: string;
  placementConstraints?: PlacementConstraint[];
}

/** Launcher's representation of a job. Only `id` is required. */
export interface Job {
  id: string;
  cluster?: string;
  name?: string;
  user?: string;
  group?: string;
  queues?: string[];
  workingDirectory?: string;
  container?: Container;
  host?: string;
  /**
   * Not the Launcher's: the id of the fleet node that runs the job (answers only, never accepted in
   * a submission; absent while the job waits in the fleet queue). `host` is the same for every node
   * of one host.
   */
  node?: string;
  status?: string;
  statusMessage?: string;
  statusCode?: string;
  pid?: number;
  /** Present once set; 0 is a real exit code (Go stores it as a pointer). */
  exitCode?: number;
  command?: string;
  exe?: string;
  stdoutFile?: string;
  stderrFile?: string;
  stdin?: string;
  args?: string[];
  environment?: Env[];
  placementConstraints?: PlacementConstraint[];
  /** RFC 3339. */
  lastUpdateTime?: string;
  /** RFC 3339. */
  submissionTime?: string;
  exposedPorts?: Port[];
  mounts?: Mount[];
  config?: JobConfig[];
  resourceLimits?: ResourceLimit[];
  tags?: string[];
  metadata?: Record<string, unknown>;
  resourceProfile?: string;
}

/** A job ID of `*` means "any or all jobs" (Go `JobIDWildcard`). */
export const JOB_ID_WILDCARD = "*";

/** Go `JobID.IsWildcard`. */
export function isWildcard(id: string): boolean {
  return id === JOB_ID_WILDCARD;
}

/** What the Launcher answers when an operation that needs one job is asked for all (`*`). */
export const ALL_JOBS_REFUSED = {
  control: "Cannot control all jobs simultaneously. Please specify a single Job ID.",
  network: "Cannot retrieve network information for all jobs. Please specify a single Job ID.",
} as const;

/** InvalidRequest for `*` where one job is needed (control, network), as the Launcher's SDKs answer. */
export function requireSingleJob(id: string, what: keyof typeof ALL_JOBS_REFUSED): void {
  if (isWildcard(id)) throw new ApiError(ErrCode.InvalidRequest, ALL_JOBS_REFUSED[what]);
}

type SelectableKey = Exclude<keyof Job, "id">;

/**
 * Field-selection name → Job key. Go's `WithFields` selects the environment only with `env` (a
 * quirk: the JSON key is `environment`); C++ selects by JSON key. Both are accepted.
 */
const FIELD_KEYS: Readonly<Record<string, SelectableKey>> = {
  cluster: "cluster",
  name: "name",
  user: "user",
  group: "group",
  queues: "queues",
  workingDirectory: "workingDirectory",
  container: "container",
  host: "host",
  node: "node",
  status: "status",
  statusMessage: "statusMessage",
  statusCode: "statusCode",
  pid: "pid",
  exitCode: "exitCode",
  command: "command",
  exe: "exe",
  stdoutFile: "stdoutFile",
  stderrFile: "stderrFile",
  stdin: "stdin",
  args: "args",
  env: "environment",
  environment: "environment",
  placementConstraints: "placementConstraints",
  lastUpdateTime: "lastUpdateTime",
  submissionTime: "submissionTime",
  exposedPorts: "exposedPorts",
  mounts: "mounts",
  config: "config",
  resourceLimits: "resourceLimits",
  tags: "tags",
  metadata: "metadata",
  resourceProfile: "resourceProfile",
};

/** Every name `withFields` understands: `id` (always kept anyway), both environment spellings, and the rest. */
export const JOB_FIELD_NAMES: readonly string[] = Object.freeze(["id", ...Object.keys(FIELD_KEYS)]);

function copyField<K extends SelectableKey>(from: Job, to: Job, key: K): void {
  if (from[key] !== undefined) to[key] = from[key];
}

/**
 * Go `Job.WithFields`: with no fields the job itself is returned; otherwise a new shallow copy with
 * `id` plus each recognised field that the job has. Unknown names are ignored, duplicates are
 * harmless, and keys the job lacks stay absent (so non-selected keys never appear).
 */
export function withFields(job: Job, fields: readonly string[] | undefined): Job {
  if (fields === undefined || fields.length === 0) return job;
  const selected: Job = { id: job.id };
  for (const field of fields) {
    const key = Object.hasOwn(FIELD_KEYS, field) ? FIELD_KEYS[field] : undefined;
    if (key !== undefined) copyField(job, selected, key);
  }
  return selected;
}
