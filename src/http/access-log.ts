// The node's access log: fastify's own request logging, customised the way fastify provides for (a
// LogController subclass). One line per request, once its response has been sent (fastify's default
// writes two: "incoming request" and "request completed"), naming the method, URL, client address,
// status, time and, on an owner, the peer that forwarded the request. Probes that load balancers and scrapers send every
// few hundred milliseconds are logged at debug, so they do not drown the requests people make.
import { type FastifyReply, type FastifyRequest, LogController } from "fastify";
import { FORWARDED_BY_HEADER } from "./forward.js";

/** Paths asked by machines on a timer (health checks, metrics scrapes). */
const PROBES = new Set(["/healthz", "/readyz", "/metrics"]);

export class AccessLog extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    const forwardedBy = request.headers[FORWARDED_BY_HEADER];
    const line = {
      method: request.method,
      url: request.url,
      remoteAddress: request.ip,
      statusCode: reply.statusCode,
      responseTime: Math.round(reply.elapsedTime * 100) / 100,
      ...(typeof forwardedBy === "string" ? { forwardedBy } : {}),
    };
    if (error) reply.log.error({ ...line, err: error }, "request errored");
    else if (PROBES.has(request.url.split("?", 1)[0] ?? "")) reply.log.debug(line, "request completed");
    else reply.log.info(line, "request completed");
  }
}
