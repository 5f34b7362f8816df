// The port every front door (HTTP routes, Posit plugin handlers) talks to, through the request
// layer in ./requests/. `src/node.ts` provides the implementation (NodeService: job manager +
// Redis job store + status bus + registry); the front doors know nothing of Redis or processes.
import type {
  ClusterInfo,
  ControlResult,
  Job,
  JobFilter,
  JobOperation,
  JobOutput,
  NetworkInfo,
  Node,
  NodeView,
  OutputChunk,
  ResourceSample,
  StatusEvent,
} from "../api/index.js";

/** A message of `GET /nodes?watch=1`. */
export type NodeWatchMessage = { nodes: NodeView[] } | { node: NodeView } | { removed: string };

/** How a job is submitted, besides the job itself. */
export interface SubmitOptions {
  /** Idempotency-Key: repeating it (same user, same request) gives the same job, never a second. */
  idempotencyKey?: string;
}

/** A submission's answer: the job, and whether an earlier submission with its Idempotency-Key made it. */
export interface Submitted {
  job: Job;
  replayed: boolean;
}

/** Who is asking, from the verified JWT (or the auth-disabled admin). */
export interface Caller {
  /** The JWT `sub`. */
  user: string;
  groups: string[];
  admin: boolean;
}

/** A status stream item before the front door numbers it (`seqId`). */
export type StatusStreamItem = Omit<StatusEvent, "seqId"> | { resync: true };

/**
 * What a stream may hold for its client (LAUNCHER_STREAM_BUFFER_BYTES): the writer's part (bytes
 * handed to the connection that the client has not taken) plus whatever the service queues for it.
 * A service that queues what arrives on its own (status events) must keep the sum within `limit`.
 */
export interface StreamBudget {
  /** Most bytes the stream may hold that its client has not read. */
  readonly limit: number;
  /** Bytes written to the connection that the client has not read yet. */
  unread(): number;
  /**
   * The stream holds too much: the writer ends it at once (even while it waits for the client)
   * with a final error line. Returns that error, for the service to end its iterable with.
   */
  exceeded(): Error;
}

/**
 * A stream that pushes once it is live. Iterated as a plain AsyncIterable it gives every message;
 * a writer that can take messages as they come instead pulls `catchUp()` (a replay or a snapshot)
 * and then hands `follow` a function that gets every live message in the same turn it arrives: no
 * promise, iterator step or queue per message (a status stream carries thousands a second).
 */
export interface PushStream<T> extends AsyncIterable<T> {
  /** The messages up to the live point, pulled. Errors before any message (not found, bad `since`) reject its first `next()`. */
  catchUp(): AsyncIterator<T>;
  /**
   * After `catchUp()` is done: writes each live message to `sink` until the stream ends by itself
   * (resolves) or fails or its signal aborts (rejects with the reason).
   */
  follow(sink: PushSink<T>): Promise<void>;
  /** Ends the stream early (its reader stopped): it stops listening, `follow` resolves. */
  close(): void;
}

/** Where a PushStream's live messages go: the writer of its connection. */
export interface PushSink<T> {
  /** Takes a message at once; false when the client is behind (what it has not read is over its buffer). */
  write(message: T): boolean;
  /** Resolves once the client has caught up, or the stream ended. */
  drained(): Promise<void>;
}

export interface StatusStreamOptions {
  /** Resume after this fleet-wide event id (`?since=` or `Last-Event-ID`). */
  since?: string;
  signal: AbortSignal;
  /** Bound on what the stream holds; absent: the caller bounds it (or trusts its reader). */
  budget?: StreamBudget;
}

/** Where a job's owner lives, for forwarding owner-only requests. */
export interface JobLocation {
  owner: string;
  /** True when the owner is this node. */
  local: boolean;
  /** `http://ipv4:port` (or `https://`, fleet-wide) of the owner when known. */
  baseUrl?: string;
  /** The fleet's Online() verdict for the owner (false → 503 code 4). */
  online: boolean;
  draining: boolean;
}

export interface HealthReport {
  status: "Green" | "Yellow" | "Red";
  ready: boolean;
  node: NodeView;
  redis: { connected: boolean; latencyMs: number };
  fleet: { online: number; total: number };
  /** Why the node is not Green/ready, for logs and /readyz bodies. */
  reasons: string[];
}

export interface LauncherService {
  readonly nodeId: string;
  /**
   * Creates the job (record in Redis before returning) and starts it locally. The front door has
   * checked the job with `checkSubmission` (./requests/) and passes `job.id` as `""`: the service
   * assigns the id and applies who may submit for whom.
   */
  submit(caller: Caller, job: Job, opts?: SubmitOptions): Promise<Submitted>;
  getJob(caller: Caller, id: string, fields?: string[]): Promise<Job>;
  /**
   * The jobs in scope that pass the filter, sorted by id, fields selected. `user`: admins only, a
   * username or `*`; others are always scoped to themselves. An iterable so that a listing of
   * thousands of jobs is read and sent a part at a time; a failure reading the start rejects the
   * first `next()`.
   */
  listJobs(caller: Caller, filter: JobFilter, user?: string): AsyncIterable<Job>;
  /**
   * Optional, the same listing as JSON text: each job's `JSON.stringify` (fields selected), in
   * batches; what HTTP sends when the service has it (no job is built and serialised again).
   */
  listJobsJson?(caller: Caller, filter: JobFilter, user?: string): AsyncIterable<string[]>;
  /** Finds the owner of a job visible to the caller (JobNotFound otherwise). */
  locate(caller: Caller, id: string): Promise<JobLocation>;
  /** Owner-only: runs on this node; the front door routes to the owner first (`routeToOwner`). */
  control(caller: Caller, id: string, operation: JobOperation): Promise<ControlResult>;
  /** A PushStream when the writer can take live events as they come (the node's own service is). */
  statusStream(caller: Caller, id: string, opts: StatusStreamOptions): AsyncIterable<StatusStreamItem>;
  /** Owner-only. Ends after the last byte once the job is terminal. */
  outputStream(
    caller: Caller,
    id: string,
    type: JobOutput,
    signal: AbortSignal,
  ): AsyncIterable<Omit<OutputChunk, "seqId">>;
  /** Owner-only. Ends when the job leaves Running/Suspended. JobNotRunning if not running. */
  resourceStream(
    caller: Caller,
    id: string,
    signal: AbortSignal,
  ): AsyncIterable<Omit<ResourceSample, "seqId">>;
  /** Owner-only. */
  network(caller: Caller, id: string): Promise<NetworkInfo>;
  /**
   * The fleet's cluster info: `configured` (default: this node's LAUNCHER_CLUSTER_CONFIG_FILE) with
   * the queues and labels every registered node advertises added.
   */
  clusterInfo(configured?: ClusterInfo): ClusterInfo;
  nodes(): Promise<NodeView[]>;
  /**
   * `GET /nodes?watch=1`: the whole list first, then each node whose view changed (not `lastSeen`
   * alone), and each node whose record disappeared, until the signal aborts.
   */
  watchNodes(signal: AbortSignal): AsyncIterable<NodeWatchMessage>;
  /** Where node `id` is served (for forwarding a node's own requests to it); 404 unknown node. */
  locateNode(id: string): Promise<JobLocation>;
  /** Admins only (403): this node starts draining, as on SIGTERM, and then exits. */
  drain(caller: Caller): Promise<{ id: string; status: string }>;
  /** Advisory: the Posit Launcher's own nodes (plugin message 201) when running as its plugin. */
  launcherNodes?(): Node[];
  /**
   * `fleet: false` (readiness probes, several a second from every load balancer) answers from the
   * cached node table instead of reading every node's heartbeat from Redis.
   */
  health(opts?: { fleet?: boolean }): Promise<HealthReport>;
}
