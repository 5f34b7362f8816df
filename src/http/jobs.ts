// The Launcher API routes: cluster info, nodes, jobs, control and the three streams.
// Thin adapters over the request layer (src/launcher/requests/): its schemas validate and document
// the messages, its functions build filters and check submissions; HTTP adds params, query lists,
// status codes and stream framing (streams.ts). Owner-only routes are forwarded by forward.ts
// before their handler runs.
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyReply } from "fastify";
import fp from "fastify-plugin";
import type { Type } from "typebox";
import { type Job, parseOperation, parseOutputType, withFields } from "../api/index.js";
import { idempotencyKeyHeader } from "../launcher/idempotency.js";
import type { LauncherService } from "../launcher/port.js";
import {
  ClusterInfoSchema,
  ControlBodySchema,
  ControlResultSchema,
  checkSubmission,
  ErrorBodySchema,
  JobSchema,
  JobSubmitSchema,
  jobFilter,
  NetworkInfoSchema,
} from "../launcher/requests/index.js";
import { JSON_UTF8, jsonListBody, jsonListOfTexts } from "./json-list.js";
import {
  FieldsQuery,
  JobIdParams,
  JobListSchema,
  ListJobsQuery,
  OutputChunkSchema,
  OutputQuery,
  ResourceSampleSchema,
  StatusEventSchema,
  StatusStreamQuery,
  StreamIdParams,
  SubmitHeaders,
} from "./schemas.js";
import { EVENT_STREAM, NDJSON, sendStream } from "./streams.js";
import { queryList, strictBodyCompiler } from "./validate.js";

export interface JobsPluginOptions {
  service: LauncherService;
}

const errors = {
  400: ErrorBodySchema,
  401: ErrorBodySchema,
  404: ErrorBodySchema,
  503: ErrorBodySchema,
};

/** Documents a stream response: the same messages as NDJSON lines or SSE `data:`. */
function streamResponse(description: string, message: Parameters<typeof Type.Array>[0]) {
  return {
    200: {
      description,
      content: { [NDJSON]: { schema: message }, [EVENT_STREAM]: { schema: message } },
    },
    ...errors,
  };
}

/** Selecting fields again is idempotent and makes the contract hold whatever the service did. */
async function* selectFields(jobs: AsyncIterable<Job>, fields: string[] | undefined): AsyncIterable<Job> {
  for await (const job of jobs) yield withFields(job, fields);
}

export const jobsPlugin = fp<JobsPluginOptions>(
  async (fastify, { service }) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

    app.get(
      "/cluster-info",
      {
        schema: {
          tags: ["fleet"],
          summary: "Cluster information",
          response: { 200: ClusterInfoSchema, ...errors },
        },
      },
      async () => service.clusterInfo(),
    );

    app.get(
      "/jobs",
      {
        schema: {
          tags: ["jobs"],
          summary: "List jobs, fleet-wide, sorted by id",
          querystring: ListJobsQuery,
          response: { 200: JobListSchema, ...errors },
        },
      },
      async (request, reply) => {
        const q = request.query;
        const filter = jobFilter(
          {
            tags: queryList(q.tags),
            statuses: queryList(q.statuses),
            startTime: q.startTime,
            endTime: q.endTime,
            fields: queryList(q.fields),
          },
          "rfc3339",
        );
        const typed = reply as FastifyReply;
        if (service.listJobsJson) {
          // Each job's JSON text, a batch at a time (the service selected the fields).
          const texts = service.listJobsJson(request.caller, filter, q.user)[Symbol.asyncIterator]();
          // Awaited before anything is sent: a failure here (Redis away) is an ordinary error reply.
          const first = await texts.next();
          return typed.type(JSON_UTF8).send(jsonListOfTexts("jobs", first, texts));
        }
        const jobs = selectFields(service.listJobs(request.caller, filter, q.user), filter.fields);
        const iterator = jobs[Symbol.asyncIterator]();
        const first = await iterator.next();
        // A stream is not the typed body the schema describes, but its bytes are exactly that body.
        return typed.type(JSON_UTF8).send(jsonListBody("jobs", first, iterator));
      },
    );

    app.post(
      "/jobs",
      {
        schema: {
          tags: ["jobs"],
          summary: "Submit a job; this node owns and runs it",
          body: JobSubmitSchema,
          headers: SubmitHeaders,
          response: { 201: JobSchema, 200: JobSchema, ...errors, 409: ErrorBodySchema, 413: ErrorBodySchema },
        },
        validatorCompiler: strictBodyCompiler,
      },
      async (request, reply) => {
        const key = idempotencyKeyHeader(request.headers["idempotency-key"]);
        const { job, replayed } = await service.submit(
          request.caller,
          checkSubmission(request.body, "body"),
          key === undefined ? {} : { idempotencyKey: key },
        );
        // 200: an earlier submission with this Idempotency-Key made the job; 201: this one did.
        return reply.code(replayed ? 200 : 201).send(job);
      },
    );

    app.get(
      "/jobs/:id",
      {
        schema: {
          tags: ["jobs"],
          summary: "One job",
          params: JobIdParams,
          querystring: FieldsQuery,
          response: { 200: JobSchema, ...errors },
        },
      },
      async (request) => {
        const fields = queryList(request.query.fields);
        const job = await service.getJob(
          request.caller,
          request.params.id,
          fields.length > 0 ? fields : undefined,
        );
        return withFields(job, fields);
      },
    );

    app.post(
      "/jobs/:id/control",
      {
        config: { ownerOnly: true },
        schema: {
          tags: ["jobs"],
          summary: "Suspend, resume, stop, kill or cancel a job (runs on the owning node)",
          params: JobIdParams,
          body: ControlBodySchema,
          response: { 200: ControlResultSchema, ...errors, 409: ErrorBodySchema },
        },
        validatorCompiler: strictBodyCompiler,
      },
      async (request) => {
        const { id } = request.params;
        const operation = parseOperation(request.body.operation, id);
        return service.control(request.caller, id, operation);
      },
    );

    app.get(
      "/jobs/:id/network",
      {
        config: { ownerOnly: true },
        schema: {
          tags: ["jobs"],
          summary: "Host and addresses of the node running the job",
          params: JobIdParams,
          response: { 200: NetworkInfoSchema, ...errors },
        },
      },
      async (request) => service.network(request.caller, request.params.id),
    );

    app.get(
      "/jobs/:id/status",
      {
        config: { streamKind: "status" },
        schema: {
          tags: ["jobs"],
          summary: "Stream of status events (`*` for every visible job)",
          params: StreamIdParams,
          querystring: StatusStreamQuery,
          response: streamResponse("Status events", StatusEventSchema),
        },
      },
      async (request, reply) => {
        const { id } = request.params;
        const lastEventId = request.headers["last-event-id"];
        const since = request.query.since ?? (typeof lastEventId === "string" ? lastEventId : undefined);
        await sendStream(request, reply, {
          kind: "status",
          completeLine: false,
          open: (signal, budget) =>
            service.statusStream(request.caller, id, {
              signal,
              budget,
              ...(since !== undefined ? { since } : {}),
            }),
          eventId: (message) => ("eventId" in message ? message.eventId : undefined),
        });
      },
    );

    app.get(
      "/jobs/:id/output",
      {
        config: { ownerOnly: true, streamKind: "output" },
        schema: {
          tags: ["jobs"],
          summary: "Stream of the job's output, from the start; ends with complete",
          params: JobIdParams,
          querystring: OutputQuery,
          response: streamResponse("Output chunks", OutputChunkSchema),
        },
      },
      async (request, reply) => {
        const { id } = request.params;
        const type = parseOutputType(request.query.outputType);
        await sendStream(request, reply, {
          kind: "output",
          completeLine: true,
          open: (signal) => service.outputStream(request.caller, id, type, signal),
        });
      },
    );

    app.get(
      "/jobs/:id/resource-util",
      {
        config: { ownerOnly: true, streamKind: "resource" },
        schema: {
          tags: ["jobs"],
          summary: "Stream of resource samples while the job runs; ends with complete",
          params: JobIdParams,
          response: { ...streamResponse("Resource samples", ResourceSampleSchema), 409: ErrorBodySchema },
        },
      },
      async (request, reply) => {
        const { id } = request.params;
        await sendStream(request, reply, {
          kind: "resource",
          completeLine: true,
          open: (signal) => service.resourceStream(request.caller, id, signal),
        });
      },
    );
  },
  {
    name: "launcher-jobs",
    fastify: "5.x",
    dependencies: ["launcher-auth", "launcher-forward", "launcher-streams"],
  },
);
