// The messages of the request layer, as TypeBox schemas: one schema per message is the single
// source of validation (fastify's route schemas and the plugin's compiled checks), of the TS types
// (`Static<>`) and of the OpenAPI document. JSON names are exactly those of src/api/job.ts, which a
// compile-time check below holds to. Objects allow additional properties (the Launcher API grows),
// but every known property is type-checked.
import { type Static, Type } from "typebox";
import type { ClusterInfo, ControlResult, Job, NetworkInfo } from "../../api/index.js";
import {
  MAX_ARGS,
  MAX_ENVIRONMENT,
  MAX_LIST,
  MAX_METADATA_KEYS,
  MAX_NAME_LENGTH,
  MAX_PLACEMENT_CONSTRAINTS,
  MAX_QUEUES,
  MAX_STDIN_BYTES,
  MAX_TAG_LENGTH,
  MAX_TAGS,
  MAX_USER_LENGTH,
} from "../../api/limits.js";

const open = { additionalProperties: true } as const;
const str = (description?: string) => Type.String(description ? { description } : {});
const opt = Type.Optional;

export const ErrorBodySchema = Type.Object(
  {
    code: Type.Integer({ description: "ErrCode (0–10)" }),
    name: str("ErrCode name, e.g. JobNotFound"),
    message: str(),
  },
  { description: "API error" },
);

const EnvSchema = Type.Object({ name: Type.String(), value: Type.String() }, open);
const ContainerSchema = Type.Object(
  {
    image: Type.String(),
    runAsUserId: opt(Type.Integer()),
    runAsGroupId: opt(Type.Integer()),
    supplementalGroupIds: opt(Type.Array(Type.Integer(), { maxItems: MAX_LIST })),
  },
  open,
);
const MountSchema = Type.Object(
  {
    mountPath: str("Destination path (absolute)"),
    readOnly: opt(Type.Boolean()),
    mountSource: Type.Object(
      {
        type: str("Only `host` is accepted by this cluster"),
        source: opt(Type.Unknown({ description: 'For `host`: {"path": "/absolute/host/path"}' })),
      },
      open,
    ),
  },
  open,
);
const PortSchema = Type.Object(
  { targetPort: Type.Integer(), publishedPort: opt(Type.Integer()), protocol: opt(Type.String()) },
  open,
);
const JobConfigSchema = Type.Object(
  { name: Type.String(), valueType: opt(Type.String()), value: opt(Type.String()) },
  open,
);
const ResourceLimitSchema = Type.Object(
  {
    type: str("cpuCount, cpuTime, memory or memorySwap"),
    value: opt(Type.String()),
    defaultValue: opt(Type.String()),
    maxValue: opt(Type.String()),
  },
  open,
);
const PlacementConstraintSchema = Type.Object({ name: Type.String(), value: opt(Type.String()) }, open);
const ResourceProfileSchema = Type.Object(
  {
    name: Type.String(),
    displayName: opt(Type.String()),
    limits: opt(Type.Array(ResourceLimitSchema)),
    queue: opt(Type.String()),
    placementConstraints: opt(Type.Array(PlacementConstraintSchema)),
  },
  open,
);

/** A list of a job: every one has a cap (src/api/limits.ts), which the schema check enforces. */
const list = <T extends Parameters<typeof Type.Array>[0]>(item: T, maxItems: number) =>
  opt(Type.Array(item, { maxItems, description: `At most ${maxItems.toLocaleString("en-US")} entries` }));

/** The Job's properties. Everything is optional on input; the server fills id, status, times, host, user. */
const jobProperties = {
  id: opt(str("Assigned by the server; ignored on submit")),
  cluster: opt(Type.String()),
  name: opt(
    Type.String({ maxLength: MAX_NAME_LENGTH, description: `At most ${MAX_NAME_LENGTH} characters` }),
  ),
  user: opt(
    Type.String({
      maxLength: MAX_USER_LENGTH,
      description: `Admins may submit on behalf of this user (at most ${MAX_USER_LENGTH} characters)`,
    }),
  ),
  group: opt(Type.String()),
  queues: list(Type.String(), MAX_QUEUES),
  workingDirectory: opt(Type.String()),
  container: opt(ContainerSchema),
  host: opt(str("Host of the owning node")),
  node: opt(str("Answers only: the id of the fleet node that runs the job (absent while queued)")),
  status: opt(Type.String()),
  statusMessage: opt(Type.String()),
  statusCode: opt(Type.String()),
  pid: opt(Type.Integer()),
  exitCode: opt(Type.Integer()),
  command: opt(str("Shell command; exactly one of command and exe")),
  exe: opt(str("Executable; exactly one of command and exe")),
  stdoutFile: opt(Type.String()),
  stderrFile: opt(Type.String()),
  stdin: opt(Type.String({ maxLength: MAX_STDIN_BYTES, description: "At most 1 MiB" })),
  args: list(Type.String(), MAX_ARGS),
  environment: list(EnvSchema, MAX_ENVIRONMENT),
  placementConstraints: list(PlacementConstraintSchema, MAX_PLACEMENT_CONSTRAINTS),
  lastUpdateTime: opt(str("RFC 3339")),
  submissionTime: opt(str("RFC 3339")),
  exposedPorts: list(PortSchema, MAX_LIST),
  mounts: list(MountSchema, MAX_LIST),
  config: list(JobConfigSchema, MAX_LIST),
  resourceLimits: list(ResourceLimitSchema, MAX_LIST),
  tags: list(Type.String({ maxLength: MAX_TAG_LENGTH }), MAX_TAGS),
  metadata: opt(Type.Record(Type.String(), Type.Unknown(), { maxProperties: MAX_METADATA_KEYS })),
  resourceProfile: opt(Type.String()),
};

export const JobSubmitSchema = Type.Object(jobProperties, { ...open, description: "A job to submit" });
export const JobSchema = Type.Object(
  { ...jobProperties, id: Type.String() },
  { ...open, description: "A job (empty fields are omitted)" },
);

export const ClusterInfoSchema = Type.Object(
  {
    supportsContainers: Type.Boolean(),
    queues: Type.Array(Type.String()),
    defaultQueue: opt(Type.String()),
    resourceLimits: Type.Array(ResourceLimitSchema),
    placementConstraints: Type.Array(PlacementConstraintSchema),
    config: Type.Array(JobConfigSchema),
    resourceProfiles: Type.Array(ResourceProfileSchema),
  },
  open,
);

/** A control operation, by name or number; `parseOperation` (src/api/) maps it and words refusals. */
export const OperationSchema = Type.Union([Type.String(), Type.Integer()], {
  description: "suspend, resume, stop, kill, cancel, or 0–4",
});
export const ControlBodySchema = Type.Object({ operation: OperationSchema }, open);

/** Which output a stream sends; `parseOutputType` (src/api/) maps it and words refusals. */
export const OutputTypeSchema = Type.Union([Type.String(), Type.Integer()], {
  description: "stdout, stderr or both (or 0, 1, 2); default both",
});

/**
 * A job listing's filter as a JSON message carries it (the plugin's JobState; HTTP has the same
 * inputs as query lists). `message` is how a front door words a value of the wrong type.
 */
const stringList = (description: string) =>
  opt(Type.Array(Type.String(), { description, message: "must be an array of strings" }));
const bound = (description: string) => opt(Type.String({ description, message: "must be a string" }));
export const jobFilterFields = {
  fields: stringList("Field selection; `id` is always kept"),
  tags: stringList("Jobs must carry all of these tags"),
  statuses: stringList("Jobs must have one of these statuses"),
  startTime: bound("Inclusive lower bound on submissionTime; empty is no bound"),
  endTime: bound("Inclusive upper bound on submissionTime; empty is no bound"),
};
export const ControlResultSchema = Type.Object({
  statusMessage: Type.String(),
  operationComplete: Type.Boolean(),
});
export const NetworkInfoSchema = Type.Object({ host: Type.String(), ipAddresses: Type.Array(Type.String()) });

/** What a submission admits before its rules are checked: a Job whose `id` is optional. */
export type JobSubmission = Static<typeof JobSubmitSchema>;

// Compile-time: the schemas describe exactly the contract's types. `Exact` fails the build when a
// field is added to one side only, or typed differently, so the docs and validation cannot drift
// from src/api/job.ts.
type Exact<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameKeys: Exact<keyof Job, keyof Static<typeof JobSchema>> = true;
const jobDescribed: Job extends Static<typeof JobSchema> ? true : false = true;
const controlResult: Exact<ControlResult, Static<typeof ControlResultSchema>> = true;
const networkInfo: Exact<NetworkInfo, Static<typeof NetworkInfoSchema>> = true;
const clusterInfo: ClusterInfo extends Static<typeof ClusterInfoSchema> ? true : false = true;
void [sameKeys, jobDescribed, controlResult, networkInfo, clusterInfo];
