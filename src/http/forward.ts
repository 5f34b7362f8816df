// Forwarding of owner-only requests (control, output, resource-util, network) to the node that
// owns the job (docs/architecture.md, "One owner"). The caller's own Authorization header travels with the
// request, so the owner re-verifies the same identity. Plain answers (small JSON) are read whole
// and sent in one write; streams pass through chunk by chunk, and a client hanging up aborts the
// upstream request at once (which in turn cancels the owner's stream).
//
// This is the hot path of every forwarded request, so it avoids per-request work that a profile
// showed: the answer comes through undici's dispatch handler (OwnerAnswer: no body stream, promise
// or AbortController per request), no URL parsing, no `request.routeOptions` (a getter that builds
// a new object on every access).
import type { IncomingHttpHeaders, ServerResponse } from "node:http";
import type { FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from "fastify";
import fp from "fastify-plugin";
import type { Dispatcher } from "undici";
import { ApiError, errorText, isWildcard } from "../api/index.js";
import type { Settings } from "../config.js";
import type { JobLocation, LauncherService } from "../launcher/port.js";
import { ownerRoute, ownerUnavailable } from "../launcher/requests/index.js";
import type { StreamKind } from "./metrics.js";
import { describeFailure, PeerPools } from "./peers.js";
import { coalesceWrites, EVENT_STREAM, FIRST_MESSAGE_GRACE_MS, NDJSON } from "./streams.js";
import { peerTls } from "./tls.js";

/** Hop header: the id of the node that forwarded the request (loop guard). */
export const FORWARDED_BY_HEADER = "x-launcher-forwarded-by";
/** Set on forwarded answers: which node actually served the request. */
export const SERVED_BY_HEADER = "x-launcher-owner";

/**
 * Time the owner may take to answer with headers, on top of the connect timeout: a control
 * operation does real work, and a stream may wait FIRST_MESSAGE_GRACE_MS before committing.
 */
const HEADERS_SLACK_MS = 5_000;

declare module "fastify" {
  interface FastifyContextConfig {
    /** Runs on the job's owner: other nodes forward it there. The route has an `:id` param. */
    ownerOnly?: boolean;
    /** With ownerOnly: `:id` names a node, not a job (the request runs on that node). */
    nodeRoute?: boolean;
    /** The route streams; forwarded streams have no body timeout and are tracked as open streams. */
    streamKind?: StreamKind;
  }
}

/** Request headers that travel to the owner. Hop-by-hop and length headers are recomputed. */
const FORWARDED_REQUEST_HEADERS = ["authorization", "accept", "last-event-id"] as const;
/** Response headers that travel back to the client (content-length is set from the body read). */
const RELAYED_RESPONSE_HEADERS = ["content-type", "cache-control", "x-accel-buffering", "www-authenticate"];

export interface ForwardPluginOptions {
  service: LauncherService;
  settings: Settings;
}

export const forwardPlugin = fp<ForwardPluginOptions>(
  async (app, { service, settings }) => {
    const pools = new PeerPools(settings.peerTimeoutMs, peerTls(settings));
    const headersTimeout = settings.peerTimeoutMs + FIRST_MESSAGE_GRACE_MS + HEADERS_SLACK_MS;
    app.addHook("onClose", () => pools.destroyAll());

    // Owner-only routes get the forwarding step as their own first preHandler, decided once when
    // the route is added: other routes pay nothing per request.
    app.addHook("onRoute", (route) => {
      if (route.config?.ownerOnly !== true) return;
      const step = forwardStep(route.config.streamKind, route.config.nodeRoute === true);
      const existing = route.preHandler;
      route.preHandler =
        existing === undefined ? [step] : [step, ...(Array.isArray(existing) ? existing : [existing])];
    });

    function forwardStep(streamKind: StreamKind | undefined, nodeRoute: boolean): preHandlerAsyncHookHandler {
      return async function forwardToOwner(request, reply) {
        const { id } = request.params as { id: string };
        if (isWildcard(id)) return; // no one owns "*": the route itself answers (400 or 404)
        const location = nodeRoute ? await service.locateNode(id) : await service.locate(request.caller, id);
        if (location.local) return;

        const forwardedBy = request.headers[FORWARDED_BY_HEADER];
        if (forwardedBy !== undefined) {
          // The sender believed this node owns the job and this node believes otherwise: refuse
          // rather than bounce the request around while ownership information converges.
          throw ownerUnavailable(
            id,
            location.owner,
            `is not this node (${settings.nodeId}); request forwarded by ${String(forwardedBy)}`,
          );
        }
        const route = ownerRoute(id, location);
        if (route.local) return;
        return relay(request, reply, id, route.location, route.location.baseUrl, streamKind);
      };
    }

    function relay(
      request: FastifyRequest,
      reply: FastifyReply,
      id: string,
      location: JobLocation,
      baseUrl: string,
      streamKind: StreamKind | undefined,
    ): Promise<FastifyReply> {
      const answer = new OwnerAnswer(request, reply, id, location.owner, streamKind);
      pools.get(baseUrl).dispatch(
        {
          method: request.method as Dispatcher.HttpMethod,
          path: request.url,
          headers: forwardHeaders(request, settings.nodeId),
          body: request.body === undefined ? null : JSON.stringify(request.body),
          headersTimeout,
          // Streams may be quiet for as long as the job is; plain answers must come promptly.
          bodyTimeout: streamKind ? 0 : headersTimeout,
        },
        answer,
      );
      return answer.settled;
    }
  },
  { name: "launcher-forward", fastify: "5.x", dependencies: ["launcher-auth", "launcher-streams"] },
);

function isStreamType(contentType: string): boolean {
  return contentType.startsWith(NDJSON) || contentType.startsWith(EVENT_STREAM);
}

function forwardHeaders(request: FastifyRequest, nodeId: string): Record<string, string> {
  const headers: Record<string, string> = { [FORWARDED_BY_HEADER]: nodeId, "x-request-id": request.id };
  for (const name of FORWARDED_REQUEST_HEADERS) {
    const value = request.headers[name];
    if (typeof value === "string") headers[name] = value;
  }
  if (request.body !== undefined) headers["content-type"] = "application/json";
  return headers;
}

/** The owner's response headers the client gets, plus who served it; `length` for plain answers. */
function relayedHeaders(
  upstream: IncomingHttpHeaders,
  owner: string,
  length?: string | string[],
): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = { [SERVED_BY_HEADER]: owner };
  for (const name of RELAYED_RESPONSE_HEADERS) {
    const value = upstream[name];
    if (value !== undefined) headers[name] = value;
  }
  if (length !== undefined) headers["content-length"] = length;
  return headers;
}

/** A committed relayed stream: its open-stream tracker entry, its framing and the last byte sent. */
interface RelayedStream {
  controller: AbortController;
  contentType: string;
  last: number;
}

/** Why the request to the owner was aborted when the client hung up first. */
const CLIENT_LEFT = new Error("the client left");

/**
 * The owner's answer to one forwarded request, relayed as undici's dispatch hands it over: no body
 * stream, promise or async iterator per request or per chunk, and no AbortController for plain
 * answers (a profile of a peer relaying output streams had those among its top costs).
 *
 * - A plain answer (small JSON) is gathered and sent in one write with its length.
 * - A stream passes through chunk by chunk, pausing the owner's connection while the client is
 *   behind, and counts as an open stream of this node (so app.close() ends it). If the owner's
 *   stream breaks (the owner died mid-stream) the client still gets a final error line in the
 *   stream's framing; if this node is closing, that error names why.
 * - A client hanging up aborts the request to the owner at once (which cancels the owner's stream).
 *
 * `settled` is what the preHandler returns: it resolves once the answer is sent (a plain one) or
 * committed (a stream's headers; the stream then goes on by itself), and rejects with the 503 only
 * while nothing was sent yet, so the client still gets a proper answer.
 */
class OwnerAnswer implements Dispatcher.DispatchHandler {
  readonly settled: Promise<FastifyReply>;
  private resolve!: (reply: FastifyReply) => void;
  private reject!: (err: ApiError) => void;
  private readonly res: ServerResponse;
  private upstream: Dispatcher.DispatchController | undefined;
  private clientGone = false;
  private statusCode = 0;
  private headers: IncomingHttpHeaders = {};
  private readonly chunks: Buffer[] = [];
  /** Set once a stream is committed. */
  private stream: RelayedStream | undefined;

  constructor(
    private readonly request: FastifyRequest,
    private readonly reply: FastifyReply,
    private readonly id: string,
    private readonly owner: string,
    private readonly streamKind: StreamKind | undefined,
  ) {
    this.settled = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    this.res = reply.raw;
    // Removed before every normal end of the response, whose `close` would otherwise abort.
    this.res.once("close", this.onClientClose);
  }

  private readonly onClientClose = (): void => {
    this.clientGone = true;
    this.upstream?.abort(CLIENT_LEFT);
  };

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.upstream = controller;
    if (this.clientGone) controller.abort(CLIENT_LEFT);
  }

  onResponseStart(_c: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (statusCode < 200) return; // informational: the answer follows
    this.statusCode = statusCode;
    this.headers = headers;
    const contentType = headers["content-type"];
    if (this.streamKind && typeof contentType === "string" && isStreamType(contentType)) {
      this.commitStream(this.streamKind, contentType);
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const stream = this.stream;
    if (stream === undefined) {
      this.chunks.push(chunk);
      return;
    }
    if (chunk.length > 0) stream.last = chunk[chunk.length - 1]!;
    if (this.res.destroyed) return;
    coalesceWrites(this.res);
    if (!this.res.write(chunk)) {
      controller.pause();
      this.res.once("drain", () => controller.resume());
    }
  }

  onResponseEnd(): void {
    this.res.off("close", this.onClientClose);
    if (this.stream !== undefined) {
      this.request.server.streams.remove(this.stream.controller);
      if (!this.res.writableEnded && !this.res.destroyed) this.res.end();
      return;
    }
    this.reply.hijack();
    const body = Buffer.concat(this.chunks);
    // A HEAD answer has no body but the length the GET's would have.
    const length = this.request.method === "HEAD" ? this.headers["content-length"] : String(body.length);
    this.res.writeHead(this.statusCode, relayedHeaders(this.headers, this.owner, length));
    this.res.end(body); // headers and body leave in one write
    this.resolve(this.reply);
  }

  onResponseError(_c: Dispatcher.DispatchController | null, err: Error): void {
    this.res.off("close", this.onClientClose);
    if (this.stream !== undefined) {
      this.endStream(this.stream, err);
    } else if (this.clientGone) {
      this.reply.hijack(); // nobody to answer
      this.res.destroy();
      this.resolve(this.reply);
    } else {
      this.refuse(err);
    }
  }

  /** Nothing was sent yet: the client gets the 503 naming the owner. */
  private refuse(err: Error): void {
    const why = this.statusCode === 0 ? describeFailure(err) : `broke off its answer (${errorText(err)})`;
    this.reject(ownerUnavailable(this.id, this.owner, why, err));
  }

  /**
   * Hijacked: a reply sent from a preHandler with a still-flowing body would not count as "sent"
   * yet, and fastify would go on to run the route handler locally.
   */
  private commitStream(kind: StreamKind, contentType: string): void {
    this.reply.hijack();
    coalesceWrites(this.res);
    this.res.writeHead(this.statusCode, relayedHeaders(this.headers, this.owner));
    this.res.flushHeaders();
    const controller = new AbortController();
    controller.signal.addEventListener(
      "abort",
      () => this.upstream?.abort(controller.signal.reason as Error),
      {
        once: true,
      },
    );
    this.request.server.streams.add(kind, controller);
    this.stream = { controller, contentType, last: NEWLINE };
    this.resolve(this.reply);
  }

  /** The owner's stream broke, or this node is closing: a final error line, unless the client left. */
  private endStream(stream: RelayedStream, err: Error): void {
    const { controller, contentType } = stream;
    this.request.server.streams.remove(controller);
    this.request.log.debug({ err: errorText(err) }, "forwarded stream ended early");
    if (this.clientGone || this.res.destroyed || this.res.writableEnded) return;
    const reason: unknown = controller.signal.aborted ? controller.signal.reason : err;
    const error = (
      reason instanceof ApiError ? reason : ownerUnavailable(this.id, this.owner, "closed the stream")
    ).toBody();
    const line = JSON.stringify({ error });
    const atLineStart = stream.last === NEWLINE;
    // Finish a torn line/event first so the error message parses on its own.
    coalesceWrites(this.res);
    if (contentType.startsWith(EVENT_STREAM))
      this.res.write(`${atLineStart ? "\n" : "\n\n"}data: ${line}\n\n`);
    else this.res.write(`${atLineStart ? "" : "\n"}${line}\n`);
    this.res.end();
  }
}

const NEWLINE = 0x0a;
