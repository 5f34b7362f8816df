// TypeBox schemas of the HTTP API: request validation and the OpenAPI document come from these.
// JSON names are exactly those of src/api/job.ts. Objects allow additional properties (the
// Launcher API grows), but every known property is type-checked.
import { Type } from "typebox";
import {
  MAX_ARGS,
  MAX_LIST,
  MAX_NAME_LENGTH,
  MAX_STDIN_BYTES,
  MAX_TAG_LENGTH,
  MAX_TAGS,
  MAX_USER_LENGTH,
} from "../api/limits.js";

// The caps live in src/api/limits.ts (the service checks them for every front door too).
export { MAX_STDIN_BYTES } from "../api/limits.js";

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

const list = <T extends Parameters<typeof Type.Array>[0]>(item: T, maxItems = MAX_LIST) =>
  opt(Type.Array(item, { maxItems }));

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
  queues: list(Type.String()),
  workingDirectory: opt(Type.String()),
  container: opt(ContainerSchema),
  host: opt(str("Host of the owning node")),
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
  environment: list(EnvSchema, MAX_ARGS),
  placementConstraints: list(PlacementConstraintSchema),
  lastUpdateTime: opt(str("RFC 3339")),
  submissionTime: opt(str("RFC 3339")),
  exposedPorts: list(PortSchema),
  mounts: list(MountSchema),
  config: list(JobConfigSchema),
  resourceLimits: list(ResourceLimitSchema),
  tags: list(Type.String({ maxLength: MAX_TAG_LENGTH }), MAX_TAGS),
  metadata: opt(Type.Record(Type.String(), Type.Unknown())),
  resourceProfile: opt(Type.String()),
};

export const JobSubmitSchema = Type.Object(jobProperties, { ...open, description: "A job to submit" });
export const JobSchema = Type.Object(
  { ...jobProperties, id: Type.String() },
  { ...open, description: "A job (empty fields are omitted)" },
);
export const JobListSchema = Type.Object({ jobs: Type.Array(JobSchema) });

export const NodeViewSchema = Type.Object(
  {
    id: Type.String(),
    host: Type.String(),
    ipv4: Type.String(),
    port: str("A string, as in the Launcher's Node"),
    lastSeen: str("RFC 3339"),
    status: str("Online, Draining or Offline"),
    online: Type.Boolean(),
    runningJobs: Type.Integer(),
  },
  open,
);
export const NodeListSchema = Type.Object({
  nodes: Type.Array(NodeViewSchema),
  /** Only when running as a Posit Launcher plugin: the Launcher's nodes from message 201 (advisory). */
  launcherNodes: opt(Type.Array(Type.Omit(NodeViewSchema, ["id", "online", "runningJobs"]))),
});

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

export const ControlBodySchema = Type.Object(
  {
    operation: Type.Union([Type.String(), Type.Integer()], {
      description: "suspend, resume, stop, kill, cancel, or 0–4",
    }),
  },
  open,
);
export const ControlResultSchema = Type.Object({
  statusMessage: Type.String(),
  operationComplete: Type.Boolean(),
});
export const NetworkInfoSchema = Type.Object({ host: Type.String(), ipAddresses: Type.Array(Type.String()) });

export const JobIdParams = Type.Object({ id: Type.String({ minLength: 1, description: "Job id" }) });
export const StreamIdParams = Type.Object({
  id: Type.String({ minLength: 1, description: "Job id, or `*` for every job visible to the caller" }),
});

/** A query list: repeated keys (`?tags=a&tags=b`) and comma lists (`?tags=a,b`), see `queryList`. */
const queryList = (description: string) => opt(Type.Array(Type.String(), { description }));

export const FieldsQuery = Type.Object({
  fields: queryList("Field selection; `id` is always kept"),
});
export const ListJobsQuery = Type.Object({
  tags: queryList("Jobs must carry all of these tags"),
  statuses: queryList("Jobs must have one of these statuses"),
  startTime: opt(str("Inclusive lower bound on submissionTime (RFC 3339)")),
  endTime: opt(str("Inclusive upper bound on submissionTime (RFC 3339)")),
  fields: queryList("Field selection; `id` is always kept"),
  user: opt(str("Admins only: a username or `*`")),
});
export const StatusStreamQuery = Type.Object({
  since: opt(str("Resume after this eventId (or send Last-Event-ID)")),
});
export const OutputQuery = Type.Object({
  outputType: opt(str("stdout, stderr or both (or 0, 1, 2); default both")),
});

// Stream messages, for the documentation of stream responses.
const seqId = Type.Integer({ minimum: 1 });
const StreamEnd = [
  Type.Object({ seqId, complete: Type.Literal(true) }),
  Type.Object({ seqId: opt(seqId), error: ErrorBodySchema }),
];
export const StatusEventSchema = Type.Union([
  Type.Object({
    seqId,
    eventId: Type.String(),
    id: Type.String(),
    name: opt(Type.String()),
    status: Type.String(),
    statusCode: opt(Type.String()),
    statusMessage: opt(Type.String()),
    lastUpdateTime: opt(Type.String()),
  }),
  Type.Object({ seqId, resync: Type.Literal(true) }),
  Type.Object({ seqId: opt(seqId), error: ErrorBodySchema }),
]);
export const OutputChunkSchema = Type.Union([
  Type.Object({ seqId, output: Type.String(), outputType: str("stdout, stderr or mixed") }),
  ...StreamEnd,
]);
export const ResourceSampleSchema = Type.Union([
  Type.Object({
    seqId,
    cpuPercent: Type.Number(),
    cpuTime: Type.Number({ description: "seconds" }),
    residentMemory: Type.Number({ description: "MB" }),
    virtualMemory: Type.Number({ description: "MB" }),
  }),
  ...StreamEnd,
]);

export const NodeHealthSchema = Type.Object(
  {
    status: Type.Union([Type.Literal("Green"), Type.Literal("Yellow"), Type.Literal("Red")]),
    node: NodeViewSchema,
    metrics: Type.Object({
      runTime: str("HH:MM:SS since start"),
      totalRequests: Type.Integer(),
      connectionCount: Type.Integer(),
    }),
    redis: Type.Object({ connected: Type.Boolean(), latencyMs: Type.Number() }),
    fleet: Type.Object({ online: Type.Integer(), total: Type.Integer() }),
  },
  open,
);
export const ReadySchema = Type.Object({ ready: Type.Boolean(), reasons: opt(Type.Array(Type.String())) });
export const HealthzSchema = Type.Object({ status: Type.String() });
