// The fleet's nodes: the list (`GET /nodes`), its live form (`?watch=1`, a stream of changes), and
// an admin's drain of one node (`POST /nodes/{id}/drain`, forwarded to that node).
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import fp from "fastify-plugin";
import { Type } from "typebox";
import type { LauncherService } from "../launcher/port.js";
import { ErrorBodySchema } from "../launcher/requests/schemas.js";
import { byId } from "../launcher/status-streams.js";
import { NodeListSchema, NodeViewSchema } from "./schemas.js";
import { EVENT_STREAM, NDJSON, sendStream } from "./streams.js";

export interface NodesPluginOptions {
  service: LauncherService;
}

const errors = { 400: ErrorBodySchema, 401: ErrorBodySchema, 404: ErrorBodySchema, 503: ErrorBodySchema };

const NodesQuery = Type.Object({
  watch: Type.Optional(
    Type.Union([Type.Literal("1"), Type.Literal("true"), Type.Literal("0"), Type.Literal("false")], {
      description:
        "Stream the list: `{nodes}` first, then `{node}` for each node whose view changed (not `lastSeen` alone) and `{removed}` for each that left; NDJSON, or SSE with `Accept: text/event-stream`",
    }),
  ),
});
const NodeIdParams = Type.Object({ id: Type.String({ minLength: 1, description: "Node id" }) });
const NodeWatchMessageSchema = Type.Union([
  Type.Object({ seqId: Type.Integer(), nodes: Type.Array(NodeViewSchema) }),
  Type.Object({ seqId: Type.Integer(), node: NodeViewSchema }),
  Type.Object({ seqId: Type.Integer(), removed: Type.String() }),
]);

export const nodesPlugin = fp<NodesPluginOptions>(
  async (fastify, { service }) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    app.get(
      "/nodes",
      {
        config: { streamKind: "nodes" },
        schema: {
          tags: ["fleet"],
          summary: "Every node known to the fleet (or, with watch=1, the list and then its changes, live)",
          querystring: NodesQuery,
          response: {
            200: {
              description: "The list; with watch=1 a stream of NodeWatch messages",
              content: {
                "application/json": { schema: NodeListSchema },
                [NDJSON]: { schema: NodeWatchMessageSchema },
                [EVENT_STREAM]: { schema: NodeWatchMessageSchema },
              },
            },
            ...errors,
          },
        },
      },
      async (request, reply) => {
        if (request.query.watch === "1" || request.query.watch === "true") {
          await sendStream(request, reply, {
            kind: "nodes",
            completeLine: false,
            open: (signal) => service.watchNodes(signal),
          });
          return reply;
        }
        return {
          nodes: [...(await service.nodes())].sort((a, b) => byId(a.id, b.id)),
          ...(service.launcherNodes ? { launcherNodes: service.launcherNodes() } : {}),
        };
      },
    );

    app.post(
      "/nodes/:id/drain",
      {
        config: { ownerOnly: true, nodeRoute: true },
        schema: {
          tags: ["fleet"],
          summary:
            "Admins: node {id} starts draining, as on SIGTERM (Draining, readiness off, no new jobs, its unstarted jobs back to the fleet queue), then exits",
          params: NodeIdParams,
          response: {
            202: Type.Object({ id: Type.String(), status: Type.String() }),
            ...errors,
            403: ErrorBodySchema,
          },
        },
      },
      async (request, reply) => reply.code(202).send(await service.drain(request.caller)),
    );
  },
  { name: "launcher-nodes", fastify: "5.x", dependencies: ["launcher-streams", "launcher-forward"] },
);
