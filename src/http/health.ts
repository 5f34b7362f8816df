// Health endpoints for load balancers and monitors (no token): /status, /healthz, /readyz.
import type { Server } from "node:http";
import fp from "fastify-plugin";
import { ApiError, ErrCode, errorText } from "../api/index.js";
import type { HealthReport, LauncherService } from "../launcher/port.js";
import { HealthzSchema, NodeHealthSchema, ReadySchema } from "./schemas.js";

/** `HH:MM:SS`; hours keep counting past 24 (`123:04:05`). */
export function formatRunTime(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const two = (n: number) => String(n).padStart(2, "0");
  return `${two(Math.floor(total / 3600))}:${two(Math.floor(total / 60) % 60)}:${two(total % 60)}`;
}

function connectionCount(server: Server): Promise<number> {
  return new Promise((resolve) => {
    server.getConnections((err, count) => resolve(err ? 0 : count));
  });
}

/** The service's report; a failing check is 503 (never 500): the node is not usable right now. */
async function checkHealth(service: LauncherService, fleet = true): Promise<HealthReport> {
  try {
    return await service.health({ fleet });
  } catch (err) {
    throw new ApiError(ErrCode.PluginRestarted, `Health check failed: ${errorText(err)}`, { cause: err });
  }
}

export interface HealthPluginOptions {
  service: LauncherService;
}

export const healthPlugin = fp<HealthPluginOptions>(
  async (app, { service }) => {
    const startedAt = Date.now();
    let totalRequests = 0;
    app.addHook("onResponse", (_request, _reply, done) => {
      totalRequests++;
      done();
    });

    const publicRoute = { config: { public: true } } as const;

    app.get(
      "/status",
      {
        ...publicRoute,
        schema: {
          tags: ["health"],
          summary: "Node health; 200 only when Green",
          security: [],
          response: { 200: NodeHealthSchema, 503: NodeHealthSchema },
        },
      },
      async (_request, reply) => {
        const [report, connections] = await Promise.all([checkHealth(service), connectionCount(app.server)]);
        reply.code(report.status === "Green" ? 200 : 503);
        return {
          status: report.status,
          node: report.node,
          metrics: {
            runTime: formatRunTime(Date.now() - startedAt),
            totalRequests,
            connectionCount: connections,
          },
          redis: report.redis,
          fleet: report.fleet,
        };
      },
    );

    app.get(
      "/healthz",
      {
        ...publicRoute,
        schema: {
          tags: ["health"],
          summary: "Liveness: 200 while the process serves HTTP",
          security: [],
          response: { 200: HealthzSchema },
        },
      },
      async () => ({ status: "ok" }),
    );

    app.get(
      "/readyz",
      {
        ...publicRoute,
        schema: {
          tags: ["health"],
          summary: "Readiness: 200 when the node should receive traffic",
          security: [],
          response: { 200: ReadySchema, 503: ReadySchema },
        },
      },
      async (_request, reply) => {
        const report = await checkHealth(service, false);
        if (report.ready) return { ready: true };
        reply.code(503);
        return { ready: false, reasons: report.reasons };
      },
    );
  },
  { name: "launcher-health", fastify: "5.x" },
);
