// The plugin's plain (non-stream) requests, as thin adapters over the request layer
// (src/launcher/requests/): each reads its fields from the message, calls the layer or the service,
// and returns the response message for the server to number and send. Adding a request type here
// is one handler plus its entry in PluginServer's table.
import type { Logger } from "pino";
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
  onOwner,
  parseSubmission,
  routeToOwner,
} from "../launcher/requests/index.js";
import { type LoadBalancerNodes, normaliseNode } from "./load-balancer.js";
import type { OwnerClient } from "./owner-client.js";
import { type BaseRequest, ResponseType } from "./protocol.js";

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
}

/** A response before the server gives it its responseId. */
export type Response = { messageType: number; requestId: number } & Record<string, unknown>;

/** What a handler may use besides the request. */
export interface HandlerContext {
  deps: PluginDeps;
  logger: Logger;
  /** The caller of the request (see `callerFromRequest`). */
  caller(request: BaseRequest): Caller;
  loadBalancer?: LoadBalancerNodes | undefined;
}

export type Handler = (ctx: HandlerContext, request: BaseRequest) => Promise<Response> | Response;

export function invalid(message: string): ApiError {
  return new ApiError(ErrCode.InvalidRequest, message);
}

/**
 * The caller for a request's user fields. `*` (all users: an admin, or Launcher authorization
 * disabled) is an admin caller named `*`; anything else is that user without groups.
 */
export function callerFromRequest(request: BaseRequest, adminGroup: string): Caller {
  const username = request.username;
  if (username !== undefined && typeof username !== "string") throw invalid("username must be a string");
  if (username === "*") return { user: "*", groups: [adminGroup], admin: true };
  if (!username) throw invalid("User must not be empty");
  return { user: username, groups: [], admin: false };
}

// Field readers for the plugin's JSON messages (JSON null reads as absent, as in Go).

export function optString(request: BaseRequest, field: string): string | undefined {
  const value = request[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw invalid(`${field} must be a string`);
  return value;
}

export function requiredString(request: BaseRequest, field: string): string {
  const value = optString(request, field);
  if (value === undefined || value === "") throw invalid(`${field} is required`);
  return value;
}

function stringList(request: BaseRequest, field: string): string[] {
  const value = request[field];
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || !value.every((v): v is string => typeof v === "string")) {
    throw invalid(`${field} must be an array of strings`);
  }
  return value.filter((v) => v !== "");
}

export function optBool(request: BaseRequest, field: string): boolean {
  const value = request[field];
  if (value === undefined || value === null) return false;
  if (typeof value !== "boolean") throw invalid(`${field} must be a boolean`);
  return value;
}

const submit: Handler = async (ctx, request) => {
  const username = optString(request, "username") ?? "";
  const raw = request.job;
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    throw invalid("job must be a Job object");
  // JSON null is "absent", as Go's decoder reads it into the job's pointers and slices.
  const input = Object.fromEntries(
    Object.entries(raw as Record<string, unknown>).filter(([, v]) => v !== null),
  );
  // The Go runtime's rules: a user's own job is theirs; `*` must name the user in the job.
  if (username !== "*" && !input.user) input.user = username;
  if (!input.user) throw invalid("User must not be empty");
  const caller = ctx.caller(request);
  const job = checkSubmission(parseSubmission(input, "job"), "job");
  const created = await ctx.deps.service.submit(caller, job);
  ctx.logger.info(
    { jobId: created.id, user: created.user, requestUsername: request.requestUsername },
    "job submitted through the plugin",
  );
  return { messageType: ResponseType.JobState, requestId: request.requestId, jobs: [created] };
};

const jobState: Handler = async (ctx, request) => {
  const caller = ctx.caller(request);
  const jobId = requiredString(request, "jobId");
  const fields = stringList(request, "fields");
  let jobs: Job[];
  if (jobId === "*") {
    const filter = jobFilter(
      {
        tags: stringList(request, "tags"),
        statuses: stringList(request, "statuses"),
        // An empty bound is no bound, as the SDKs send it.
        startTime: optString(request, "startTime") || undefined,
        endTime: optString(request, "endTime") || undefined,
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

const control: Handler = async (ctx, request) => {
  const caller = ctx.caller(request);
  const jobId = requiredString(request, "jobId");
  requireSingleJob(jobId, "control");
  const operation = parseOperation(request.operation, jobId);
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

const network: Handler = async (ctx, request) => {
  const caller = ctx.caller(request);
  const jobId = requiredString(request, "jobId");
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

const clusterInfo: Handler = (ctx, request) => {
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

const setLoadBalancerNodes: Handler = (ctx, request) => {
  const raw = request.nodes ?? [];
  if (!Array.isArray(raw)) throw invalid("nodes must be an array of nodes");
  const nodes = raw.map(normaliseNode).filter((n): n is Node => n !== undefined);
  ctx.loadBalancer?.set(nodes);
  ctx.logger.info(
    {
      nodes: nodes.map((n) => `${n.host || n.ipv4}:${n.port} ${n.status}`),
      online: nodes.filter((n) => n.status === "Online").length,
    },
    "Launcher load balancer nodes (advisory)",
  );
  return { messageType: ResponseType.SetLoadBalancerNodes, requestId: request.requestId };
};

const configReload: Handler = async (ctx, request) => {
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

/** The plain requests by message type (bootstrap, which changes the server's state, is its own). */
export const handlers = {
  submit,
  jobState,
  control,
  network,
  clusterInfo,
  setLoadBalancerNodes,
  configReload,
} as const;
