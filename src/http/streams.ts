// The stream writer for status, output and resource streams (docs/http-api.md "Streams").
//
// - Framing: NDJSON by default, Server-Sent Events with `Accept: text/event-stream` (`id:` = the
//   status event's eventId, a keep-alive comment every 15 s).
// - Every message gets `seqId` from 1. Output and resource streams end with `{"complete":true}`.
// - An error before the stream is committed is a normal HTTP error; after, a final `{"error":…}`.
// - The client hanging up aborts the AbortSignal handed to the service at once; app.close() ends
//   every open stream with a PluginRestarted error line so clients know to reconnect.
// - Bounded (LAUNCHER_STREAM_BUFFER_BYTES): the writer waits for the client (`drain`) before it asks
//   the service for more, so a pulled stream (output, resource) holds at most the connection's
//   buffer and one message. A service that holds what arrives by itself (status events: a
//   PushStream, pulled until live, then pushed; see LiveBatch) gets a StreamBudget and calls
//   `exceeded()` when what it holds plus the unread bytes pass the limit: the stream then ends at
//   once, even while waiting for the client, with a final Timeout error line (`resume with
//   ?since=<last eventId>`), and its connection is closed.
// - An ended stream whose client does not take its last bytes within ENDED_STREAM_GRACE_MS loses its
//   connection: a client that stopped reading holds nothing after its stream ended.
import type { ServerResponse } from "node:http";
import type { FastifyReply, FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import { ApiError, ErrCode, type ErrorBody, errorText } from "../api/index.js";
import type { StreamBudget } from "../launcher/port.js";
import { AbortableNext, isPushStream } from "../launcher/requests/index.js";
import { classifyError } from "./errors.js";
import type { HttpMetrics, StreamKind } from "./metrics.js";

export type { StreamKind } from "./metrics.js";

/**
 * How long to wait for the first message before committing to a 200. Services fail fast on bad
 * requests (job not found, not running) but may legitimately wait a long time for the first event,
 * and clients must not wait that long for the response headers.
 */
export const FIRST_MESSAGE_GRACE_MS = 250;
export const SSE_KEEPALIVE_MS = 15_000;
/** How long an ended stream's last bytes wait for a client that does not read them. Exported only for test/http/limits.test.ts (its only user outside this file). */
export const ENDED_STREAM_GRACE_MS = 10_000;

export const NDJSON = "application/x-ndjson";
export const EVENT_STREAM = "text/event-stream";

/** Why a stream's AbortSignal fired when the client went away (nothing is written then). */
const CLIENT_CLOSED = Symbol("client closed");
/** Why it fired once the stream ended (a reason given saves building a DOMException per stream). */
const STREAM_ENDED = Symbol("stream ended");

export interface StreamSpec<T extends object> {
  kind: StreamKind;
  /**
   * Opens the service's iterable (or PushStream); called once, with the stream's AbortSignal and
   * its budget (for services that queue messages by themselves; see the top of this file).
   */
  open(signal: AbortSignal, budget: StreamBudget): AsyncIterable<T>;
  /** Output and resource streams end with `{"seqId":n,"complete":true}`. */
  completeLine: boolean;
  /** The SSE `id:` of a message (status events: their eventId). */
  eventId?(message: T): string | undefined;
}

/** Tracks open streams for the gauge and for shutdown. */
export class StreamTracker {
  private readonly open = new Map<AbortController, StreamKind>();

  constructor(
    private readonly gauge: HttpMetrics["openStreams"],
    /** Bytes a stream may hold that its client has not read (LAUNCHER_STREAM_BUFFER_BYTES). */
    readonly bufferBytes: number,
  ) {}

  add(kind: StreamKind, controller: AbortController): void {
    this.open.set(controller, kind);
    this.gauge.inc({ kind });
  }

  remove(controller: AbortController): void {
    const kind = this.open.get(controller);
    if (kind === undefined) return;
    this.open.delete(controller);
    this.gauge.dec({ kind });
  }

  get size(): number {
    return this.open.size;
  }

  /** Ends every open stream; `reason` becomes their final error line. */
  abortAll(reason: ApiError): void {
    for (const controller of this.open.keys()) controller.abort(reason);
  }
}

declare module "fastify" {
  interface FastifyInstance {
    streams: StreamTracker;
  }
}

export interface StreamsPluginOptions {
  nodeId: string;
  /** LAUNCHER_STREAM_BUFFER_BYTES. */
  bufferBytes: number;
}

export const streamsPlugin = fp<StreamsPluginOptions>(
  async (app, { nodeId, bufferBytes }) => {
    const tracker = new StreamTracker(app.httpMetrics.openStreams, bufferBytes);
    app.decorate("streams", tracker);
    // Before the server stops accepting: streams never end on their own, so close() would wait.
    app.addHook("preClose", async () => {
      tracker.abortAll(new ApiError(ErrCode.PluginRestarted, `Node ${nodeId} is shutting down; reconnect`));
    });
  },
  { name: "launcher-streams", fastify: "5.x", dependencies: ["launcher-metrics"] },
);

/** Whether the client asked for Server-Sent Events. */
export function wantsEventStream(request: FastifyRequest): boolean {
  return (request.headers.accept ?? "").includes(EVENT_STREAM);
}

type Framer = (seqId: number, message: object, eventId?: string) => string;

/**
 * `{"seqId":n, ...message}` as JSON, without building that object: one per message of every stream
 * (`message` never has a seqId of its own).
 */
function withSeqId(seqId: number, message: object): string {
  const json = JSON.stringify(message);
  return json.length > 2 ? `{"seqId":${seqId},${json.slice(1)}` : `{"seqId":${seqId}}`;
}

const ndjsonFrame: Framer = (seqId, message) => `${withSeqId(seqId, message)}\n`;
// JSON.stringify never emits a raw newline, so one `data:` line always holds the whole message.
const sseFrame: Framer = (seqId, message, eventId) =>
  `${eventId === undefined ? "" : `id: ${eventId}\n`}data: ${withSeqId(seqId, message)}\n\n`;

export function streamHeaders(sse: boolean): Record<string, string> {
  return {
    "content-type": sse ? EVENT_STREAM : NDJSON,
    "cache-control": "no-cache, no-transform",
    // Proxies such as nginx must not buffer a live stream.
    "x-accel-buffering": "no",
  };
}

/**
 * Holds a stream's writes until the event loop's next turn, so what is ready together (the headers,
 * a finished job's whole output, the closing line) leaves in one socket write instead of one each:
 * cheaper for this node, and for a peer relaying the stream, which then forwards one chunk.
 */
export function coalesceWrites(res: ServerResponse): void {
  if (res.writableCorked > 0 || res.destroyed) return;
  res.cork();
  setImmediate(uncorkLater, res); // no closure per call: a live stream corks once per event
}

function uncorkLater(res: ServerResponse): void {
  if (res.writableCorked > 0) res.uncork();
}

/** Writes at once; false when the connection's buffer is full (the client is behind). */
function write(res: ServerResponse, chunk: string): boolean {
  if (res.destroyed || res.writableEnded) return true;
  coalesceWrites(res);
  return res.write(chunk);
}

/** A stream's last line: `res.end()` follows at once, so there is nothing to wait for. */
function writeLast(res: ServerResponse, chunk: string): void {
  if (res.destroyed || res.writableEnded) return;
  coalesceWrites(res);
  res.write(chunk);
}

/** Held text packed into bytes past this size (see LiveBatch). */
const PACK_CHARS = 64 * 1024;

/**
 * A push stream's live messages, held as one text until the event loop's next turn, or until the
 * client has read what it was sent (`drain`) when it is behind: then what arrived meanwhile leaves in
 * one write per 64 KiB instead of a Writable entry and chunked encoding's pieces per message, which
 * a node streaming to a slow reader kept alive from one scavenge to the next. Past 64 KiB the text
 * is packed into a Buffer: a string built of thousands of framed lines is a tree of pieces, ~2.6x
 * its bytes of heap, where a behind client's budget should cost about the budget
 * (docs/benchmarks.md, "Session 13").
 */
class LiveBatch {
  private text = "";
  private packed: Buffer[] = [];
  private packedBytes = 0;
  /** A flush is due (next turn, or the next `drain`). */
  private due = false;

  constructor(private readonly res: ServerResponse) {}

  /** What it holds: bytes packed, plus the text's UTF-16 units (about its bytes; a bound, not a count). */
  get length(): number {
    return this.packedBytes + this.text.length;
  }

  /** False when the client is behind (a `drain` will follow). */
  add(chunk: string): boolean {
    this.text += chunk;
    if (this.text.length >= PACK_CHARS) {
      const bytes = Buffer.from(this.text, "utf8");
      this.packed.push(bytes);
      this.packedBytes += bytes.length;
      this.text = "";
    }
    if (!this.due) {
      this.due = true;
      setImmediate(flushWhenReady, this);
    }
    return !this.res.writableNeedDrain;
  }

  /** Writes what it holds now (before a stream's last line, or once the client can take it). */
  flush(): void {
    const { res, text, packed } = this;
    if (res.destroyed || res.writableEnded) return;
    this.text = "";
    if (packed.length > 0) {
      this.packed = [];
      this.packedBytes = 0;
      res.cork(); // one writev for all of it
      for (const bytes of packed) res.write(bytes);
      if (text !== "") res.write(text);
      res.uncork();
    } else if (text !== "") {
      res.write(text);
    }
  }

  whenReady(): void {
    if (this.res.writableNeedDrain && !this.res.destroyed) {
      this.res.once("drain", () => this.whenReady());
      return;
    }
    this.due = false;
    this.flush();
  }
}

function flushWhenReady(batch: LiveBatch): void {
  batch.whenReady();
}

/** Resolves once the response can take more data, or is gone, or `signal` aborts. */
export function drained(res: ServerResponse, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    res.once("drain", done);
    res.once("close", done);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** The final error of a stream whose client read too slowly. */
function tooSlow(kind: StreamKind, limit: number, lastEventId: string | undefined): ApiError {
  const resume =
    kind === "status" ? `; resume with ?since=${lastEventId ?? "<the last eventId received>"}` : "";
  return new ApiError(
    ErrCode.Timeout,
    `stream ended: the client read too slowly (more than ${limit} bytes unread)${resume}`,
  );
}

/**
 * After `res.end()`: closes the connection once the last bytes are out (when `close`), and in any
 * case destroys it if the client has not taken them within ENDED_STREAM_GRACE_MS.
 */
function closeWhenFlushed(res: ServerResponse, close: boolean): void {
  const socket = res.socket;
  if (!socket || socket.destroyed) return;
  if (res.writableFinished) {
    if (close) socket.end();
    return;
  }
  const timer = setTimeout(() => socket.destroy(), ENDED_STREAM_GRACE_MS);
  timer.unref();
  const finished = () => {
    clearTimeout(timer);
    socket.off("close", gone);
    if (close) socket.end();
  };
  const gone = () => {
    clearTimeout(timer);
    res.off("finish", finished);
  };
  res.once("finish", finished);
  socket.once("close", gone);
}

const GRACE_EXPIRED = Symbol("grace expired");

/** The first result if it comes within the grace period, else GRACE_EXPIRED. Rejects on error/abort. */
async function firstWithin<T>(
  next: Promise<IteratorResult<T>>,
  nexts: AbortableNext,
): Promise<IteratorResult<T> | typeof GRACE_EXPIRED> {
  let timer: NodeJS.Timeout | undefined;
  const grace = new Promise<typeof GRACE_EXPIRED>((resolve) => {
    timer = setTimeout(() => resolve(GRACE_EXPIRED), FIRST_MESSAGE_GRACE_MS);
  });
  try {
    return await Promise.race([nexts.next(next), grace]);
  } finally {
    clearTimeout(timer);
  }
}

function noop(): void {}

/**
 * Serves `spec` as a stream on `reply`. Resolves when the stream has ended. Throws (for fastify's
 * error handler) only when it fails before anything was sent.
 */
export async function sendStream<T extends object>(
  request: FastifyRequest,
  reply: FastifyReply,
  spec: StreamSpec<T>,
): Promise<void> {
  const res = reply.raw;
  const tracker = request.server.streams;
  const controller = new AbortController();
  const { signal } = controller;
  const nexts = new AbortableNext(signal);
  const onClose = () => controller.abort(CLIENT_CLOSED);
  res.once("close", onClose);
  tracker.add(spec.kind, controller);

  let lastEventId: string | undefined;
  let overflow: ApiError | undefined;
  const live = new LiveBatch(res);
  const budget: StreamBudget = {
    limit: tracker.bufferBytes,
    unread: () => res.writableLength + live.length,
    exceeded: () => {
      overflow ??= tooSlow(spec.kind, tracker.bufferBytes, lastEventId);
      if (!signal.aborted) controller.abort(overflow);
      return overflow;
    },
  };
  const source = spec.open(signal, budget);
  // A push stream is pulled until it is live, then hands over each live message as it arrives.
  const push = isPushStream(source) ? source : undefined;
  const iterator = push ? push.catchUp() : source[Symbol.asyncIterator]();
  let next = iterator.next();
  const cleanup = () => {
    tracker.remove(controller);
    res.off("close", onClose);
    // A stream we stop early: let the service's generator unwind (its signal has fired).
    next.catch(noop);
    iterator.return?.().catch(noop);
  };

  let first: IteratorResult<T> | typeof GRACE_EXPIRED;
  try {
    first = await firstWithin(next, nexts);
  } catch (err) {
    cleanup();
    if (err === CLIENT_CLOSED) {
      reply.hijack();
      return;
    }
    controller.abort(err);
    throw err; // not committed yet: a normal HTTP error
  }

  reply.hijack();
  const sse = wantsEventStream(request);
  const frame = sse ? sseFrame : ndjsonFrame;
  coalesceWrites(res);
  res.writeHead(200, streamHeaders(sse));
  res.flushHeaders();
  // Only on a quiet connection: while bytes wait for the client, the connection is not idle anyway.
  const keepAlive = sse
    ? setInterval(() => {
        if (res.writableLength === 0) write(res, ": keep-alive\n\n");
      }, SSE_KEEPALIVE_MS)
    : undefined;

  let seqId = 0;
  const framed = (message: T): string => {
    const eventId = spec.eventId?.(message);
    if (eventId !== undefined) lastEventId = eventId;
    return frame(++seqId, message, eventId);
  };
  /** Frames and writes a message; false when the client is behind. */
  const send = (message: T): boolean => write(res, framed(message));
  const sendLive = (message: T): boolean => live.add(framed(message));
  try {
    let result = first === GRACE_EXPIRED ? await nexts.next(next) : first;
    while (!result.done) {
      // Waits only when the client is behind: an `await` per message costs a promise.
      if (!send(result.value)) await drained(res, signal);
      next = iterator.next();
      result = await nexts.next(next);
    }
    if (push) await push.follow({ write: sendLive, drained: () => drained(res, signal) });
    live.flush();
    if (spec.completeLine) writeLast(res, frame(++seqId, { complete: true }));
  } catch (err) {
    if (signal.reason !== CLIENT_CLOSED) {
      live.flush();
      const failure = signal.aborted ? signal.reason : err;
      const error = streamErrorBody(failure);
      if (error.code === ErrCode.Unknown) request.log.error({ err: failure }, "stream failed");
      writeLast(res, frame(++seqId, { error }));
    }
  } finally {
    clearInterval(keepAlive);
    // Releases whatever the service tied to the signal, however the stream ended.
    if (!signal.aborted) controller.abort(STREAM_ENDED);
    cleanup();
    if (!res.writableEnded) res.end();
    closeWhenFlushed(res, overflow !== undefined);
  }
}

function streamErrorBody(err: unknown): ErrorBody {
  if (err instanceof ApiError) return err.toBody();
  const { body } = classifyError(err);
  return body.message === "" ? { ...body, message: errorText(err) } : body;
}
