// The Launcher Plugin API 3.5 over a LauncherService: request dispatch, the response counter and
// stream bookkeeping. Transport-free: decoded frames come in through `handleEvent`, responses go
// out through a FrameWriter-like `writer`, so tests can drive it in-process.
//
// Decisions (docs/posit-launcher.md "Protocol notes"):
// - responseId: one counter for the whole process, from 0, taken by every response except
//   heartbeat and error responses, which always carry 0 (as both SDKs do).
// - Caller: `username` "*" → admin caller {user "*", groups [admin group]}; any other non-empty
//   `username` → that user, no groups, not admin; empty → InvalidRequest "User must not be empty"
//   for job requests. `requestUsername` is only logged (audit), as the reference prescribes.
// - Streams: each stream request is its own stream; status and resource messages carry
//   `requestId: 0` and `sequences: [{requestId, seqId}]`; seqIds start at 1 per stream.

import type { Logger } from "pino";
import { Compile } from "typebox/compile";
import {
  APIVersion,
  ApiError,
  type ClusterInfo,
  ConfigReloadErrorType,
  ErrCode,
  errorText,
  findApiError,
  type Job,
  type JobFilter,
  type Node,
  parseOperation,
  parseOutputType,
  parseStatuses,
  parseTime,
  requireSingleJob,
  withFields,
} from "../api/index.js";
import { JobSubmitSchema } from "../http/schemas.js";
import { nextOrAbort } from "../http/streams.js";
import { checkSubmission, type JobSubmission } from "../http/validate.js";
import type { Caller, LauncherService } from "../launcher/port.js";
import { OutputNotFoundError } from "../runner/index.js";
import { type DecodeEvent, MessageTooLargeError } from "./framing.js";
import { type LoadBalancerNodes, normaliseNode } from "./load-balancer.js";
import type { OwnerClient } from "./owner-client.js";
import { routeToOwner } from "./owner-client.js";
import {
  type BaseRequest,
  parseRequest,
  RequestType,
  ResponseType,
  type StreamSequence,
  sniffRequestId,
} from "./protocol.js";

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

export interface MessageWriter {
  write(message: unknown): Promise<void> | undefined;
  readonly maxSize: number;
}

export interface PluginServerOptions {
  writer: MessageWriter;
  logger: Logger;
  /** Group given to the `*` caller, so tokens minted for forwarding carry admin rights. */
  adminGroup: string;
  deps: PluginDeps | Promise<PluginDeps>;
  loadBalancer?: LoadBalancerNodes;
}

interface OpenStream {
  requestId: number;
  messageType: number;
  controller: AbortController;
  seqId: number;
}

const checkJob = Compile(JobSubmitSchema);

function invalid(message: string): ApiError {
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

function optString(request: BaseRequest, field: string): string | undefined {
  const value = request[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw invalid(`${field} must be a string`);
  return value;
}

function requiredString(request: BaseRequest, field: string): string {
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

function optBool(request: BaseRequest, field: string): boolean {
  const value = request[field];
  if (value === undefined || value === null) return false;
  if (typeof value !== "boolean") throw invalid(`${field} must be a boolean`);
  return value;
}

/**
 * A filter time: RFC 3339, or the C++ SDK's documented `YYYY-MM-DDThh:mm:ss[.fff]` without a zone,
 * which is UTC.
 */
export function filterTime(text: string, field: string): string {
  const zoneless = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?$/.test(text);
  return parseTime(zoneless ? `${text}Z` : text, field);
}

/** Splits output so that every message stays under the size limit (6 bytes per UTF-16 unit at worst). */
export function splitOutput(output: string, maxSize: number): string[] {
  const max = Math.max(1, Math.floor((maxSize - 512) / 6));
  if (output.length <= max) return [output];
  const pieces: string[] = [];
  let start = 0;
  while (start < output.length) {
    let end = Math.min(output.length, start + max);
    // Never cut a surrogate pair in two.
    if (end < output.length && end - start > 1) {
      const code = output.charCodeAt(end - 1);
      if (code >= 0xd800 && code <= 0xdbff) end -= 1;
    }
    pieces.push(output.slice(start, end));
    start = end;
  }
  return pieces;
}

const ABORTED = Symbol("aborted");

/** The iterator's next result, or ABORTED as soon as the signal fires (the HTTP streams' helper). */
async function nextUnlessAborted<T>(
  next: Promise<IteratorResult<T>>,
  signal: AbortSignal,
): Promise<IteratorResult<T> | typeof ABORTED> {
  try {
    return await nextOrAbort(next, signal);
  } catch (err) {
    if (signal.aborted) return ABORTED;
    throw err;
  }
}

function noop(): void {}

/**
 * Runs `fn` for each item until the iterable ends (true) or the signal fires (false). A canceled
 * stream stops at once even if the source is waiting; the source is then told to finish.
 */
async function forEachUntilAborted<T>(
  iterable: AsyncIterable<T>,
  signal: AbortSignal,
  fn: (item: T) => Promise<void> | void,
): Promise<boolean> {
  const iterator = iterable[Symbol.asyncIterator]();
  let next: Promise<IteratorResult<T>> | undefined;
  let done = false;
  try {
    for (;;) {
      next = iterator.next();
      const result = await nextUnlessAborted(next, signal);
      if (result === ABORTED) return false;
      next = undefined;
      if (result.done) {
        done = true;
        return true;
      }
      await fn(result.value);
      if (signal.aborted) return false;
    }
  } finally {
    // A source stopped early (canceled, or the sink failed) is told to finish and clean up.
    if (next) next.catch(noop);
    if (!done) iterator.return?.()?.catch(noop);
  }
}

export class PluginServer {
  private nextResponseId = 0;
  private readonly streams = new Map<number, OpenStream>();
  private readonly ready: Promise<PluginDeps>;
  private closed = false;
  private bootstrappedAt: string | undefined;

  constructor(private readonly opts: PluginServerOptions) {
    this.ready = Promise.resolve(opts.deps);
    this.ready.catch(noop);
  }

  /** True once a bootstrap request was answered successfully. */
  get bootstrapped(): boolean {
    return this.bootstrappedAt !== undefined;
  }

  /** Request ids of the streams currently open. */
  openStreams(): number[] {
    return [...this.streams.keys()];
  }

  /** One event from the frame decoder. Never throws. */
  handleEvent(event: DecodeEvent): void {
    try {
      if (event.kind === "frame") {
        this.handleFrame(event.payload);
      } else if (event.kind === "oversize") {
        const message = `Message of ${event.size} bytes exceeds the maximum message size of ${event.max} bytes`;
        this.opts.logger.warn({ size: event.size, max: event.max }, "oversize message skipped");
        this.sendError(sniffRequestId(event.prefix) ?? 0, ErrCode.InvalidRequest, message);
      } else {
        const of = event.expected === undefined ? "a 4-byte header" : `a ${event.expected}-byte message`;
        const message = `Truncated message: the input ended after ${event.received} bytes of ${of}`;
        this.opts.logger.warn(
          { expected: event.expected, received: event.received },
          "input ended inside a message",
        );
        this.sendError(sniffRequestId(event.prefix) ?? 0, ErrCode.InvalidRequest, message);
      }
    } catch (err) {
      this.opts.logger.error({ err }, "could not handle a message");
    }
  }

  handleFrame(payload: Buffer): void {
    const parsed = parseRequest(payload);
    if (!parsed.ok) {
      this.opts.logger.warn({ requestId: parsed.requestId, reason: parsed.message }, "invalid message");
      this.sendError(parsed.requestId ?? 0, ErrCode.InvalidRequest, parsed.message);
      return;
    }
    const request = parsed.request;
    if (request.messageType === RequestType.Heartbeat) {
      this.heartbeat();
      return;
    }
    this.opts.logger.debug(
      {
        messageType: request.messageType,
        requestId: request.requestId,
        username: request.username,
        requestUsername: request.requestUsername,
      },
      "request",
    );
    // Every request waits for the node (in arrival order, so a cancel always follows its stream).
    this.ready.then(
      (deps) => {
        try {
          this.dispatch(deps, request);
        } catch (err) {
          this.fail(request.requestId, err);
        }
      },
      (err: unknown) =>
        this.sendError(
          request.requestId,
          ErrCode.Unknown,
          `launcher-fleet could not start: ${errorText(err)}`,
        ),
    );
  }

  /** A heartbeat response (also sent unsolicited every `--heartbeat-interval-seconds`). */
  heartbeat(): void {
    this.writeRaw({ messageType: ResponseType.Heartbeat, requestId: 0, responseId: 0 });
  }

  /** Ends every stream; nothing is sent afterwards. */
  close(): void {
    this.closed = true;
    for (const stream of this.streams.values()) stream.controller.abort();
    this.streams.clear();
  }

  // -------------------------------------------------------------------------------------------
  // Dispatch

  private dispatch(deps: PluginDeps, request: BaseRequest): void {
    if (this.closed) return;
    const handler = this.handlerFor(deps, request);
    if (!handler) {
      this.sendError(request.requestId, ErrCode.RequestNotSupported, "Request not supported");
    } else if (handler.stream) {
      this.stream(request, handler.stream);
    } else {
      handler.run().catch((err: unknown) => this.fail(request.requestId, err));
    }
  }

  /** What serves a request type: a plain request (`run`) or a stream; undefined if unsupported. */
  private handlerFor(
    deps: PluginDeps,
    request: BaseRequest,
  ):
    | { run: () => Promise<void>; stream?: undefined }
    | { stream: (s: OpenStream) => Promise<void> }
    | undefined {
    switch (request.messageType) {
      case RequestType.Bootstrap:
        return { run: async () => this.bootstrap(request) };
      case RequestType.SubmitJob:
        return { run: () => this.submit(deps, request) };
      case RequestType.JobState:
        return { run: () => this.jobState(deps, request) };
      case RequestType.JobStatus:
        return { stream: (s) => this.statusStream(deps, request, s) };
      case RequestType.ControlJob:
        return { run: () => this.control(deps, request) };
      case RequestType.JobOutput:
        return { stream: (s) => this.outputStream(deps, request, s) };
      case RequestType.JobResourceUtil:
        return { stream: (s) => this.resourceStream(deps, request, s) };
      case RequestType.JobNetwork:
        return { run: () => this.network(deps, request) };
      case RequestType.ClusterInfo:
        return { run: async () => this.clusterInfo(deps, request) };
      case RequestType.SetLoadBalancerNodes:
        return { run: async () => this.setLoadBalancerNodes(request) };
      case RequestType.ConfigReload:
        return { run: () => this.configReload(deps, request) };
      default:
        return undefined;
    }
  }

  private caller(request: BaseRequest): Caller {
    return callerFromRequest(request, this.opts.adminGroup);
  }

  private bootstrap(request: BaseRequest): void {
    const v = (
      typeof request.version === "object" && request.version !== null ? request.version : {}
    ) as Record<string, unknown>;
    const part = (x: unknown) => (typeof x === "number" && Number.isInteger(x) ? x : 0);
    const [major, minor, patch] = [part(v.major), part(v.minor), part(v.patch)];
    if (major !== APIVersion.major) {
      throw new ApiError(
        ErrCode.UnsupportedVersion,
        `The plugin supports API version ${APIVersion.major}.X.XXXX. The Launcher's API version is ${major}.${minor}.${patch}`,
      );
    }
    this.bootstrappedAt = new Date().toISOString();
    this.opts.logger.info({ launcherVersion: `${major}.${minor}.${patch}` }, "bootstrapped by the Launcher");
    this.respond({
      messageType: ResponseType.Bootstrap,
      requestId: request.requestId,
      version: { major: APIVersion.major, minor: APIVersion.minor, patch: APIVersion.patch },
    });
  }

  private async submit(deps: PluginDeps, request: BaseRequest): Promise<void> {
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
    const caller = this.caller(request);
    if (!checkJob.Check(input)) {
      const first = checkJob.Errors(input)[0];
      throw invalid(first ? `job${first.instancePath} ${first.message}` : "job is not a valid Job");
    }
    let job: Job;
    try {
      job = checkSubmission(input as JobSubmission);
    } catch (err) {
      const api = findApiError(err);
      if (api) throw new ApiError(api.code, api.message.replace(/\bbody\b/g, "job"));
      throw err;
    }
    const created = await deps.service.submit(caller, job);
    this.opts.logger.info(
      { jobId: created.id, user: created.user, requestUsername: request.requestUsername },
      "job submitted through the plugin",
    );
    this.respond({ messageType: ResponseType.JobState, requestId: request.requestId, jobs: [created] });
  }

  private async jobState(deps: PluginDeps, request: BaseRequest): Promise<void> {
    const caller = this.caller(request);
    const jobId = requiredString(request, "jobId");
    const fields = stringList(request, "fields");
    let jobs: Job[];
    if (jobId === "*") {
      const filter: JobFilter = {};
      const tags = stringList(request, "tags");
      if (tags.length > 0) filter.tags = tags;
      const statuses = parseStatuses(stringList(request, "statuses"));
      if (statuses.length > 0) filter.statuses = statuses;
      const startTime = optString(request, "startTime");
      if (startTime) filter.startTime = filterTime(startTime, "startTime");
      const endTime = optString(request, "endTime");
      if (endTime) filter.endTime = filterTime(endTime, "endTime");
      if (fields.length > 0) filter.fields = fields;
      // One plugin message carries the whole list, so it is gathered here.
      jobs = [];
      for await (const job of deps.service.listJobs(caller, filter)) jobs.push(job);
    } else {
      // A specific id ignores the filters (CPP-code AbstractPluginApi), but not the field selection.
      jobs = [await deps.service.getJob(caller, jobId, fields.length > 0 ? fields : undefined)];
    }
    this.respond({
      messageType: ResponseType.JobState,
      requestId: request.requestId,
      jobs: jobs.map((job) => withFields(job, fields)),
    });
  }

  private async control(deps: PluginDeps, request: BaseRequest): Promise<void> {
    const caller = this.caller(request);
    const jobId = requiredString(request, "jobId");
    requireSingleJob(jobId, "control");
    const operation = parseOperation(request.operation, jobId);
    const route = await routeToOwner(deps.service, caller, jobId);
    const result = route.local
      ? await deps.service.control(caller, jobId, operation)
      : await deps.owners.control(caller, route.location, jobId, operation);
    this.opts.logger.info(
      { jobId, operation, requestUsername: request.requestUsername, forwarded: !route.local },
      "job control through the plugin",
    );
    this.respond({
      messageType: ResponseType.ControlJob,
      requestId: request.requestId,
      statusMessage: result.statusMessage,
      operationComplete: result.operationComplete,
    });
  }

  private async network(deps: PluginDeps, request: BaseRequest): Promise<void> {
    const caller = this.caller(request);
    const jobId = requiredString(request, "jobId");
    requireSingleJob(jobId, "network");
    const route = await routeToOwner(deps.service, caller, jobId);
    const info = route.local
      ? await deps.service.network(caller, jobId)
      : await deps.owners.network(caller, route.location, jobId);
    this.respond({
      messageType: ResponseType.JobNetwork,
      requestId: request.requestId,
      host: info.host,
      ipAddresses: info.ipAddresses ?? [],
    });
  }

  private clusterInfo(deps: PluginDeps, request: BaseRequest): void {
    const info = deps.clusterInfo?.() ?? deps.service.clusterInfo();
    this.respond({
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
    });
  }

  private setLoadBalancerNodes(request: BaseRequest): void {
    const raw = request.nodes ?? [];
    if (!Array.isArray(raw)) throw invalid("nodes must be an array of nodes");
    const nodes = raw.map(normaliseNode).filter((n): n is Node => n !== undefined);
    this.opts.loadBalancer?.set(nodes);
    this.opts.logger.info(
      {
        nodes: nodes.map((n) => `${n.host || n.ipv4}:${n.port} ${n.status}`),
        online: nodes.filter((n) => n.status === "Online").length,
      },
      "Launcher load balancer nodes (advisory)",
    );
    this.respond({ messageType: ResponseType.SetLoadBalancerNodes, requestId: request.requestId });
  }

  private async configReload(deps: PluginDeps, request: BaseRequest): Promise<void> {
    let result: ReloadResult;
    try {
      result = (await deps.reloadConfig?.()) ?? { errorType: ConfigReloadErrorType.None, errorMessage: "" };
    } catch (err) {
      result = { errorType: ConfigReloadErrorType.Unknown, errorMessage: errorText(err) };
    }
    this.opts.logger.info({ ...result }, "config reload requested by the Launcher");
    this.respond({
      messageType: ResponseType.ConfigReload,
      requestId: request.requestId,
      errorType: result.errorType,
      errorMessage: result.errorMessage,
    });
  }

  // -------------------------------------------------------------------------------------------
  // Streams

  /** Opens (or, with `cancel:true`, cancels) the stream keyed by the request id. */
  private stream(request: BaseRequest, body: (stream: OpenStream) => Promise<void>): void {
    const requestId = request.requestId;
    let cancel: boolean;
    try {
      cancel = optBool(request, "cancel");
    } catch (err) {
      this.fail(requestId, err);
      return;
    }
    if (cancel) {
      const open = this.streams.get(requestId);
      if (open) {
        open.controller.abort();
        this.streams.delete(requestId);
        this.opts.logger.debug({ requestId }, "stream canceled");
      }
      return; // a cancel is never answered
    }
    if (this.streams.has(requestId)) {
      this.sendError(requestId, ErrCode.InvalidRequest, `Request ${requestId} is already an open stream`);
      return;
    }
    const stream: OpenStream = {
      requestId,
      messageType: request.messageType,
      controller: new AbortController(),
      seqId: 0,
    };
    this.streams.set(requestId, stream);
    body(stream)
      .catch((err: unknown) => {
        if (!stream.controller.signal.aborted) this.fail(requestId, err);
      })
      .finally(() => {
        if (this.streams.get(requestId) === stream) this.streams.delete(requestId);
      });
  }

  /** Sends the stream's next message, numbered from 1; nothing once the stream is canceled. */
  private emit(
    stream: OpenStream,
    build: (seqId: number) => Record<string, unknown>,
  ): Promise<void> | undefined {
    if (stream.controller.signal.aborted || this.closed) return undefined;
    stream.seqId += 1;
    return this.respond(build(stream.seqId) as { messageType: number; requestId: number }, stream.requestId);
  }

  private sequences(stream: OpenStream): StreamSequence[] {
    return [{ requestId: stream.requestId, seqId: stream.seqId }];
  }

  private async statusStream(deps: PluginDeps, request: BaseRequest, stream: OpenStream): Promise<void> {
    const caller = this.caller(request);
    const jobId = requiredString(request, "jobId");
    const { signal } = stream.controller;
    await forEachUntilAborted(deps.service.statusStream(caller, jobId, { signal }), signal, (item) => {
      if ("resync" in item) return; // a fresh snapshot follows; the Launcher only needs statuses
      return this.emit(stream, () => ({
        messageType: ResponseType.JobStatus,
        requestId: 0,
        sequences: this.sequences(stream),
        id: item.id,
        name: item.name ?? "",
        status: item.status,
        ...(item.statusCode ? { statusCode: item.statusCode } : {}),
        ...(item.statusMessage ? { statusMessage: item.statusMessage } : {}),
      }));
    });
  }

  private async outputStream(deps: PluginDeps, request: BaseRequest, stream: OpenStream): Promise<void> {
    const caller = this.caller(request);
    const jobId = requiredString(request, "jobId");
    const type = parseOutputType(request.outputType ?? undefined);
    const { signal } = stream.controller;
    const route = await routeToOwner(deps.service, caller, jobId);
    const source = route.local
      ? deps.service.outputStream(caller, jobId, type, signal)
      : deps.owners.outputStream(caller, route.location, jobId, type, signal);
    const complete = await forEachUntilAborted(source, signal, async (chunk) => {
      for (const output of splitOutput(chunk.output, this.opts.writer.maxSize)) {
        await this.emit(stream, (seqId) => ({
          messageType: ResponseType.JobOutput,
          requestId: stream.requestId,
          seqId,
          output,
          outputType: chunk.outputType,
          complete: false,
        }));
      }
    });
    if (complete) {
      await this.emit(stream, (seqId) => ({
        messageType: ResponseType.JobOutput,
        requestId: stream.requestId,
        seqId,
        output: "",
        outputType: "",
        complete: true,
      }));
    }
  }

  private async resourceStream(deps: PluginDeps, request: BaseRequest, stream: OpenStream): Promise<void> {
    const caller = this.caller(request);
    const jobId = requiredString(request, "jobId");
    const { signal } = stream.controller;
    const route = await routeToOwner(deps.service, caller, jobId);
    const source = route.local
      ? deps.service.resourceStream(caller, jobId, signal)
      : deps.owners.resourceStream(caller, route.location, jobId, signal);
    const nonZero = (name: string, value: number | undefined) => (value ? { [name]: value } : {});
    const complete = await forEachUntilAborted(source, signal, (sample) =>
      this.emit(stream, () => ({
        messageType: ResponseType.JobResourceUtil,
        requestId: 0,
        sequences: this.sequences(stream),
        ...nonZero("cpuPercent", sample.cpuPercent),
        ...nonZero("cpuTime", sample.cpuTime),
        ...nonZero("virtualMemory", sample.virtualMemory),
        ...nonZero("residentMemory", sample.residentMemory),
        complete: false,
      })),
    );
    if (complete) {
      await this.emit(stream, () => ({
        messageType: ResponseType.JobResourceUtil,
        requestId: 0,
        sequences: this.sequences(stream),
        complete: true,
      }));
    }
  }

  // -------------------------------------------------------------------------------------------
  // Output

  /**
   * Sends a (non-error, non-heartbeat) response with the next responseId. The id is only used up
   * when the message was actually encoded, so ids stay gap-free. A response over the size limit
   * becomes an error for `errorRequestId` (the request it answers).
   */
  private respond(
    message: { messageType: number; requestId: number } & Record<string, unknown>,
    errorRequestId = message.requestId,
  ): Promise<void> | undefined {
    if (this.closed) return undefined;
    const { messageType, requestId, ...rest } = message;
    const full = { messageType, requestId, responseId: this.nextResponseId, ...rest };
    try {
      const drained = this.opts.writer.write(full);
      this.nextResponseId += 1;
      return drained;
    } catch (err) {
      if (!(err instanceof MessageTooLargeError)) throw err;
      this.opts.logger.warn({ requestId: errorRequestId, size: err.size }, "response too large");
      this.sendError(
        errorRequestId,
        ErrCode.Unknown,
        `Response of ${err.size} bytes exceeds the maximum message size of ${err.max} bytes`,
      );
      return undefined;
    }
  }

  private fail(requestId: number, err: unknown): void {
    let api: ApiError;
    if (err instanceof OutputNotFoundError) api = new ApiError(ErrCode.JobOutputNotFound, err.message);
    else if (err instanceof ApiError) api = err;
    else {
      const inner = findApiError(err);
      api = new ApiError(inner?.code ?? ErrCode.Unknown, errorText(err));
    }
    if (api.code === ErrCode.Unknown) this.opts.logger.error({ requestId, err }, "request failed");
    else this.opts.logger.debug({ requestId, code: api.code, message: api.message }, "request refused");
    this.sendError(requestId, api.code, api.message);
  }

  private sendError(requestId: number, code: ErrCode, message: string): void {
    if (this.closed) return;
    const text = message.length > 65_536 ? `${message.slice(0, 65_536)}…` : message;
    this.writeRaw({
      messageType: ResponseType.Error,
      requestId,
      responseId: 0,
      errorCode: code,
      errorMessage: text,
    });
  }

  private writeRaw(message: Record<string, unknown>): void {
    if (this.closed) return;
    try {
      void this.opts.writer.write(message);
    } catch (err) {
      this.opts.logger.error({ err }, "could not write a message");
    }
  }
}
