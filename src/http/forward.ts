// Forwarding of owner-only requests (control, output, resource-util, network) to the node that
// owns the job (docs/architecture.md, "One owner"). The caller's own Authorization header travels with the
// request, so the owner re-verifies the same identity. Plain answers (small JSON) are read whole
// and sent in one write; streams pass through chunk by chunk, and a client hanging up aborts the
// upstream request at once (which in turn cancels the owner's stream).
//
// This is the hot path of every forwarded request, so it avoids per-request work that a profile
// showed: no stream pipeline for plain answers, no AbortController.abort() (which builds a
// DOMException) unless the client really left early, no URL parsing, no `request.routeOptions`
// (a getter that builds a new object on every access).
import type { ServerResponse } from "node:http";
import type { FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from "fastify";
import fp from "fastify-plugin";
import type { Dispatcher } from "undici";
import { ApiError, errorText, isWildcard } from "../api/index.js";
import type { Settings } from "../config.js";
import type { JobLocation, LauncherService } from "../launcher/port.js";
import { ownerRoute, ownerUnavailable } from "../launcher/requests/index.js";
import type { StreamKind } from "./metrics.js";
import { describeFailure, PeerPools } from "./peers.js";
import { coalesceWrites, drained, EVENT_STREAM, FIRST_MESSAGE_GRACE_MS, NDJSON } from "./streams.js";
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

type Upstream = Dispatcher.ResponseData;

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

    async function relay(
      request: FastifyRequest,
      reply: FastifyReply,
      id: string,
      location: JobLocation,
      baseUrl: string,
      streamKind: StreamKind | undefined,
    ): Promise<FastifyReply> {
      const res = reply.raw;
      const controller = new AbortController();
      // Only a client that leaves before its answer is complete cancels the upstream request:
      // every path below removes this listener before ending the response, whose normal `close`
      // would otherwise abort (and build a DOMException) for nothing.
      const onClose = () => controller.abort();
      res.once("close", onClose);
      const clientLeft = () => {
        res.off("close", onClose);
        reply.hijack(); // nobody to answer
        res.destroy();
        return reply;
      };

      let upstream: Upstream;
      try {
        upstream = await pools.get(baseUrl).request({
          method: request.method as Dispatcher.HttpMethod,
          path: request.url,
          headers: forwardHeaders(request, settings.nodeId),
          body: request.body === undefined ? null : JSON.stringify(request.body),
          signal: controller.signal,
          headersTimeout,
          // Streams may be quiet for as long as the job is; plain answers must come promptly.
          bodyTimeout: streamKind ? 0 : headersTimeout,
        });
      } catch (err) {
        if (controller.signal.aborted) return clientLeft();
        res.off("close", onClose);
        throw ownerUnavailable(id, location.owner, describeFailure(err), err);
      }

      const contentType = upstream.headers["content-type"];
      if (streamKind && typeof contentType === "string" && isStreamType(contentType)) {
        // Hijacked: a reply sent from a preHandler with a still-flowing body would not count as
        // "sent" yet, and fastify would go on to run the route handler locally.
        reply.hijack();
        coalesceWrites(res);
        res.writeHead(upstream.statusCode, relayedHeaders(upstream, location.owner));
        res.flushHeaders();
        await relayStream(request, res, upstream.body, contentType, streamKind, controller, () =>
          ownerUnavailable(id, location.owner, "closed the stream"),
        );
        res.off("close", onClose);
        if (!res.writableEnded && !res.destroyed) res.end();
        return reply;
      }

      let body: Uint8Array;
      try {
        body = await upstream.body.bytes();
      } catch (err) {
        if (controller.signal.aborted) return clientLeft();
        res.off("close", onClose);
        // Nothing was sent yet, so the client still gets a proper answer.
        throw ownerUnavailable(id, location.owner, `broke off its answer (${errorText(err)})`, err);
      }
      res.off("close", onClose);
      reply.hijack();
      // A HEAD answer has no body but the length the GET's would have.
      const length = request.method === "HEAD" ? upstream.headers["content-length"] : String(body.length);
      res.writeHead(upstream.statusCode, relayedHeaders(upstream, location.owner, length));
      // Headers and body leave in one write.
      res.end(body);
      return reply;
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
  upstream: Upstream,
  owner: string,
  length?: string | string[],
): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = { [SERVED_BY_HEADER]: owner };
  for (const name of RELAYED_RESPONSE_HEADERS) {
    const value = upstream.headers[name];
    if (value !== undefined) headers[name] = value;
  }
  if (length !== undefined) headers["content-length"] = length;
  return headers;
}

/**
 * Passes the owner's stream to the client chunk by chunk, with backpressure, as an open stream of
 * this node too (so app.close() ends it). Resolves when the owner's stream ended, broke, or the
 * client left; never rejects.
 */
async function relayStream(
  request: FastifyRequest,
  res: ServerResponse,
  body: AsyncIterable<Buffer>,
  contentType: string,
  kind: StreamKind,
  controller: AbortController,
  lost: () => ApiError,
): Promise<void> {
  const tracker = request.server.streams;
  tracker.add(kind, controller);
  try {
    for await (const chunk of streamChunks(body, contentType, controller.signal, lost)) {
      coalesceWrites(res);
      if (!res.write(chunk)) await drained(res, controller.signal); // app.close() must not wait on a stalled client
      if (res.destroyed) break;
    }
  } catch (err) {
    request.log.debug({ err: errorText(err) }, "forwarded stream ended early");
  } finally {
    tracker.remove(controller);
  }
}

/**
 * The owner's stream chunk by chunk. If the owner's stream breaks (the owner died mid-stream) the
 * client still gets a proper final error line in the stream's framing; if this node is closing,
 * that error names why; if the client left, the stream just ends.
 */
async function* streamChunks(
  body: AsyncIterable<Buffer>,
  contentType: string,
  signal: AbortSignal,
  lost: () => ApiError,
): AsyncGenerator<Buffer | string> {
  let last = "";
  try {
    for await (const chunk of body) {
      if (chunk.length > 0) last = String.fromCharCode(chunk[chunk.length - 1]!);
      yield chunk;
    }
  } catch (err) {
    const reason: unknown = signal.aborted ? signal.reason : err;
    if (!(reason instanceof ApiError) && signal.aborted) return; // the client left
    const error = (reason instanceof ApiError ? reason : lost()).toBody();
    const line = JSON.stringify({ error });
    // Finish a torn line/event first so the error message parses on its own.
    if (contentType.startsWith(EVENT_STREAM)) yield `${last === "\n" ? "\n" : "\n\n"}data: ${line}\n\n`;
    else if (contentType.startsWith(NDJSON)) yield `${last === "\n" || last === "" ? "" : "\n"}${line}\n`;
  }
}
