// The Launcher Plugin API 3.5 messages (launcher-plugin-api.md §5.2–5.6, §4.2): type numbers, the
// request envelope, response shapes with their exact JSON names, and the parsing of a frame's
// payload into a request envelope. Each request's fields are its TypeBox schema, next to its
// handler (handlers.ts, streams.ts).
import type { ClusterInfo, ConfigReloadErrorType, ErrCode, Job, Version } from "../api/index.js";

/** Request `messageType`s (Launcher → plugin). */
export const RequestType = {
  Heartbeat: 0,
  Bootstrap: 1,
  SubmitJob: 2,
  JobState: 3,
  JobStatus: 4,
  ControlJob: 5,
  JobOutput: 6,
  JobResourceUtil: 7,
  JobNetwork: 8,
  ClusterInfo: 9,
  SetLoadBalancerNodes: 201,
  ConfigReload: 202,
} as const;
export type RequestType = (typeof RequestType)[keyof typeof RequestType];

/** Response `messageType`s (plugin → Launcher). */
export const ResponseType = {
  Error: -1,
  Heartbeat: 0,
  Bootstrap: 1,
  JobState: 2,
  JobStatus: 3,
  ControlJob: 4,
  JobOutput: 5,
  JobResourceUtil: 6,
  JobNetwork: 7,
  ClusterInfo: 8,
  SetLoadBalancerNodes: 201,
  ConfigReload: 202,
  /** Unsolicited metrics (API ≥ 3.7); not sent by this 3.5 plugin. */
  Metrics: 203,
} as const;
export type ResponseType = (typeof ResponseType)[keyof typeof ResponseType];

// ---------------------------------------------------------------------------------------------
// Requests. Everything beyond the envelope is typed and checked by the request type's TypeBox
// schema, next to its handler (handlers.ts, streams.ts; envelope fields in messages.ts).

/** Every request: `messageType` and `requestId` (uint64) are required. */
export interface BaseRequest {
  messageType: number;
  requestId: number;
  [field: string]: unknown;
}

// ---------------------------------------------------------------------------------------------
// Responses.

export interface ResponseBase {
  messageType: number;
  requestId: number;
  /** Global, increasing from 0; always 0 on heartbeat and error responses. */
  responseId: number;
}

export interface ErrorResponse extends ResponseBase {
  messageType: typeof ResponseType.Error;
  errorCode: ErrCode;
  errorMessage: string;
}

export interface BootstrapResponse extends ResponseBase {
  version: Version;
}

export interface JobStateResponse extends ResponseBase {
  /** Never null. */
  jobs: Job[];
}

/** One open stream answered by a multi-stream message. */
export interface StreamSequence {
  requestId: number;
  /** Per stream, from 1. */
  seqId: number;
}

/** Status stream message: `requestId` is 0, the streams it answers are in `sequences`. */
export interface JobStatusResponse extends ResponseBase {
  sequences: StreamSequence[];
  id: string;
  name: string;
  status: string;
  statusCode?: string;
  statusMessage?: string;
}

export interface ControlJobResponse extends ResponseBase {
  statusMessage: string;
  operationComplete: boolean;
}

/** Output stream message: single-stream, so top-level `requestId` and `seqId`. */
export interface JobOutputResponse extends ResponseBase {
  seqId: number;
  output: string;
  /** `stdout`, `stderr` or `mixed`; empty on the final `complete` message (as the Go SDK sends it). */
  outputType: string;
  complete: boolean;
}

/** Resource stream message: multi-stream like status; zero values are omitted (Go omitempty). */
export interface JobResourceUtilResponse extends ResponseBase {
  sequences: StreamSequence[];
  cpuPercent?: number;
  cpuTime?: number;
  virtualMemory?: number;
  residentMemory?: number;
  complete: boolean;
}

export interface JobNetworkResponse extends ResponseBase {
  host: string;
  /** Never null. */
  ipAddresses: string[];
}

/** Cluster info (§5.6): the node's ClusterInfo plus the container fields a Local cluster sets false. */
export interface ClusterInfoResponse extends ResponseBase, Omit<ClusterInfo, "queues"> {
  supportsInitContainers: boolean;
  allowUnknownImages: boolean;
  containersUseHostNetwork: boolean;
  /** Omitted when empty. */
  queues?: string[];
}

export interface ConfigReloadResponse extends ResponseBase {
  errorType: ConfigReloadErrorType;
  /** Empty on success. */
  errorMessage: string;
}

// ---------------------------------------------------------------------------------------------
// Parsing a frame's payload.

export type ParsedRequest =
  | { ok: true; request: BaseRequest }
  | { ok: false; requestId?: number; message: string };

const utf8 = new TextDecoder("utf-8", { fatal: true });

function isUint(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

/**
 * Best effort for error responses to broken input: the `requestId` found in a (possibly cut or
 * invalid) JSON text, if it plainly appears there.
 */
export function sniffRequestId(bytes: Buffer | string): number | undefined {
  const text = typeof bytes === "string" ? bytes : bytes.toString("utf8");
  const match = /"requestId"\s*:\s*(\d{1,16})(?![\d.eE])/.exec(text);
  if (!match) return undefined;
  const id = Number(match[1]);
  return isUint(id) ? id : undefined;
}

/**
 * Parses a frame's payload into a request envelope: strict UTF-8, a JSON object, an integer
 * `messageType` and a non-negative integer `requestId` (both required, as in the Go SDK).
 */
export function parseRequest(payload: Buffer): ParsedRequest {
  let text: string;
  try {
    text = utf8.decode(payload);
  } catch {
    return failed(payload, "Invalid message: the payload is not valid UTF-8");
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return failed(text, `Invalid message: ${(err as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { ok: false, message: "Invalid message: expected a JSON object" };
  }
  const record = value as Record<string, unknown>;
  const requestId = isUint(record.requestId) ? record.requestId : undefined;
  if (requestId === undefined) {
    return { ok: false, message: "Invalid message: requestId must be a non-negative integer" };
  }
  if (typeof record.messageType !== "number" || !Number.isInteger(record.messageType)) {
    return { ok: false, requestId, message: "Invalid message: messageType must be an integer" };
  }
  return { ok: true, request: record as BaseRequest };
}

function failed(raw: Buffer | string, message: string): ParsedRequest {
  const requestId = sniffRequestId(raw);
  return requestId === undefined ? { ok: false, message } : { ok: false, requestId, message };
}
