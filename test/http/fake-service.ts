// An in-memory LauncherService for HTTP-layer tests: enough behaviour to exercise routes, auth
// scoping, forwarding and streams, with every call recorded. Streams can be scripted per test.
import {
  ApiError,
  type ClusterInfo,
  type ControlResult,
  ErrCode,
  includes,
  type Job,
  type JobFilter,
  type JobOperation,
  type JobOutput,
  JobStatus,
  type NetworkInfo,
  type NodeView,
  type OutputChunk,
  operationString,
  type ResourceSample,
  StatusError,
  terminalStatus,
  validForStatus,
  withFields,
} from "../../src/api/index.js";
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
} from "../../src/launcher/port.js";

export interface Call {
  method: string;
  caller?: Caller;
  args: unknown[];
}

type OutputItem = Omit<OutputChunk, "seqId">;
type ResourceItem = Omit<ResourceSample, "seqId">;

/** Resolves when the signal aborts (immediately if it already has). */
export function whenAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

export class FakeService implements LauncherService {
  readonly calls: Call[] = [];
  readonly jobs = new Map<string, Job>();
  /** Where a job lives, when not on this node. */
  readonly locations = new Map<string, JobLocation>();
  /** Signals handed to stream iterables, newest last. */
  readonly signals: AbortSignal[] = [];
  healthReport: HealthReport;
  nodeList: NodeView[] = [];
  private nextId = 1;

  /** Scripted streams; the defaults below are used when unset. */
  statusImpl?: (caller: Caller, id: string, opts: StatusStreamOptions) => AsyncIterable<StatusStreamItem>;
  outputImpl?: (
    caller: Caller,
    id: string,
    type: JobOutput,
    signal: AbortSignal,
  ) => AsyncIterable<OutputItem>;
  resourceImpl?: (caller: Caller, id: string, signal: AbortSignal) => AsyncIterable<ResourceItem>;

  constructor(readonly nodeId = "node-a") {
    this.healthReport = {
      status: "Green",
      ready: true,
      node: this.nodeView(nodeId),
      redis: { connected: true, latencyMs: 0.4 },
      fleet: { online: 1, total: 1 },
      reasons: [],
    };
    this.nodeList = [this.nodeView(nodeId)];
  }

  nodeView(id: string): NodeView {
    return {
      id,
      host: `host-${id}`,
      ipv4: "127.0.0.1",
      port: "5559",
      lastSeen: "2024-01-01T00:00:00.000Z",
      status: "Online",
      online: true,
      runningJobs: 0,
      slots: 0,
      labels: {},
      queues: ["default"],
    };
  }

  /** Adds a job as if submitted earlier. */
  addJob(job: Partial<Job> & { id: string }): Job {
    const full: Job = {
      user: "alice",
      status: JobStatus.Running,
      command: "sleep 100",
      host: `host-${this.nodeId}`,
      submissionTime: "2024-01-01T00:00:00.000Z",
      ...job,
    };
    this.jobs.set(full.id, full);
    return full;
  }

  callsTo(method: string): Call[] {
    return this.calls.filter((c) => c.method === method);
  }

  private record(method: string, caller: Caller | undefined, ...args: unknown[]): void {
    this.calls.push({ method, ...(caller ? { caller } : {}), args });
  }

  private visible(caller: Caller, id: string): Job {
    const job = this.jobs.get(id);
    if (!job || !(caller.admin || job.user === caller.user)) {
      throw new ApiError(
        ErrCode.JobNotFound,
        `Job ${id} could not be found for user ${caller.admin ? "*" : caller.user}`,
      );
    }
    return job;
  }

  async *watchNodes(signal: AbortSignal): AsyncIterable<NodeWatchMessage> {
    yield { nodes: this.nodeList };
    await new Promise<void>((r) => signal.addEventListener("abort", () => r(), { once: true }));
  }

  async locateNode(id: string): Promise<JobLocation> {
    if (!this.nodeList.some((n) => n.id === id)) {
      throw new ApiError(ErrCode.JobNotFound, `Node ${id} is not known to the fleet`);
    }
    return { owner: id, local: id === this.nodeId, online: true, draining: false };
  }

  async drain(caller: Caller): Promise<{ id: string; status: string }> {
    this.record("drain", caller);
    if (!caller.admin) throw new StatusError("Only admins may drain a node", 403);
    return { id: this.nodeId, status: "Draining" };
  }

  async submit(caller: Caller, job: Job, opts: SubmitOptions = {}): Promise<Submitted> {
    this.record("submit", caller, job, opts);
    const id = `job-${this.nextId++}`;
    const created: Job = {
      ...job,
      id,
      user: caller.admin && job.user ? job.user : caller.user,
      status: JobStatus.Pending,
      host: `host-${this.nodeId}`,
      submissionTime: new Date().toISOString(),
    };
    this.jobs.set(id, created);
    return { job: created, replayed: false };
  }

  async getJob(caller: Caller, id: string, fields?: string[]): Promise<Job> {
    this.record("getJob", caller, id, fields);
    return withFields(this.visible(caller, id), fields);
  }

  async *listJobs(caller: Caller, filter: JobFilter, user?: string): AsyncIterable<Job> {
    this.record("listJobs", caller, filter, user);
    const scope = caller.admin ? (user ?? "*") : caller.user;
    yield* [...this.jobs.values()]
      .filter((j) => scope === "*" || j.user === scope)
      .filter((j) => includes(filter, j))
      .sort((a, b) => (a.id < b.id ? -1 : 1))
      .map((j) => withFields(j, filter.fields));
  }

  async locate(caller: Caller, id: string): Promise<JobLocation> {
    this.record("locate", caller, id);
    this.visible(caller, id);
    return this.locations.get(id) ?? { owner: this.nodeId, local: true, online: true, draining: false };
  }

  async control(caller: Caller, id: string, operation: JobOperation): Promise<ControlResult> {
    this.record("control", caller, id, operation);
    const job = this.visible(caller, id);
    if (job.status !== validForStatus(operation)) {
      throw new ApiError(ErrCode.InvalidJobState, `Job must be ${validForStatus(operation).toLowerCase()}`);
    }
    return { statusMessage: `${operationString(operation)} by ${this.nodeId}`, operationComplete: true };
  }

  async network(caller: Caller, id: string): Promise<NetworkInfo> {
    this.record("network", caller, id);
    this.visible(caller, id);
    return { host: `host-${this.nodeId}`, ipAddresses: ["10.0.0.1"] };
  }

  clusterInfo(): ClusterInfo {
    return {
      supportsContainers: false,
      queues: [],
      resourceLimits: [],
      placementConstraints: [],
      config: [{ name: "pamProfile", valueType: "string" }],
      resourceProfiles: [],
    };
  }

  async nodes(): Promise<NodeView[]> {
    return this.nodeList;
  }

  async health(): Promise<HealthReport> {
    return this.healthReport;
  }

  statusStream(caller: Caller, id: string, opts: StatusStreamOptions): AsyncIterable<StatusStreamItem> {
    this.record("statusStream", caller, id, opts.since);
    this.signals.push(opts.signal);
    if (this.statusImpl) return this.statusImpl(caller, id, opts);
    return this.defaultStatus(caller, id);
  }

  private async *defaultStatus(caller: Caller, id: string): AsyncGenerator<StatusStreamItem> {
    const job = this.visible(caller, id);
    const status = (job.status ?? JobStatus.Pending) as JobStatus;
    yield { eventId: "1-0", id, name: job.name ?? "", status, lastUpdateTime: "2024-01-01T00:00:00.000Z" };
    if (!terminalStatus(status)) {
      yield {
        eventId: "2-0",
        id,
        name: job.name ?? "",
        status: JobStatus.Finished,
        lastUpdateTime: "2024-01-01T00:00:01.000Z",
      };
    }
  }

  outputStream(caller: Caller, id: string, type: JobOutput, signal: AbortSignal): AsyncIterable<OutputItem> {
    this.record("outputStream", caller, id, type);
    this.signals.push(signal);
    if (this.outputImpl) return this.outputImpl(caller, id, type, signal);
    return this.defaultOutput(caller, id);
  }

  private async *defaultOutput(caller: Caller, id: string): AsyncGenerator<OutputItem> {
    this.visible(caller, id);
    yield { output: `hello from ${this.nodeId}\n`, outputType: "stdout" };
    yield { output: "oops\n", outputType: "stderr" };
  }

  resourceStream(caller: Caller, id: string, signal: AbortSignal): AsyncIterable<ResourceItem> {
    this.record("resourceStream", caller, id);
    this.signals.push(signal);
    if (this.resourceImpl) return this.resourceImpl(caller, id, signal);
    return this.defaultResource(caller, id);
  }

  private async *defaultResource(caller: Caller, id: string): AsyncGenerator<ResourceItem> {
    const job = this.visible(caller, id);
    if (job.status !== JobStatus.Running) {
      throw new ApiError(ErrCode.JobNotRunning, "The job is not currently running");
    }
    yield { cpuPercent: 1.5, cpuTime: 0.2, residentMemory: 10, virtualMemory: 100 };
  }
}
