// OpenAPI 3 document generated from the route schemas (@fastify/swagger), UI at /docs and the
// document at /docs/json. Must be registered before any route so every route is collected.
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import fp from "fastify-plugin";

export const openapiPlugin = fp(
  async (app) => {
    await app.register(swagger, {
      openapi: {
        openapi: "3.0.3",
        info: {
          title: "launcher-fleet",
          description:
            "A load-balanced Posit Job Launcher fleet. Any node answers any request. " +
            "Streams are NDJSON by default, Server-Sent Events with `Accept: text/event-stream`.",
          version: "0.1.0",
        },
        components: {
          securitySchemes: {
            bearerAuth: { type: "http", scheme: "bearer", bearerFormat: "JWT" },
          },
        },
        // Every operation needs a token unless its schema says `security: []`.
        security: [{ bearerAuth: [] }],
        tags: [
          { name: "jobs", description: "Submit, list, control and follow jobs" },
          { name: "fleet", description: "Cluster information and nodes" },
          { name: "health", description: "Health, readiness and metrics (no token)" },
        ],
      },
    });
    await app.register(swaggerUi, { routePrefix: "/docs", logLevel: "warn" });
  },
  { name: "launcher-openapi", fastify: "5.x" },
);
