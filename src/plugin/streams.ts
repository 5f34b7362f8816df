// The plugin's three streams (status, output, resource util), as thin adapters over the request
// layer: routing to the job's owner and driving the service's iterable come from
// src/launcher/requests/; what is left here is the plugin's message shapes. The server keeps the
// stream's state (request id, seqId, cancel) and hands each handler a StreamOut; the handlers are
// in STREAM_ROUTES, part of the dispatch table (HANDLERS in ./handlers.ts).

import { Type } from "typebox";
import { ApiError, ErrCode, parseOutputType } from "../api/index.js";
import type { StreamBudget } from "../launcher/port.js";
import { forEachUntilAborted, OutputTypeSchema, onOwner, routeToOwner } from "../launcher/requests/index.js";
import type { StreamHandler } from "./handlers.js";
import { type Route, streamFields, streamRoute } from "./messages.js";
import { RequestType, ResponseType, type StreamSequence } from "./protocol.js";

const open = { additionalProperties: true } as const;

/** A stream's side of the server: its signal, and its next message (numbered from 1). */
export interface StreamOut {
  readonly requestId: number;
  readonly signal: AbortSignal;
  /** Largest message the writer sends. */
  readonly maxSize: number;
  /** Sends the stream's next message; nothing once the stream is canceled. */
  emit(build: (seqId: number) => Record<string, unknown>): Promise<void> | undefined;
  /** The `sequences` of a multi-stream message (status, resource util). */
  sequences(): StreamSequence[];
}

/** Splits output so that every message stays under the size limit (6 bytes per UTF-16 unit at worst). */
export function splitOutput(output: string, maxSize: number): string[] {
  const max = Math.max(1, Math.floor((maxSize - 512) / 6));
  if (output.length <= max) return [output];
  const pieces: string[] = [];
  let start = 0;
  while (start < output.length) {
    let end = Math.min(output.length, start + max);
    // Never cut a surrogate pair in two.
    if (end < output.length && end - start > 1) {
      const code = output.charCodeAt(end - 1);
      if (code >= 0xd800 && code <= 0xdbff) end -= 1;
    }
    pieces.push(output.slice(start, end));
    start = end;
  }
  return pieces;
}

/**
 * What a status stream may hold for the Launcher: live events wait for it while it reads slowly
 * (its stdin full); past `limit` the stream ends with a Timeout error, which the Launcher answers by
 * asking again.
 */
function launcherBudget(limit: number): StreamBudget {
  return {
    limit,
    unread: () => 0, // what the writer holds is bounded by its own backpressure (framing.ts)
    exceeded: () =>
      new ApiError(
        ErrCode.Timeout,
        `status stream ended: the Launcher read too slowly (more than ${limit} bytes of events waiting)`,
      ),
  };
}

export const JobStatusMessage = Type.Object(streamFields, open);
const statusStream: StreamHandler<typeof JobStatusMessage> = async (ctx, message, out) => {
  const caller = ctx.caller(message);
  const jobId = message.jobId;
  const { signal } = out;
  const limit = ctx.deps.streamBufferBytes;
  const budget = limit === undefined ? undefined : launcherBudget(limit);
  const stream = ctx.deps.service.statusStream(caller, jobId, budget ? { signal, budget } : { signal });
  await forEachUntilAborted(stream, signal, (item) => {
    if ("resync" in item) return; // a fresh snapshot follows; the Launcher only needs statuses
    return out.emit(() => ({
      messageType: ResponseType.JobStatus,
      requestId: 0,
      sequences: out.sequences(),
      id: item.id,
      name: item.name ?? "",
      status: item.status,
      ...(item.statusCode ? { statusCode: item.statusCode } : {}),
      ...(item.statusMessage ? { statusMessage: item.statusMessage } : {}),
    }));
  });
};

export const JobOutputMessage = Type.Object(
  { ...streamFields, outputType: Type.Optional(OutputTypeSchema) },
  open,
);
const outputStream: StreamHandler<typeof JobOutputMessage> = async (ctx, message, out) => {
  const caller = ctx.caller(message);
  const jobId = message.jobId;
  const type = parseOutputType(message.outputType);
  const { signal, requestId } = out;
  const source = onOwner(
    await routeToOwner(ctx.deps.service, caller, jobId),
    () => ctx.deps.service.outputStream(caller, jobId, type, signal),
    (location) => ctx.deps.owners.outputStream(caller, location, jobId, type, signal),
  );
  const complete = await forEachUntilAborted(source, signal, async (chunk) => {
    for (const output of splitOutput(chunk.output, out.maxSize)) {
      await out.emit((seqId) => ({
        messageType: ResponseType.JobOutput,
        requestId,
        seqId,
        output,
        outputType: chunk.outputType,
        complete: false,
      }));
    }
  });
  if (complete) {
    await out.emit((seqId) => ({
      messageType: ResponseType.JobOutput,
      requestId,
      seqId,
      output: "",
      outputType: "",
      complete: true,
    }));
  }
};

export const JobResourceUtilMessage = Type.Object(streamFields, open);
const resourceStream: StreamHandler<typeof JobResourceUtilMessage> = async (ctx, message, out) => {
  const caller = ctx.caller(message);
  const jobId = message.jobId;
  const { signal } = out;
  const source = onOwner(
    await routeToOwner(ctx.deps.service, caller, jobId),
    () => ctx.deps.service.resourceStream(caller, jobId, signal),
    (location) => ctx.deps.owners.resourceStream(caller, location, jobId, signal),
  );
  const nonZero = (name: string, value: number | undefined) => (value ? { [name]: value } : {});
  const complete = await forEachUntilAborted(source, signal, (sample) =>
    out.emit(() => ({
      messageType: ResponseType.JobResourceUtil,
      requestId: 0,
      sequences: out.sequences(),
      ...nonZero("cpuPercent", sample.cpuPercent),
      ...nonZero("cpuTime", sample.cpuTime),
      ...nonZero("virtualMemory", sample.virtualMemory),
      ...nonZero("residentMemory", sample.residentMemory),
      complete: false,
    })),
  );
  if (complete) {
    await out.emit(() => ({
      messageType: ResponseType.JobResourceUtil,
      requestId: 0,
      sequences: out.sequences(),
      complete: true,
    }));
  }
};

/** The stream requests' part of the dispatch table. */
export const STREAM_ROUTES: Partial<Record<RequestType, Route>> = {
  [RequestType.JobStatus]: streamRoute(JobStatusMessage, statusStream),
  [RequestType.JobOutput]: streamRoute(JobOutputMessage, outputStream),
  [RequestType.JobResourceUtil]: streamRoute(JobResourceUtilMessage, resourceStream),
};
