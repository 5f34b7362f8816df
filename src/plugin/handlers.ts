// The plugin's requests, as thin adapters over the request layer (src/launcher/requests/): each
// takes its message as its schema types it (the schema sits above the handler: the envelope fields
// of ./messages.ts plus the request layer's shared ones), calls the layer or the service, and
// returns the response message for the server to number and send. HANDLERS is the dispatch table
// the server looks requests up in: adding a request type here is one schema, one handler and its
// entry (a stream: the same in streams.ts, whose STREAM_ROUTES join the table).
import type { Logger } from "pino";
import { type Static, type TObject, Type } from "typebox";
import {
  ApiError,
  type ClusterInfo,
  ConfigReloadErrorType,
  ErrCode,
  errorText,
  type Job,
  type Node,
  parseOperation,
  requireSingleJob,
  withFields,
} from "../api/index.js";
import type { Caller, LauncherService } from "../launcher/port.js";
import {
  checkSubmission,
  jobFilter,
  jobFilterFields,
  OperationSchema,
  onOwner,
  parseSubmission,
  routeToOwner,
} from "../launcher/requests/index.js";
import { type LauncherNodes, normaliseNode } from "./launcher-nodes.js";
import { jobFields, plainRoute, type Route, userFields } from "./messages.js";
import type { OwnerClient } from "./owner-client.js";
import { type BaseRequest, RequestType, ResponseType } from "./protocol.js";
import { STREAM_ROUTES, type StreamOut } from "./streams.js";

/** What a config reload (type 202) reports. */
export interface ReloadResult {
  errorType: ConfigReloadErrorType;
  errorMessage: string;
}

/** The part of OwnerClient the server uses (a fake in tests). */
export type OwnerForwarder = Pick<OwnerClient, "control" | "network" | "outputStream" | "resourceStream">;

/** What requests are served with; may arrive after the server starts reading (node startup). */
export interface PluginDeps {
  service: LauncherService;
  owners: OwnerForwarder;
  /** Cluster info to advertise (defaults to the service's). */
  clusterInfo?: () => ClusterInfo;
  /** Config reload (type 202); without it the reload succeeds with nothing to do. */
  reloadConfig?: () => ReloadResult | Promise<ReloadResult>;
  /**
   * LAUNCHER_STREAM_BUFFER_BYTES: what a status stream may hold for a Launcher that reads slowly
   * before it ends with a Timeout error; without it, unbounded.
   */
  streamBufferBytes?: number;
}

/** A response before the server gives it its responseId. */
export type Response = { messageType: number; requestId: number } & Record<string, unknown>;

/** A request's user fields (any message, typed or not). */
export type UserFields = { readonly [field: string]: unknown; username?: unknown };

/** What a handler may use besides the request. */
export interface HandlerContext {
  deps: PluginDeps;
  logger: Logger;
  /** The caller of the request (see `callerFromRequest`). */
  caller(message: UserFields): Caller;
  launcherNodes?: LauncherNodes | undefined;
}

/** A plain request's handler: its message as its schema types it, and the raw request. */
export type Handler<S extends TObject> = (
  ctx: HandlerContext,
  message: Static<S>,
  request: BaseRequest,
) => Promise<Response> | Response;

/** A stream request's handler; the server keeps the stream's state and hands it a StreamOut. */
export type StreamHandler<S extends TObject> = (
  ctx: HandlerContext,
  message: Static<S>,
  out: StreamOut,
) => Promise<void>;

/** Messages allow fields beyond their schema (the Launcher API grows). */
const open = { additionalProperties: true } as const;

export function invalid(message: string): ApiError {
  return new ApiError(ErrCode.InvalidRequest, message);
}

/**
 * The caller for a request's user fields. `*` (all users: an admin, or Launcher authorization
 * disabled) is an admin caller named `*`; anything else is that user without groups.
 */
export function callerFromRequest(request: UserFields, adminGroup: string): Caller {
  const username = request.username;
  if (username !== undefined && typeof username !== "string") throw invalid("username must be a string");
  if (username === "*") return { user: "*", groups: [adminGroup], admin: true };
  if (!username) throw invalid("User must not be empty");
  return { user: username, groups: [], admin: false };
}

export const SubmitJobMessage = Type.Object(
  {
    ...userFields,
    job: Type.Object(
      {},
      { ...open, message: "must be a Job object", missing: "must be a Job object", description: "The job" },
    ),
  },
  open,
);
const submit: Handler<typeof SubmitJobMessage> = async (ctx, message, request) => {
  const username = message.username ?? "";
  const raw = message.job;
  if (Array.isArray(raw)) throw invalid("job must be a Job object");
  // JSON null is "absent", as Go's decoder reads it into the job's pointers and slices.
  const input = Object.fromEntries(
    Object.entries(raw as Record<string, unknown>).filter(([, v]) => v !== null),
  );
  // The Go runtime's rules: a user's own job is theirs; `*` must name the user in the job.
  if (username !== "*" && !input.user) input.user = username;
  if (!input.user) throw invalid("User must not be empty");
  const caller = ctx.caller(request);
  const job = checkSubmission(parseSubmission(input, "job"), "job");
  const { job: created } = await ctx.deps.service.submit(caller, job);
  ctx.logger.info(
    { jobId: created.id, user: created.user, requestUsername: request.requestUsername },
    "job submitted through the plugin",
  );
  return { messageType: ResponseType.JobState, requestId: request.requestId, jobs: [created] };
};

export const JobStateMessage = Type.Object({ ...jobFields, ...jobFilterFields }, open);
/** A list field with its empty entries dropped (an empty entry is no condition). */
const nonEmpty = (list: readonly string[] | undefined) => (list ?? []).filter((v) => v !== "");

const jobState: Handler<typeof JobStateMessage> = async (ctx, message, request) => {
  const caller = ctx.caller(request);
  const jobId = message.jobId;
  const fields = nonEmpty(message.fields);
  let jobs: Job[];
  if (jobId === "*") {
    const filter = jobFilter(
      {
        tags: nonEmpty(message.tags),
        statuses: nonEmpty(message.statuses),
        // An empty bound is no bound, as the SDKs send it.
        startTime: message.startTime || undefined,
        endTime: message.endTime || undefined,
        fields,
      },
      "launcher",
    );
    // One plugin message carries the whole list, so it is gathered here.
    jobs = [];
    for await (const job of ctx.deps.service.listJobs(caller, filter)) jobs.push(job);
  } else {
    // A specific id ignores the filters (CPP-code AbstractPluginApi), but not the field selection.
    jobs = [await ctx.deps.service.getJob(caller, jobId, fields.length > 0 ? fields : undefined)];
  }
  return {
    messageType: ResponseType.JobState,
    requestId: request.requestId,
    jobs: jobs.map((job) => withFields(job, fields)),
  };
};

export const ControlJobMessage = Type.Object({ ...jobFields, operation: OperationSchema }, open);
const control: Handler<typeof ControlJobMessage> = async (ctx, message, request) => {
  const caller = ctx.caller(request);
  const jobId = message.jobId;
  requireSingleJob(jobId, "control");
  const operation = parseOperation(message.operation, jobId);
  const { service } = ctx.deps;
  const route = await routeToOwner(service, caller, jobId);
  const result = await onOwner(
    route,
    () => service.control(caller, jobId, operation),
    (location) => ctx.deps.owners.control(caller, location, jobId, operation),
  );
  ctx.logger.info(
    { jobId, operation, requestUsername: request.requestUsername, forwarded: !route.local },
    "job control through the plugin",
  );
  return {
    messageType: ResponseType.ControlJob,
    requestId: request.requestId,
    statusMessage: result.statusMessage,
    operationComplete: result.operationComplete,
  };
};

export const JobNetworkMessage = Type.Object(jobFields, open);
const network: Handler<typeof JobNetworkMessage> = async (ctx, message, request) => {
  const caller = ctx.caller(request);
  const jobId = message.jobId;
  requireSingleJob(jobId, "network");
  const { service } = ctx.deps;
  const info = await onOwner(
    await routeToOwner(service, caller, jobId),
    () => service.network(caller, jobId),
    (location) => ctx.deps.owners.network(caller, location, jobId),
  );
  return {
    messageType: ResponseType.JobNetwork,
    requestId: request.requestId,
    host: info.host,
    ipAddresses: info.ipAddresses ?? [],
  };
};

export const ClusterInfoMessage = Type.Object(userFields, open);
const clusterInfo: Handler<typeof ClusterInfoMessage> = (ctx, _message, request) => {
  const info = ctx.deps.clusterInfo?.() ?? ctx.deps.service.clusterInfo();
  return {
    messageType: ResponseType.ClusterInfo,
    requestId: request.requestId,
    supportsContainers: info.supportsContainers,
    supportsInitContainers: false,
    config: info.config ?? [],
    placementConstraints: info.placementConstraints ?? [],
    ...(info.queues?.length ? { queues: info.queues } : {}),
    ...(info.defaultQueue ? { defaultQueue: info.defaultQueue } : {}),
    resourceLimits: info.resourceLimits ?? [],
    allowUnknownImages: false,
    resourceProfiles: info.resourceProfiles ?? [],
    containersUseHostNetwork: false,
  };
};

export const SetLoadBalancerNodesMessage = Type.Object(
  {
    ...userFields,
    nodes: Type.Optional(Type.Array(Type.Unknown(), { message: "must be an array of nodes" })),
  },
  open,
);
const setLoadBalancerNodes: Handler<typeof SetLoadBalancerNodesMessage> = (ctx, message, request) => {
  const nodes = (message.nodes ?? []).map(normaliseNode).filter((n): n is Node => n !== undefined);
  ctx.launcherNodes?.set(nodes);
  ctx.logger.info(
    {
      nodes: nodes.map((n) => `${n.host || n.ipv4}:${n.port} ${n.status}`),
      online: nodes.filter((n) => n.status === "Online").length,
    },
    "Launcher load balancer nodes (advisory)",
  );
  return { messageType: ResponseType.SetLoadBalancerNodes, requestId: request.requestId };
};

export const ConfigReloadMessage = Type.Object(userFields, open);
const configReload: Handler<typeof ConfigReloadMessage> = async (ctx, _message, request) => {
  let result: ReloadResult;
  try {
    result = (await ctx.deps.reloadConfig?.()) ?? { errorType: ConfigReloadErrorType.None, errorMessage: "" };
  } catch (err) {
    result = { errorType: ConfigReloadErrorType.Unknown, errorMessage: errorText(err) };
  }
  ctx.logger.info({ ...result }, "config reload requested by the Launcher");
  return {
    messageType: ResponseType.ConfigReload,
    requestId: request.requestId,
    errorType: result.errorType,
    errorMessage: result.errorMessage,
  };
};

/**
 * The dispatch table: every request type but heartbeat and bootstrap (which the server answers
 * itself: they change its state). A type missing here is answered RequestNotSupported.
 */
export const HANDLERS: Partial<Record<RequestType, Route>> = {
  [RequestType.SubmitJob]: plainRoute(SubmitJobMessage, submit),
  [RequestType.JobState]: plainRoute(JobStateMessage, jobState),
  [RequestType.ControlJob]: plainRoute(ControlJobMessage, control),
  [RequestType.JobNetwork]: plainRoute(JobNetworkMessage, network),
  [RequestType.ClusterInfo]: plainRoute(ClusterInfoMessage, clusterInfo),
  [RequestType.SetLoadBalancerNodes]: plainRoute(SetLoadBalancerNodesMessage, setLoadBalancerNodes),
  [RequestType.ConfigReload]: plainRoute(ConfigReloadMessage, configReload),
  // The streams (status, output, resource util), from streams.ts.
  ...STREAM_ROUTES,
};
