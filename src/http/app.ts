// Builds a node's HTTP app (not listening): one plugin per concern, registered in dependency
// order. The caller listens and calls `app.close()` to shut down (which ends open streams).
import { randomUUID } from "node:crypto";
import { type IncomingMessage, type Server, type ServerResponse, STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import Fastify, { type FastifyHttpOptions, type FastifyInstance } from "fastify";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { ErrCode } from "../api/index.js";
import type { Settings } from "../config.js";
import type { LauncherService } from "../launcher/port.js";
import { AccessLog } from "./access-log.js";
import { authPlugin } from "./auth.js";
import { consolePlugin } from "./console.js";
import { errorBody, errorsPlugin, sendError } from "./errors.js";
import { forwardPlugin } from "./forward.js";
import { healthPlugin } from "./health.js";
import { jobsPlugin } from "./jobs.js";
import { metricsPlugin } from "./metrics.js";
import { nodesPlugin } from "./nodes.js";
import { openapiPlugin } from "./openapi.js";
import { streamsPlugin } from "./streams.js";
import { serverTls } from "./tls.js";

/**
 * Largest request body. Job submissions are the only large bodies: `stdin` may be up to 1 MiB
 * (checked with a message naming the field), plus JSON escaping and the rest of the job. Anything
 * larger is refused with 413 before it is parsed.
 */
export const BODY_LIMIT_BYTES = 2 * 1024 * 1024;

export interface AppOptions {
  service: LauncherService;
  settings: Settings;
  /**
   * The node's logger. It should redact `req.headers.authorization` (src/logger.ts does); fastify's
   * request serializer never logs headers and this layer never logs tokens either.
   */
  logger: Logger;
  /** Where the HTTP metrics go; the node adds its own. A new registry when absent (never the global one). */
  registry?: Registry;
}

/**
 * How often Node looks for requests that overran the body timeout (its default, 30 s, would let a
 * request run up to twice the timeout): a quarter of the timeout, between 50 ms and 1 s. The check
 * walks only the connections whose request is still arriving.
 * Exported only for test/http/limits.test.ts (its only user outside this file).
 */
export function requestCheckIntervalMs(bodyTimeoutMs: number): number {
  return Math.min(1_000, Math.max(50, Math.floor(bodyTimeoutMs / 4)));
}

/**
 * Node's `clientError` (before fastify sees a request): the API's error body, then close. A request
 * (headers and body) that has not arrived within LAUNCHER_BODY_TIMEOUT_MS is one of these: Node's
 * `requestTimeout` only covers receiving the request, so long responses (streams) are not cut.
 */
function clientErrorHandler(bodyTimeoutMs: number) {
  return (err: NodeJS.ErrnoException, socket: Socket): void => {
    if (err.code === "ECONNRESET" || socket.destroyed) return;
    const [status, message] =
      err.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? [408, `Request timed out: the request and its body must arrive within ${bodyTimeoutMs} ms`]
        : err.code === "HPE_HEADER_OVERFLOW"
          ? [431, "Request line or headers are too large"]
          : [400, "Malformed HTTP request"];
    const body = JSON.stringify(errorBody(ErrCode.InvalidRequest, message));
    if (socket.writable) {
      socket.write(
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy(err);
  };
}

export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const { service, settings } = opts;
  const options = {
    loggerInstance: opts.logger,
    bodyLimit: BODY_LIMIT_BYTES,
    // LAUNCHER_BODY_TIMEOUT_MS: Node answers a request still arriving after this with 408 (below).
    // Given to the server's constructor too: Node 20 enforces `requestTimeout` only while
    // `headersTimeout` (default 60 s) is not longer, and the constructor keeps the two in step,
    // while fastify only assigns `requestTimeout` afterwards.
    requestTimeout: settings.bodyTimeoutMs,
    http: {
      requestTimeout: settings.bodyTimeoutMs,
      headersTimeout: Math.min(60_000, settings.bodyTimeoutMs),
      connectionsCheckingInterval: requestCheckIntervalMs(settings.bodyTimeoutMs),
    },
    requestIdHeader: "x-request-id",
    // One line per request instead of fastify's two (access-log.ts).
    logController: new AccessLog(),
    genReqId: () => randomUUID(),
    // Query strings: `?tags=a` must still be an array and `?n=5` a number. JSON bodies are
    // validated without coercion by TypeBox's compiler instead (see validate.ts).
    ajv: {
      customOptions: { coerceTypes: "array", removeAdditional: false, useDefaults: true, allErrors: false },
    },
    // What fastify and Node reject before any route runs (a malformed URL, an over-long path
    // parameter or URL, a malformed request) is answered with the API's error body too.
    frameworkErrors: (err, _request, reply) => {
      const status =
        err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 400;
      void sendError(reply, status, ErrCode.InvalidRequest, err.message);
    },
    clientErrorHandler: clientErrorHandler(settings.bodyTimeoutMs),
  } satisfies FastifyHttpOptions<Server, Logger>;
  // HTTPS when the node has a certificate (tls.ts). Fastify then ignores `http`: the https server
  // takes the same server options next to the certificate and key. Routes see no difference.
  const https = serverTls(settings);
  const app = https
    ? (Fastify({ ...options, https: { ...options.http, ...https } }) as unknown as FastifyInstance<
        Server,
        IncomingMessage,
        ServerResponse,
        Logger
      >)
    : Fastify(options);

  // Response schemas document the API; serializing with JSON.stringify sends exactly what the
  // service returned (fast-json-stringify would drop or coerce fields the schema does not list).
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));

  await app.register(errorsPlugin);
  await app.register(openapiPlugin); // before any route, so every route is documented
  await app.register(metricsPlugin, opts.registry ? { registry: opts.registry } : {});
  await app.register(authPlugin, { settings });
  await app.register(streamsPlugin, { nodeId: service.nodeId, bufferBytes: settings.streamBufferBytes });
  await app.register(healthPlugin, { service });
  await app.register(forwardPlugin, { service, settings });
  await app.register(jobsPlugin, { service });
  await app.register(nodesPlugin, { service });
  await app.register(consolePlugin); // the web console at /ui/ (static files, no token needed)
  return app as unknown as FastifyInstance;
}
