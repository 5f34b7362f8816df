// Prometheus metrics for the HTTP layer, served at /metrics. Each app has its own Registry (never
// prom-client's global one): several nodes may run in one process, e.g. in tests.
import fp from "fastify-plugin";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { Type } from "typebox";

export type StreamKind = "status" | "output" | "resource" | "nodes";

export interface HttpMetrics {
  requests: Counter<"method" | "route" | "status">;
  duration: Histogram<"method" | "route" | "status">;
  /** Streams this node is serving or relaying right now. */
  openStreams: Gauge<"kind">;
}

declare module "fastify" {
  interface FastifyInstance {
    /** The node adds its own metrics (job counts, Redis latency) to this registry. */
    metricsRegistry: Registry;
    httpMetrics: HttpMetrics;
  }
}

// Sub-millisecond buckets: forwarding and Redis reads are expected to take ~1 ms.
const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

function createMetrics(registry: Registry): HttpMetrics {
  const labelNames = ["method", "route", "status"] as const;
  const openStreams = new Gauge({
    name: "launcher_open_streams",
    help: "Open status, output, resource and node-watch streams",
    labelNames: ["kind"] as const,
    registers: [registry],
  });
  // Export zeros from the start so dashboards see every kind.
  for (const kind of ["status", "output", "resource", "nodes"] satisfies StreamKind[])
    openStreams.set({ kind }, 0);
  return {
    requests: new Counter({
      name: "launcher_http_requests_total",
      help: "HTTP requests answered, by method, route pattern and status",
      labelNames,
      registers: [registry],
    }),
    duration: new Histogram({
      name: "launcher_http_request_duration_seconds",
      help: "HTTP request duration (for streams: how long the stream was open)",
      labelNames,
      buckets: DURATION_BUCKETS,
      registers: [registry],
    }),
    openStreams,
  };
}

export interface MetricsPluginOptions {
  registry?: Registry;
}

export const metricsPlugin = fp<MetricsPluginOptions>(
  async (app, opts) => {
    const registry = opts.registry ?? new Registry();
    const metrics = createMetrics(registry);
    app.decorate("metricsRegistry", registry);
    app.decorate("httpMetrics", metrics);

    // Recorded on the raw response's `close`, not in onResponse: that also covers streams the
    // client hung up on (onResponse only runs for responses that finished).
    app.addHook("onRequest", (request, reply, done) => {
      reply.raw.once("close", () => {
        // The route pattern, never the raw URL, keeps label cardinality bounded.
        const labels = {
          method: request.method,
          route: request.routeOptions.url ?? "unmatched",
          status: String(reply.statusCode),
        };
        metrics.requests.inc(labels);
        metrics.duration.observe(labels, reply.elapsedTime / 1000);
      });
      done();
    });

    app.get(
      "/metrics",
      {
        config: { public: true },
        schema: {
          tags: ["health"],
          summary: "Prometheus metrics (text exposition format)",
          security: [],
          response: { 200: Type.String({ description: "Prometheus text format" }) },
        },
      },
      async (_request, reply) => {
        const text = await registry.metrics();
        return reply.type(registry.contentType).send(text);
      },
    );
  },
  { name: "launcher-metrics", fastify: "5.x" },
);
