// Forwarding of owner-only requests (control, output, resource-util, network) to the node that
// owns the job (DESIGN.md "One owner"). The caller's own Authorization header travels with the
// request, so the owner re-verifies the same identity; the body streams through unbuffered, and a
// client hanging up aborts the upstream request at once (which in turn cancels the owner's stream).
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { FastifyReply, FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import { ApiError, errorText } from "../api/index.js";
import type { Settings } from "../config.js";
import type { StreamKind } from "./metrics.js";
import { describeFailure, ownerUnavailable, PeerPools } from "./peers.js";
import type { JobLocation, LauncherService } from "./service.js";
import { EVENT_STREAM, FIRST_MESSAGE_GRACE_MS, NDJSON } from "./streams.js";

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
    /** The route streams; forwarded streams have no body timeout and are tracked as open streams. */
    streamKind?: StreamKind;
  }
}

/** Request headers that travel to the owner. Hop-by-hop and length headers are recomputed. */
const FORWARDED_REQUEST_HEADERS = ["authorization", "accept", "last-event-id"] as const;
/** Response headers that travel back to the client. */
const RELAYED_RESPONSE_HEADERS = ["content-type", "cache-control", "x-accel-buffering", "www-authenticate"];

export interface ForwardPluginOptions {
  service: LauncherService;
  settings: Settings;
}

export const forwardPlugin = fp<ForwardPluginOptions>(
  async (app, { service, settings }) => {
    const pools = new PeerPools(settings.peerTimeoutMs);
    const headersTimeout = settings.peerTimeoutMs + FIRST_MESSAGE_GRACE_MS + HEADERS_SLACK_MS;
    app.addHook("onClose", () => pools.destroyAll());

    app.addHook("preHandler", async (request, reply) => {
      if (request.routeOptions.config.ownerOnly !== true) return;
      const id = (request.params as { id?: string }).id;
      if (id === undefined) return;
      const location = await service.locate(request.caller, id);
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
      if (location.draining) throw ownerUnavailable(id, location.owner, "is draining");
      if (!location.online) throw ownerUnavailable(id, location.owner, "is offline");
      if (!location.baseUrl) throw ownerUnavailable(id, location.owner, "has no known address");
      return relay(request, reply, id, location);
    });

    async function relay(
      request: FastifyRequest,
      reply: FastifyReply,
      id: string,
      location: JobLocation,
    ): Promise<FastifyReply> {
      const url = new URL(location.baseUrl!);
      const streamKind = request.routeOptions.config.streamKind;
      const controller = new AbortController();
      const onClose = () => controller.abort();
      reply.raw.once("close", onClose);

      let upstream: Awaited<ReturnType<ReturnType<PeerPools["get"]>["request"]>>;
      try {
        upstream = await pools.get(url.origin).request({
          method: request.method as "GET" | "POST",
          path: request.url,
          headers: forwardHeaders(request, settings.nodeId),
          body: request.body === undefined ? null : JSON.stringify(request.body),
          signal: controller.signal,
          headersTimeout,
          // Streams may be quiet for as long as the job is; plain answers must come promptly.
          bodyTimeout: streamKind ? 0 : headersTimeout,
        });
      } catch (err) {
        reply.raw.off("close", onClose);
        if (controller.signal.aborted) {
          // The client left while we were waiting for the owner: nobody to answer.
          reply.hijack();
          reply.raw.destroy();
          return reply;
        }
        throw ownerUnavailable(id, location.owner, describeFailure(err), err);
      }

      // Hijacked: a reply sent from a preHandler with a still-flowing body would not count as
      // "sent" yet, and fastify would go on to run the route handler locally.
      reply.hijack();
      const res = reply.raw;
      const headers: Record<string, string | string[]> = { [SERVED_BY_HEADER]: location.owner };
      for (const name of streamKind
        ? RELAYED_RESPONSE_HEADERS
        : [...RELAYED_RESPONSE_HEADERS, "content-length"]) {
        const value = upstream.headers[name];
        if (value !== undefined) headers[name] = value;
      }
      res.writeHead(upstream.statusCode, headers);

      let body: Readable = upstream.body;
      if (streamKind) {
        res.flushHeaders();
        // A relayed stream counts as an open stream here too, and app.close() ends it.
        request.server.streams.add(streamKind, controller);
        const framing = String(upstream.headers["content-type"] ?? "");
        const lost = ownerUnavailable(id, location.owner, "closed the stream");
        body = Readable.from(relayStream(upstream.body, framing, controller.signal, lost));
      }
      try {
        await pipeline(body, res);
      } catch (err) {
        // The client left (or the owner broke a plain answer): the connection is gone already.
        request.log.debug({ err: errorText(err) }, "forwarded response ended early");
      } finally {
        request.server.streams.remove(controller);
        res.off("close", onClose);
      }
      return reply;
    }
  },
  { name: "launcher-forward", fastify: "5.x", dependencies: ["launcher-auth", "launcher-streams"] },
);

function forwardHeaders(request: FastifyRequest, nodeId: string): Record<string, string> {
  const headers: Record<string, string> = { [FORWARDED_BY_HEADER]: nodeId, "x-request-id": request.id };
  for (const name of FORWARDED_REQUEST_HEADERS) {
    const value = request.headers[name];
    if (typeof value === "string") headers[name] = value;
  }
  if (request.body !== undefined) headers["content-type"] = "application/json";
  return headers;
}

/**
 * Passes the owner's stream through chunk by chunk. If the owner's stream breaks (the owner died
 * mid-stream) the client still gets a proper final error line in the stream's framing; if this
 * node is closing or the client left, the stream just ends.
 */
async function* relayStream(
  body: AsyncIterable<Buffer>,
  contentType: string,
  signal: AbortSignal,
  lost: ApiError,
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
    const error = (reason instanceof ApiError ? reason : lost).toBody();
    const line = JSON.stringify({ error });
    // Finish a torn line/event first so the error message parses on its own.
    if (contentType.startsWith(EVENT_STREAM)) yield `${last === "\n" ? "\n" : "\n\n"}data: ${line}\n\n`;
    else if (contentType.startsWith(NDJSON)) yield `${last === "\n" || last === "" ? "" : "\n"}${line}\n`;
  }
}
