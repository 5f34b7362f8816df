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
import type { Static, TObject } from "typebox";
import { APIVersion, ApiError, ErrCode, errorText, toApiError } from "../api/index.js";
import type { Caller } from "../launcher/port.js";
import { type DecodeEvent, MessageTooLargeError } from "./framing.js";
import {
  callerFromRequest,
  HANDLERS,
  type HandlerContext,
  type PluginDeps,
  type Response,
  type StreamHandler,
  type UserFields,
} from "./handlers.js";
import type { LauncherNodes } from "./launcher-nodes.js";
import { readMessage, StreamCancelMessage } from "./messages.js";
import { type BaseRequest, parseRequest, RequestType, ResponseType, sniffRequestId } from "./protocol.js";

// Kept where tests and the node import them from.
export { filterTime } from "../launcher/requests/index.js";
export { callerFromRequest, type OwnerForwarder, type PluginDeps, type ReloadResult } from "./handlers.js";
export { splitOutput } from "./streams.js";

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
  /** Where SetLoadBalancerNodes (201) records the Posit Launcher's nodes. */
  launcherNodes?: LauncherNodes;
}

interface OpenStream {
  requestId: number;
  messageType: number;
  controller: AbortController;
  seqId: number;
}

function noop(): void {}

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

  /**
   * What serves a request type: a plain request (`run`) or a stream; undefined if unsupported.
   * Bootstrap changes the server's state, so it is served here; the rest is handlers.ts's HANDLERS.
   */
  private handlerFor(
    deps: PluginDeps,
    request: BaseRequest,
  ):
    | { run: () => Promise<void>; stream?: undefined }
    | { stream: (s: OpenStream) => Promise<void> }
    | undefined {
    if (request.messageType === RequestType.Bootstrap) return { run: async () => this.bootstrap(request) };
    const route = HANDLERS[request.messageType as RequestType];
    if (!route) return undefined;
    if (route.stream) {
      const handler = route.stream;
      return {
        stream: async (s) => this.runStream(handler, deps, readMessage(route.schema, request), s),
      };
    }
    const run = route.run;
    return {
      run: async () => {
        this.respond(await run(this.context(deps), readMessage(route.schema, request), request));
      },
    };
  }

  private context(deps: PluginDeps): HandlerContext {
    return {
      deps,
      logger: this.opts.logger,
      caller: (message) => this.caller(message),
      launcherNodes: this.opts.launcherNodes,
    };
  }

  private caller(request: UserFields): Caller {
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

  // -------------------------------------------------------------------------------------------
  // Streams

  /** Opens (or, with `cancel:true`, cancels) the stream keyed by the request id. */
  private stream(request: BaseRequest, body: (stream: OpenStream) => Promise<void>): void {
    const requestId = request.requestId;
    let cancel: boolean;
    try {
      cancel = readMessage(StreamCancelMessage, request).cancel ?? false;
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
    return this.respond(build(stream.seqId) as Response, stream.requestId);
  }

  /** Runs a stream handler with this server's side of the stream. */
  private runStream(
    handler: StreamHandler<TObject>,
    deps: PluginDeps,
    message: Static<TObject>,
    stream: OpenStream,
  ) {
    return handler(this.context(deps), message, {
      requestId: stream.requestId,
      signal: stream.controller.signal,
      maxSize: this.opts.writer.maxSize,
      emit: (build) => this.emit(stream, build),
      sequences: () => [{ requestId: stream.requestId, seqId: stream.seqId }],
    });
  }

  // -------------------------------------------------------------------------------------------
  // Output

  /**
   * Sends a (non-error, non-heartbeat) response with the next responseId. The id is only used up
   * when the message was actually encoded, so ids stay gap-free. A response over the size limit
   * becomes an error for `errorRequestId` (the request it answers).
   */
  private respond(message: Response, errorRequestId = message.requestId): Promise<void> | undefined {
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
    // The request layer's one mapping (the service already turned its own failures into codes).
    const api = toApiError(err);
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
