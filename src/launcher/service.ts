// The node's implementation of the launcher port (./port.ts): fleet-wide reads from Redis, owner-only
// work on local processes; status streams are StatusStreams' (./status-streams.ts).
import { readFileSync } from "node:fs";
import {
  ApiError,
  type ClusterInfo,
  type ControlResult,
  ErrCode,
  includes,
  JOB_FIELD_NAMES,
  type Job,
  type JobFilter,
  type JobOperation,
  JobOutput,
  JobStatus,
  type NetworkInfo,
  type Node,
  NodeStatus,
  type NodeView,
  type OutputChunk,
  type ResourceSample,
  requireSingleJob,
  StatusError,
  terminalStatus,
  withFields,
} from "../api/index.js";
import {
  decodeListed,
  decodeSummary,
  type JobStore,
  listedJson,
  type StoredJob,
  SUMMARY_EXACT_FIELDS,
} from "../cluster/job-store.js";
import type { Registry } from "../cluster/registry.js";
import type { StatusBus } from "../cluster/status-bus.js";
import {
  decodeOutputRecord,
  type FollowedFileSpec,
  followOutput,
  type LocalRunner,
  networkInfo,
  OutputNotFoundError,
} from "../runner/index.js";
import { checkIdempotencyKey } from "./idempotency.js";
import type { JobManager } from "./job-manager.js";
import { JobOwners } from "./job-owners.js";
import { checkPlaceable, DEFAULT_QUEUE, fleetClusterInfo, jobQueues } from "./placement.js";
import type {
  Caller,
  HealthReport,
  JobLocation,
  LauncherService,
  NodeWatchMessage,
  StatusStreamItem,
  StatusStreamOptions,
  SubmitOptions,
  Submitted,
} from "./port.js";
import { AsyncQueue, sleep } from "./queue.js";
import { byId, StatusStreams } from "./status-streams.js";

export interface ServiceOptions {
  nodeId: string;
  /** How peers are reached: the fleet shares its TLS setting (src/http/tls.ts). Default http. */
  peerScheme?: "http" | "https";
  clusterConfigFile?: string;
  resourcePollMs: number;
  /** Health inputs the service cannot see by itself. */
  isDraining: () => boolean;
  isClosing: () => boolean;
  redisConnected: () => boolean;
  /** The Posit Launcher's nodes (plugin message 201), when running as its plugin. */
  launcherNodes?: () => Node[];
  /** Starts this node's drain (as SIGTERM does); the node exits when it is done. */
  startDrain?: () => void;
}

/** Jobs whose owner `locate` remembers (~200 bytes each). */
const LOCATED_JOBS_REMEMBERED = 4_096;

function notFound(id: string, caller: Caller): ApiError {
  return new ApiError(
    ErrCode.JobNotFound,
    `Job ${id} could not be found for user ${caller.admin ? "*" : caller.user}`,
  );
}

function visibleTo(caller: Caller, user: string): boolean {
  return caller.admin || user === caller.user;
}

function visible(caller: Caller, stored: StoredJob | undefined): stored is StoredJob {
  return stored !== undefined && visibleTo(caller, stored.user);
}

/**
 * Whether a listing can be served from job summaries (no spec read or parsed): the filter needs
 * only the status, and the selected fields are only `id` and mutable fields (names `withFields`
 * does not know select nothing).
 */
function summaryServes(filter: JobFilter): boolean {
  const { fields, tags = [], startTime, endTime } = filter;
  if (fields === undefined || fields.length === 0) return false;
  if (tags.length > 0 || startTime !== undefined || endTime !== undefined) return false;
  return fields.every((f) => f === "id" || SUMMARY_EXACT_FIELDS.has(f) || !JOB_FIELD_NAMES.includes(f));
}

export class NodeService implements LauncherService {
  private readonly cluster: ClusterInfo;
  private fleetInfo: { changes: number; configured: ClusterInfo; info: ClusterInfo } | undefined;
  /** Owner and user of recently located jobs: routing reads Redis once per job, not per request. */
  private readonly owners = new JobOwners(LOCATED_JOBS_REMEMBERED);
  private readonly statusStreams: StatusStreams;

  constructor(
    private readonly store: JobStore,
    private readonly registry: Registry,
    private readonly bus: StatusBus,
    private readonly manager: JobManager,
    private readonly runner: LocalRunner,
    private readonly opts: ServiceOptions,
  ) {
    this.cluster = loadClusterInfo(opts.clusterConfigFile);
    if (opts.launcherNodes) this.launcherNodes = opts.launcherNodes;
    this.statusStreams = new StatusStreams(store, bus, (caller, id) => this.visibleJob(caller, id));
  }

  get nodeId(): string {
    return this.opts.nodeId;
  }

  /** The job was checked by the request layer's `checkSubmission`; this decides whose it is. */
  async submit(caller: Caller, job: Job, opts: SubmitOptions = {}): Promise<Submitted> {
    if (job.user && job.user !== caller.user && !caller.admin) {
      throw new ApiError(
        ErrCode.InvalidRequest,
        "user: only admins may submit jobs on behalf of another user",
      );
    }
    const user = job.user && caller.admin ? job.user : caller.user;
    if (user === "*") throw new ApiError(ErrCode.InvalidRequest, "user: a job needs a real user, not *");
    // A job no registered node could ever run is refused here, before it exists (a 503 while no node is up to tell).
    await checkPlaceable(this.registry, jobQueues(job, this.defaultQueue()), job.placementConstraints);
    // The Launcher's default profile, whichever front door the job came through.
    const key = opts.idempotencyKey === undefined ? undefined : checkIdempotencyKey(opts.idempotencyKey);
    return this.manager.submit({ ...job, resourceProfile: job.resourceProfile || "custom" }, user, key);
  }

  private async visibleJob(caller: Caller, id: string): Promise<StoredJob> {
    const stored = await this.store.get(id);
    if (!visible(caller, stored)) throw notFound(id, caller);
    return stored;
  }

  async getJob(caller: Caller, id: string, fields?: string[]): Promise<Job> {
    return withFields((await this.visibleJob(caller, id)).job, fields);
  }

  /**
   * What a listing reads: the ids in scope from the submission-time index (by user when scoped),
   * sorted by id as the API requires (only the ids are held whole; the jobs are read, filtered and
   * handed on one batch at a time, so a listing of 10,000 jobs never holds them all), and how.
   * Redis leaves out jobs of other statuses and jobs whose spec lacks a filter tag's JSON text
   * (read_jobs.lua); tags and time bounds are then checked exactly (`includes`) on the parsed job.
   */
  private async listPlan(caller: Caller, filter: JobFilter, user?: string) {
    const scope = caller.admin ? (user ?? "*") : caller.user;
    const ids = await this.store.listIds({
      ...(scope === "*" ? {} : { user: scope }),
      ...(filter.startTime ? { startMs: Date.parse(filter.startTime) } : {}),
      ...(filter.endTime ? { endMs: Date.parse(filter.endTime) } : {}),
    });
    const summary = summaryServes(filter);
    const tags = filter.tags ?? [];
    return {
      ids: ids.sort(byId),
      summary,
      /** Whether each job read must still pass `includes` (the tags and time bounds). */
      exact: tags.length > 0 || filter.startTime !== undefined || filter.endTime !== undefined,
      read: { summary, statuses: filter.statuses, needles: tags.map((t) => JSON.stringify(t)) },
    };
  }

  /** The job a listing read, as `decodeJob` (or `decodeSummary`) gives it. */
  private static listed(summary: boolean, id: string, values: readonly (string | null)[]): Job | undefined {
    return summary ? decodeSummary(id, values)?.job : decodeListed(id, values);
  }

  async *listJobs(caller: Caller, filter: JobFilter, user?: string): AsyncIterable<Job> {
    const plan = await this.listPlan(caller, filter, user);
    for await (const batch of this.store.readListed(plan.ids, plan.read)) {
      for (const { id, values } of batch) {
        const job = NodeService.listed(plan.summary, id, values);
        if (job && includes(filter, job)) yield withFields(job, filter.fields);
      }
    }
  }

  /**
   * `listJobs` as the JSON text of each job, a batch at a time: a whole job's text is spliced from
   * its stored spec (`listedJson`), never parsed and serialised again; a job is parsed only to
   * check tags or time bounds, or to select fields from its spec.
   */
  async *listJobsJson(caller: Caller, filter: JobFilter, user?: string): AsyncIterable<string[]> {
    const plan = await this.listPlan(caller, filter, user);
    const whole = filter.fields === undefined || filter.fields.length === 0;
    for await (const batch of this.store.readListed(plan.ids, plan.read)) {
      const out: string[] = [];
      for (const { id, values } of batch) {
        if (whole && !plan.summary && !plan.exact) {
          const text = listedJson(id, values);
          if (text !== undefined) out.push(text);
          continue;
        }
        const job = NodeService.listed(plan.summary, id, values);
        if (!job || !includes(filter, job)) continue;
        out.push(
          whole && !plan.summary ? listedJson(id, values)! : JSON.stringify(withFields(job, filter.fields)),
        );
      }
      yield out;
    }
  }

  async locate(caller: Caller, id: string): Promise<JobLocation> {
    const known = this.owners.get(id);
    if (known !== undefined) {
      // The user never changes, so a job hidden from this caller stays hidden (or is gone): 404.
      if (!visibleTo(caller, known.user)) throw notFound(id, caller);
      // Whoever serves the request reads the job itself; only an owner that cannot be asked (offline,
      // draining, unknown) is answered from here, and then from a fresh read.
      const location = await this.locationOf(known.owner);
      if (location.local || (location.online && !location.draining && location.baseUrl)) return location;
    }
    const { owner, user, launching } = await this.visibleJob(caller, id);
    // Only a job its owner may have started keeps that owner for good (./job-owners.ts): a queued
    // one, or one still in a node's inbox, may yet go to another node.
    if (owner !== "" && launching) this.owners.remember(id, { owner, user });
    return this.locationOf(owner);
  }

  /** The queue of jobs that name none: the cluster info's. */
  defaultQueue(): string {
    return this.clusterInfo().defaultQueue || DEFAULT_QUEUE;
  }

  private async locationOf(owner: string): Promise<JobLocation> {
    // A queued job has no owner yet: whichever node is asked answers for it.
    if (owner === this.opts.nodeId || owner === "")
      return { owner, local: true, online: true, draining: false };
    const node = await this.registry.lookup(owner);
    return {
      owner,
      local: false,
      online: node?.online ?? false,
      draining: node?.status === NodeStatus.Draining,
      ...(node ? { baseUrl: `${this.opts.peerScheme ?? "http"}://${node.ipv4}:${node.port}` } : {}),
    };
  }

  /**
   * Owner-only calls that arrive here for a job owned elsewhere (forwarding is HTTP's job). A job
   * waiting in the fleet queue (no owner) is answered by whichever node is asked.
   */
  private async ownJob(caller: Caller, id: string): Promise<StoredJob> {
    const stored = await this.visibleJob(caller, id);
    if (stored.owner !== this.opts.nodeId && stored.owner !== "") {
      throw new ApiError(
        ErrCode.PluginRestarted,
        `Job ${id} is owned by node ${stored.owner}, not ${this.opts.nodeId}`,
      );
    }
    return stored;
  }

  async control(caller: Caller, id: string, operation: JobOperation): Promise<ControlResult> {
    requireSingleJob(id, "control");
    const { job, owner } = await this.ownJob(caller, id);
    if (owner === "") return this.manager.controlQueued(job, operation);
    return this.manager.control(job, operation);
  }

  async network(caller: Caller, id: string): Promise<NetworkInfo> {
    requireSingleJob(id, "network");
    const { owner } = await this.ownJob(caller, id);
    if (owner === "") {
      throw new ApiError(ErrCode.JobNotRunning, `Job ${id} is queued: it has no host yet`);
    }
    return networkInfo();
  }

  /** The fleet's cluster info; every submission asks (its default queue), so it is kept until the node table changes. */
  clusterInfo(configured: ClusterInfo = this.cluster): ClusterInfo {
    const changes = this.registry.nodeChanges;
    const kept = this.fleetInfo;
    if (kept?.changes === changes && kept.configured === configured) return kept.info;
    const info = fleetClusterInfo(configured, this.registry.placementNodes());
    this.fleetInfo = { changes, configured, info };
    return info;
  }

  async locateNode(id: string): Promise<JobLocation> {
    if (id !== this.opts.nodeId && (await this.registry.lookup(id)) === undefined) {
      throw new ApiError(ErrCode.JobNotFound, `Node ${id} is not known to the fleet`);
    }
    return this.locationOf(id);
  }

  async drain(caller: Caller): Promise<{ id: string; status: string }> {
    if (!caller.admin) throw new StatusError("Only admins may drain a node", 403);
    if (!this.opts.startDrain) {
      throw new ApiError(ErrCode.RequestNotSupported, `Node ${this.opts.nodeId} cannot be drained this way`);
    }
    if (!this.opts.isDraining()) this.opts.startDrain();
    return { id: this.opts.nodeId, status: NodeStatus.Draining };
  }

  async *watchNodes(signal: AbortSignal): AsyncIterable<NodeWatchMessage> {
    // Woken by notices (join, leave, status) and every heartbeat (running jobs, silence): each wake
    // reads the list once, however many wakes piled up meanwhile.
    let pending = false;
    let wake: (() => void) | undefined;
    const poke = () => {
      pending = true;
      wake?.();
    };
    const unsubscribe = this.registry.onNodeChange(poke);
    const timer = setInterval(poke, this.registry.heartbeatMs);
    signal.addEventListener("abort", poke, { once: true });
    try {
      const first = await this.nodes();
      yield { nodes: first };
      const shown = new Map(first.map((n) => [n.id, fingerprint(n)]));
      while (!signal.aborted) {
        if (!pending) await new Promise<void>((r) => (wake = r));
        wake = undefined;
        pending = false;
        if (signal.aborted) break;
        const now = await this.nodes();
        const seen = new Set<string>();
        for (const node of now) {
          seen.add(node.id);
          const print = fingerprint(node);
          if (shown.get(node.id) === print) continue;
          shown.set(node.id, print);
          yield { node };
        }
        for (const id of [...shown.keys()]) {
          if (seen.has(id)) continue;
          shown.delete(id);
          yield { removed: id };
        }
      }
    } finally {
      clearInterval(timer);
      unsubscribe();
      signal.removeEventListener("abort", poke);
    }
  }

  /** Every node, with `runningJobs` read fresh: the jobs placed on it that hold its slots. */
  async nodes(): Promise<NodeView[]> {
    const nodes = await this.registry.listNodes();
    const placed = await this.store.placedCounts(nodes.map((n) => n.id));
    return nodes.map((n, i) => ({ ...n, runningJobs: placed[i] ?? n.runningJobs }));
  }

  launcherNodes?: () => Node[];

  statusStream(caller: Caller, id: string, opts: StatusStreamOptions): AsyncIterable<StatusStreamItem> {
    return this.statusStreams.open(caller, id, opts);
  }

  /** Resolves when the job's status satisfies `done`, or the signal aborts. */
  private async waitForStatus(
    id: string,
    done: (status: string) => boolean,
    signal: AbortSignal,
  ): Promise<string> {
    const q = new AsyncQueue<string>(signal);
    const stop = this.bus.listen({ jobId: id }, (ev) => q.push(ev.status));
    try {
      const current = (await this.store.get(id))?.job.status ?? JobStatus.Failed;
      if (done(current)) return current;
      for await (const status of q) if (done(status)) return status;
      return current;
    } finally {
      stop();
    }
  }

  /** Waits until a queued job is placed on a node or ends (canceled), and returns it then. */
  private async untilPlaced(id: string, signal: AbortSignal): Promise<StoredJob> {
    const q = new AsyncQueue<string>(signal);
    const stop = this.bus.listen({ jobId: id }, (ev) => q.push(ev.status));
    const events = q[Symbol.asyncIterator]();
    try {
      for (;;) {
        const stored = await this.store.get(id);
        if (!stored) throw new ApiError(ErrCode.JobNotFound, `Job ${id} could not be found`);
        if (stored.owner !== "" || terminalStatus(stored.job.status ?? "") || signal.aborted) return stored;
        const next = await events.next();
        if (next.done) return stored;
      }
    } finally {
      stop();
    }
  }

  async *outputStream(
    caller: Caller,
    id: string,
    type: JobOutput,
    signal: AbortSignal,
  ): AsyncIterable<Omit<OutputChunk, "seqId">> {
    let stored = await this.ownJob(caller, id);
    if (stored.owner === "") stored = await this.untilPlaced(id, signal);
    const { owner } = stored;
    let { job } = stored;
    if (owner !== this.opts.nodeId && !terminalStatus(job.status ?? "")) {
      throw new ApiError(
        ErrCode.PluginRestarted,
        `Job ${id} left the fleet queue for node ${owner} while its output was asked for here; ask again`,
      );
    }
    let finished = terminalStatus(job.status ?? "");
    const stop = this.bus.listen({ jobId: id }, (ev) => {
      if (terminalStatus(ev.status)) finished = true;
    });
    try {
      if (job.status === JobStatus.Pending) {
        const status = await this.waitForStatus(id, (s) => s !== JobStatus.Pending, signal);
        if (terminalStatus(status)) finished = true;
        // Its output files are recorded when it starts (chosen by this node unless it named them).
        stored = (await this.store.get(id)) ?? stored;
        job = stored.job;
      }
      if (signal.aborted) return;
      const files = await this.streamableFiles(stored, type);
      const chunks = followOutput({ files, signal, isDone: async () => finished });
      try {
        for await (const chunk of chunks) {
          const combined = files.length === 1 && job.stdoutFile === job.stderrFile;
          yield { output: chunk.output, outputType: combined ? "mixed" : chunk.outputType };
        }
      } catch (err) {
        if (err instanceof OutputNotFoundError) throw new ApiError(ErrCode.JobOutputNotFound, err.message);
        throw err;
      }
    } finally {
      stop();
    }
  }

  /**
   * The output files to stream, each with what its process opened at launch: nothing for a job
   * that never started; JobOutputNotFound for one that opened no regular file (a FIFO, a device).
   */
  private async streamableFiles({ job, outputs }: StoredJob, type: JobOutput): Promise<FollowedFileSpec[]> {
    const record = decodeOutputRecord(outputs) ?? this.runner.legacyOutputRecord(job.id);
    if (!record) return [];
    // The record lives in Redis: it may name only files of the uid the job runs as here (so one
    // written by whoever can write Redis reaches no file a job of that user could not read).
    const account = await this.manager.accountFor(job.user ?? "").catch(() => undefined);
    if (account?.uid !== record.uid) {
      throw new ApiError(
        ErrCode.JobOutputNotFound,
        `Job ${job.id}: its output files were opened as uid ${record.uid}, not as its user here`,
      );
    }
    return outputFiles(job, type).map(({ path, type: kind }) => {
      const identity = record[kind];
      if (!identity) {
        throw new ApiError(
          ErrCode.JobOutputNotFound,
          `Job ${job.id}: its ${kind} file "${path}" is not a regular file, so it is not streamed`,
        );
      }
      return { path, type: kind, identity, jobUid: record.uid };
    });
  }

  async *resourceStream(
    caller: Caller,
    id: string,
    signal: AbortSignal,
  ): AsyncIterable<Omit<ResourceSample, "seqId">> {
    const { job } = await this.ownJob(caller, id);
    const active = (s: string | undefined) => s === JobStatus.Running || s === JobStatus.Suspended;
    if (!active(job.status)) throw new ApiError(ErrCode.JobNotRunning, "The job is not currently running");
    let running = true;
    const stop = this.bus.listen({ jobId: id }, (ev) => {
      if (!active(ev.status)) running = false;
    });
    try {
      while (running && !signal.aborted) {
        const sample = await this.runner.sample(id);
        if (!sample) break;
        yield sample;
        await sleep(this.opts.resourcePollMs, signal);
      }
    } finally {
      stop();
    }
  }

  async health(opts: { fleet?: boolean } = {}): Promise<HealthReport> {
    const reasons: string[] = [];
    const redisConnected = this.opts.redisConnected();
    if (!redisConnected) reasons.push("Redis is unreachable");
    if (!this.registry.heartbeatFresh()) reasons.push("heartbeat is stale");
    if (this.opts.isDraining()) reasons.push("node is draining");
    const node = this.registry.node(this.opts.nodeId) ?? {
      id: this.opts.nodeId,
      host: "",
      ipv4: "",
      port: "",
      lastSeen: new Date(0).toISOString(),
      status: this.registry.status,
      online: false,
      runningJobs: this.manager.runningCount(),
      slots: 0,
      labels: {},
      queues: [],
    };
    const self = {
      ...node,
      status: this.registry.status,
      online: reasons.length === 0,
      runningJobs: this.manager.runningCount(),
    };
    const fleet = await this.registry
      .fleetCounts(opts.fleet !== false)
      .catch(() => this.registry.fleetCounts());
    const status = this.opts.isClosing() ? "Red" : reasons.length === 0 ? "Green" : "Yellow";
    return {
      status,
      ready: reasons.length === 0 && !this.opts.isClosing(),
      node: self,
      redis: { connected: redisConnected, latencyMs: this.registry.latencyMs },
      fleet,
      reasons,
    };
  }
}

/** What a watcher is told about: everything in a node's view but its heartbeat time. */
function fingerprint(node: NodeView): string {
  const { lastSeen: _lastSeen, ...rest } = node;
  return JSON.stringify(rest);
}

function outputFiles(job: Job, type: JobOutput): { path: string; type: "stdout" | "stderr" }[] {
  const out = job.stdoutFile!;
  const err = job.stderrFile!;
  if (out === err) return [{ path: out, type: "stdout" }];
  if (type === JobOutput.Stdout) return [{ path: out, type: "stdout" }];
  if (type === JobOutput.Stderr) return [{ path: err, type: "stderr" }];
  return [
    { path: out, type: "stdout" },
    { path: err, type: "stderr" },
  ];
}

/** Cluster info from the documented JSON file (LAUNCHER_CLUSTER_CONFIG_FILE), else the defaults. */
export function loadClusterInfo(file?: string): ClusterInfo {
  const defaults: ClusterInfo = {
    supportsContainers: false,
    queues: [],
    resourceLimits: [],
    placementConstraints: [],
    config: [
      { name: "pamProfile", valueType: "string" },
      { name: "encryptedPassword", valueType: "string" },
      { name: "initializationVector", valueType: "string" },
    ],
    resourceProfiles: [],
  };
  if (!file) return defaults;
  const raw = JSON.parse(readFileSync(file, "utf8")) as Partial<ClusterInfo>;
  return {
    supportsContainers: false,
    queues: raw.queues ?? defaults.queues,
    ...(raw.defaultQueue ? { defaultQueue: raw.defaultQueue } : {}),
    resourceLimits: raw.resourceLimits ?? defaults.resourceLimits,
    placementConstraints: raw.placementConstraints ?? defaults.placementConstraints,
    config: raw.config ?? defaults.config,
    resourceProfiles: raw.resourceProfiles ?? defaults.resourceProfiles,
  };
}
