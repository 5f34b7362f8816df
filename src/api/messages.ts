/**
 * Response and stream message shapes of our HTTP API (docs/http-api.md). Every stream message carries a
 * `seqId` starting at 1 and rising by 1 within its stream.
 */
import type { ErrorBody } from "./errors.js";
import type { JobConfig, PlacementConstraint, ResourceLimit, ResourceProfile } from "./job.js";
import type { OutputTypeName } from "./output.js";
import type { JobStatus } from "./status.js";

/** A status stream event. `eventId` is the fleet-wide ordered position used by `?since=`. */
export interface StatusEvent {
  seqId: number;
  eventId: string;
  id: string;
  /** The job's name, `""` when it has none (the Launcher always sends it). */
  name: string;
  status: JobStatus;
  statusCode?: string;
  statusMessage?: string;
  lastUpdateTime?: string;
}

/** A piece of job output. */
export interface OutputChunk {
  seqId: number;
  output: string;
  outputType: OutputTypeName;
}

/** A resource utilisation sample: CPU time in seconds, memory in MB (10^6 bytes). */
export interface ResourceSample {
  seqId?: number;
  cpuPercent: number;
  cpuTime: number;
  residentMemory: number;
  virtualMemory: number;
}

/** The final message of output and resource streams. */
export interface StreamComplete {
  seqId: number;
  complete: true;
}

/** Sent when `?since=` is beyond the retention window; a fresh snapshot follows. */
export interface StreamResync {
  seqId: number;
  resync: true;
}

/** The final line of a stream that failed after it began. */
export interface StreamError {
  seqId?: number;
  error: ErrorBody;
}

/** `GET /jobs/{id}/network`. */
export interface NetworkInfo {
  host: string;
  ipAddresses: string[];
}

/** `GET /cluster-info`; arrays are never null. */
export interface ClusterInfo {
  supportsContainers: boolean;
  queues: string[];
  defaultQueue?: string;
  resourceLimits: ResourceLimit[];
  placementConstraints: PlacementConstraint[];
  config: JobConfig[];
  resourceProfiles: ResourceProfile[];
}

/** `POST /jobs/{id}/control` success body. */
export interface ControlResult {
  statusMessage: string;
  operationComplete: boolean;
}
