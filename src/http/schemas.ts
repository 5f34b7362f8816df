// TypeBox schemas of what only HTTP has: route params, query strings, node and health answers,
// and the stream messages for the OpenAPI document. The request messages both front doors share
// (Job, submission, control, cluster info, errors) are in src/launcher/requests/schemas.ts.
import { Type } from "typebox";
import { ErrorBodySchema, JobSchema } from "../launcher/requests/schemas.js";

const open = { additionalProperties: true } as const;
const str = (description?: string) => Type.String(description ? { description } : {});
const opt = Type.Optional;

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
    runningJobs: Type.Integer({ description: "Jobs placed on the node and not yet finished" }),
    slots: Type.Integer({ description: "LAUNCHER_MAX_RUNNING_JOBS (0: no limit)" }),
    labels: Type.Record(Type.String(), Type.String(), { description: "LAUNCHER_NODE_LABELS" }),
    queues: Type.Array(Type.String(), { description: "LAUNCHER_QUEUES" }),
  },
  open,
);
export const NodeListSchema = Type.Object({
  nodes: Type.Array(NodeViewSchema),
  /** Only when running as a Posit Launcher plugin: the Launcher's nodes from message 201 (advisory). */
  launcherNodes: opt(
    Type.Array(Type.Omit(NodeViewSchema, ["id", "online", "runningJobs", "slots", "labels", "queues"])),
  ),
});

export const JobIdParams = Type.Object({ id: Type.String({ minLength: 1, description: "Job id" }) });
export const StreamIdParams = Type.Object({
  id: Type.String({ minLength: 1, description: "Job id, or `*` for every job visible to the caller" }),
});

/** A query list: repeated keys (`?tags=a&tags=b`) and comma lists (`?tags=a,b`), see `queryList`. */
const queryList = (description: string) => opt(Type.Array(Type.String(), { description }));

export const SubmitHeaders = Type.Object(
  {
    "idempotency-key": opt(
      Type.String({
        description:
          "1 to 255 visible ASCII characters (0x21–0x7E; a UUID will do), else 400. Repeating a submission with the same key (same user, same body) within LAUNCHER_JOB_EXPIRY_HOURS returns the job the first one made (200), on any node; the same key with another body is a 409",
      }),
    ),
  },
  open,
);

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
