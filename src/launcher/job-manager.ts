// The lifecycle of the jobs this node owns: submit → Pending → Running → terminal, control
// operations as signals, re-adoption after a restart, reconciliation after fencing. Every status
// change goes through the job store (Redis) first, as one of the lifecycle's transitions
// (TRANSITIONS in src/api/status.ts); the runner only runs processes. Waiting for a slot is
// SlotQueue's job, expiry JobExpiry's.
import { randomBytes } from "node:crypto";
import { dirname, join, resolve } from "node:path";
import type { Logger } from "pino";
import {
  ApiError,
  type ControlResult,
  ErrCode,
  invalidStateMessage,
  type Job,
  JobOperation,
  JobStatus,
  StatusError,
  terminalStatus,
  validForStatus,
} from "../api/index.js";
import { type JobStore, type MutableFields, type OwnerFields, StoreConflict } from "../cluster/job-store.js";
import type { Registry } from "../cluster/registry.js";
import {
  encodeOutputRecord,
  LaunchError,
  type LocalRunner,
  nodeAccount,
  type UserAccount,
  UserDirectory,
} from "../runner/index.js";
import { JobExpiry } from "./expiry.js";
import { requestDigest } from "./idempotency.js";
import { eligible, jobQueues, queueClass, waitingFor, waitingForUser } from "./placement.js";
import type { Submitted } from "./port.js";
import { sleep } from "./queue.js";
import { SlotQueue } from "./slot-queue.js";

export interface JobManagerOptions {
  nodeId: string;
  host: string;
  clusterName: string;
  scratchPath: string;
  maxRunningJobs: number;
  jobExpiryHours: number;
  /** Every job runs as the node's own user (LAUNCHER_UNPRIVILEGED); otherwise as its user. */
  unprivileged: boolean;
  /** Jobs of uid-0 users are allowed (LAUNCHER_ALLOW_ROOT_JOBS). */
  allowRootJobs: boolean;
  /** LAUNCHER_MAX_RUNNING_JOBS_PER_USER (fleet-wide, 0: no limit). */
  maxRunningJobsPerUser: number;
  /** OFFLINE_AFTER: a node silent longer is given no job. */
  offlineAfterMs: number;
  /** The queue of jobs that name none (the cluster info's defaultQueue). */
  defaultQueue: () => string;
  /** LAUNCHER_REDIS_WAIT_REPLICAS: replicas a submission must reach before it is acknowledged. */
  waitReplicas: number;
}

/** How long a submission waits for its replicas (Redis WAIT). */
const REPLICATION_WAIT_MS = 2_000;

/** A job between "chosen to start" and "its launch is over" (started, or failed to). */
interface Launch {
  /** Canceled before its process could start: the launch stops short of it. */
  canceled: boolean;
  /** Handed to the supervisor: its process may be running, so a cancel must wait for the outcome. */
  committed: boolean;
  /** Settles when the launch is over (Running or Failed recorded). */
  done: Promise<void>;
}

/** How a job came to start on this node: placed at submission, or claimed from the fleet queue. */
export type Via = "direct" | "queue";

/** Sortable, unique job ids: time first (base 36), then randomness. */
export function newJobId(nowMs: number): string {
  return `${Math.floor(nowMs).toString(36).padStart(9, "0")}-${randomBytes(5).toString("hex")}`;
}

const SIGNALS = {
  [JobOperation.Suspend]: "SIGSTOP",
  [JobOperation.Resume]: "SIGCONT",
  [JobOperation.Stop]: "SIGTERM",
  [JobOperation.Kill]: "SIGKILL",
} as const;

export class JobManager {
  /** Jobs between "chosen to start" and "exec reported", with a cancel flag. */
  private readonly launching = new Map<string, Launch>();
  /** Pending jobs waiting for a free slot (maxRunningJobs). */
  private readonly queue: SlotQueue;
  private readonly expiry: JobExpiry;
  /** One chain of store writes per job, so Running is always recorded before the exit. */
  private readonly chains = new Map<string, Promise<unknown>>();
  /** Aborted by close(): writes waiting for Redis to come back give up. */
  private readonly closing = new AbortController();
  /** Users of the host, looked up through the runner's supervisor (privileged mode). */
  private readonly users = new UserDirectory((name) => this.runner.lookupUser(name));
  /** The node's own user, whom every job runs as in unprivileged mode. */
  private readonly self = nodeAccount();

  /** `runner` is built first, with `onExit` of this manager as its exit callback. */
  constructor(
    private readonly store: JobStore,
    private readonly registry: Registry,
    private readonly runner: LocalRunner,
    private readonly opts: JobManagerOptions,
    private readonly logger: Logger,
  ) {
    this.queue = new SlotQueue(opts.maxRunningJobs, () => this.busySlots());
    this.expiry = new JobExpiry(store, registry, runner, opts, logger);
  }

  /**
   * Slots in use here: running processes and launches under way, each counted once (a launched job
   * is both running and launching until its Running is recorded).
   */
  private busySlots(): number {
    const running = this.runner.running();
    let launchingOnly = 0;
    for (const id of this.launching.keys()) if (!running.includes(id)) launchingOnly++;
    return running.length + launchingOnly;
  }

  runningCount(): number {
    return this.runner.running().length;
  }

  private owner() {
    return { nodeId: this.opts.nodeId, epoch: this.registry.epoch };
  }

  private now(): string {
    return new Date(this.registry.nowMs()).toISOString();
  }

  /** Serialises writes for one job. */
  private chain<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(id) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const settled = next.catch(() => undefined);
    this.chains.set(id, settled);
    void settled.then(() => {
      if (this.chains.get(id) === settled) this.chains.delete(id);
    });
    return next;
  }

  /**
   * Records a change of the job's fields; a status change only as a move of the job lifecycle (the
   * store refuses any other, e.g. Suspended when the job is no longer Running). False when refused.
   */
  private async write(id: string, fields: MutableFields, owned?: OwnerFields): Promise<boolean> {
    try {
      await this.store.update(id, this.owner(), { lastUpdateTime: this.now(), ...fields }, owned);
      return true;
    } catch (err) {
      if (err instanceof StoreConflict) {
        this.logger.info({ jobId: id, refused: err.message, fields }, "job update refused");
        return false;
      }
      throw err;
    }
  }

  /**
   * The OS user a job of `user` runs as. Privileged mode: that user, who must exist on this host
   * and not be root (unless allowed). Unprivileged mode: the node's own user, whoever asks.
   */
  async accountFor(user: string): Promise<UserAccount> {
    if (this.opts.unprivileged) return this.self;
    const account = await this.users.get(user).catch((err: Error) => {
      throw new ApiError(ErrCode.Unknown, `user: could not look up "${user}" on this host: ${err.message}`);
    });
    if (!account) {
      throw new ApiError(ErrCode.InvalidRequest, `user: no such user on this host: ${JSON.stringify(user)}`);
    }
    if (account.uid === 0 && !this.opts.allowRootJobs) {
      throw new ApiError(
        ErrCode.InvalidRequest,
        `user: ${JSON.stringify(user)} has uid 0, and this node runs no root jobs (LAUNCHER_ALLOW_ROOT_JOBS)`,
      );
    }
    return account;
  }

  /** Where a user's jobs write when they name no output files (owned by the user, mode 0700). */
  private outputDirOf(user: string): string {
    return join(this.opts.scratchPath, "output", safeName(user));
  }

  /**
   * Records the job (the 201 promise: it is in Redis) and places it: on the eligible node with the
   * most free slots (this one on a tie; it starts here at once), or in the fleet queue.
   */
  async submit(input: Job, user: string, idempotencyKey?: string): Promise<Submitted> {
    await this.accountFor(user); // an unknown user is a 400, before any job exists
    const idempotency = idempotencyKey
      ? {
          key: idempotencyKey,
          digest: requestDigest(input, user),
          ttlMs: this.opts.jobExpiryHours * 3_600_000,
        }
      : undefined;
    const nowMs = this.registry.nowMs();
    const id = newJobId(nowMs);
    const now = new Date(nowMs).toISOString();
    // Relative output paths are relative to where the job runs (as the runner opens them); stored
    // absolute, so the output stream reads the same file the job wrote. Unnamed ones are chosen by
    // the node that starts the job, in its own output dir.
    const base = input.workingDirectory || process.cwd();
    const job: Job = {
      ...input,
      id,
      user,
      cluster: input.cluster || this.opts.clusterName,
      ...(input.stdoutFile ? { stdoutFile: resolve(base, input.stdoutFile) } : {}),
      ...(input.stderrFile ? { stderrFile: resolve(base, input.stderrFile) } : {}),
      status: JobStatus.Pending,
      submissionTime: now,
      lastUpdateTime: now,
    };
    for (const k of ["host", "node", "pid", "exitCode", "statusMessage", "statusCode"] as const)
      delete job[k];
    let placed: Awaited<ReturnType<JobStore["create"]>>;
    try {
      placed = await this.store.create(job, this.owner(), [], this.placementOf(job, user), idempotency);
    } catch (err) {
      if (err instanceof StoreConflict && err.kind === "FENCED") {
        throw new ApiError(ErrCode.PluginRestarted, `Node ${this.opts.nodeId} is rejoining the fleet; retry`);
      }
      if (err instanceof StoreConflict && err.kind === "IDEMPOTENCY") {
        throw new StatusError(
          `Idempotency-Key ${JSON.stringify(idempotencyKey)} was already used for job ${err.arg} with a different request`,
          409,
        );
      }
      throw err;
    }
    if (placed.replayOf) {
      const earlier = await this.store.get(placed.replayOf);
      if (!earlier) {
        throw new ApiError(ErrCode.JobNotFound, `Job ${placed.replayOf} of this Idempotency-Key has expired`);
      }
      await this.confirmReplicated(`job ${earlier.job.id}`);
      return { job: earlier.job, replayed: true };
    }
    const shown: Job =
      placed.nodeId === ""
        ? { ...job, statusMessage: placed.statusMessage }
        : { ...job, host: placed.host, node: placed.nodeId };
    if (placed.nodeId === this.opts.nodeId) {
      this.startJobs([id], "direct", new Map([[id, job]]));
      Object.assign(shown, this.outputFilesOf(job));
    }
    // Acknowledged only once a replica has it (LAUNCHER_REDIS_WAIT_REPLICAS); the job itself goes on
    // either way, so a repeat with the same Idempotency-Key finds it, here or after a failover.
    await this.confirmReplicated(`job ${id}`);
    return { job: shown, replayed: false };
  }

  /** 503 (repeat with the same Idempotency-Key) unless LAUNCHER_REDIS_WAIT_REPLICAS replicas have `what`. */
  private async confirmReplicated(what: string): Promise<void> {
    if (await this.store.replicated(this.opts.waitReplicas, REPLICATION_WAIT_MS)) return;
    throw new ApiError(
      ErrCode.PluginRestarted,
      `Redis could not confirm within ${REPLICATION_WAIT_MS} ms that ${this.opts.waitReplicas} replica(s) have ${what}; repeat the request with the same Idempotency-Key`,
    );
  }

  /** The candidates and queue class create_job.lua places a new job with. */
  private placementOf(job: Job, user: string) {
    const queues = jobQueues(job, this.opts.defaultQueue());
    const constraints = job.placementConstraints;
    // As last seen: the script checks each candidate's status, heartbeat and free slots itself.
    const candidates = this.registry
      .placementNodes()
      .filter((n) => n.status === "Online" && eligible(n, queues, constraints))
      .map((n) => n.id)
      .sort((a, b) => (a === this.opts.nodeId ? -1 : b === this.opts.nodeId ? 1 : 0));
    const cls = queueClass(queues, constraints, user);
    return {
      candidates,
      classId: cls.id,
      classDescriptor: cls.descriptor,
      queuedMessage: waitingFor(queues, constraints),
      userCapMessage: waitingForUser(user, this.opts.maxRunningJobsPerUser),
      offlineAfterMs: this.opts.offlineAfterMs,
      perUserCap: this.opts.maxRunningJobsPerUser,
    };
  }

  /** Its output files: those it names, else files in its user's output dir on this node. */
  private outputFilesOf(job: Job): { stdoutFile: string; stderrFile: string } {
    const dir = this.outputDirOf(job.user ?? "");
    return {
      stdoutFile: job.stdoutFile || join(dir, `${job.id}.stdout`),
      stderrFile: job.stderrFile || join(dir, `${job.id}.stderr`),
    };
  }

  /** Jobs this node may start now (placed here, taken from its inbox or claimed from the queue). */
  startJobs(ids: readonly string[], via: Via, known = new Map<string, Job>()): void {
    this.queue.push(...ids);
    for (const id of ids) this.onStart?.(id, via);
    this.pumpQueue(known);
  }

  /** Told of every job this node starts (placement metrics). */
  onStart: ((id: string, via: Via) => void) | undefined;
  /** Told when a slot frees (a job ended or failed to start): the node claims queued jobs then. */
  onSlotFreed: (() => void) | undefined;

  /** Slots free on this node now (Infinity without a limit). */
  freeSlots(): number {
    if (this.opts.maxRunningJobs === 0) return Number.POSITIVE_INFINITY;
    return this.opts.maxRunningJobs - this.busySlots() - this.queue.size;
  }

  /** Starts queued jobs while there are free slots. */
  private pumpQueue(known = new Map<string, Job>()): void {
    for (let id = this.queue.next(); id !== undefined; id = this.queue.next()) {
      // Marked launching before anything is awaited: the queue counts it busy from here on.
      const flag: Launch = { canceled: false, committed: false, done: Promise.resolve() };
      this.launching.set(id, flag);
      const jobId = id;
      flag.done = this.start(jobId, flag, known.get(jobId))
        .catch((err) => this.logger.error({ jobId, err }, "job start failed"))
        .finally(() => {
          this.launching.delete(jobId);
          // A launch that failed frees its slot; one that succeeded is counted as running now.
          this.pumpQueue();
        });
    }
  }

  private async start(id: string, flag: Launch, known?: Job): Promise<void> {
    let job: Job | undefined;
    try {
      job = known ?? (await this.store.get(id))?.job;
    } catch (err) {
      // Redis away before anything started: try again shortly, rather than leave the job Pending
      // with this node's slot held for ever.
      if (!(err instanceof ApiError && err.code === ErrCode.PluginRestarted)) throw err;
      this.startLater(id);
      return;
    }
    if (!job || job.status !== JobStatus.Pending || flag.canceled) return;
    let launched = false;
    try {
      const user = await this.accountFor(job.user ?? "");
      const outputDir = this.outputDirOf(job.user ?? "");
      const files = this.outputFilesOf(job);
      // The files this node chose (none named): recorded with Running, and removed on expiry.
      const created = [
        ...(job.stdoutFile ? [] : [files.stdoutFile]),
        ...(job.stderrFile ? [] : [files.stderrFile]),
      ];
      const usesOutputDir = [files.stdoutFile, files.stderrFile].some((f) => dirname(f) === outputDir);
      // The last moment a cancel can stop the job: from here its process may start.
      if (flag.canceled) return;
      flag.committed = true;
      const { pid, outputs } = await this.runner.launch({
        id,
        ...(job.command ? { command: job.command } : {}),
        ...(job.exe ? { exe: job.exe } : {}),
        args: job.args ?? [],
        environment: job.environment ?? [],
        ...(job.workingDirectory ? { workingDirectory: job.workingDirectory } : {}),
        ...(job.stdin ? { stdin: job.stdin } : {}),
        ...files,
        user,
        switchUser: !this.opts.unprivileged,
        ...(usesOutputDir ? { outputDir } : {}),
      });
      launched = true;
      const chosen = created.length > 0 ? files : {};
      const owned = { files: created, outputs: encodeOutputRecord(outputs) };
      // The process runs: Running is a fact, kept trying while Redis is away (never a relaunch).
      await this.chain(id, () =>
        this.persist(() => this.write(id, { status: JobStatus.Running, pid, ...chosen }, owned)),
      );
    } catch (err) {
      const message =
        err instanceof LaunchError || err instanceof ApiError
          ? err.message
          : `Could not launch: ${(err as Error).message}`;
      // A job whose process started is never recorded Failed here: only the node closing stops
      // its Running write, and the next start of this node adopts it.
      if (launched) throw err;
      if (!flag.canceled) {
        await this.chain(id, () =>
          this.persist(() => this.write(id, { status: JobStatus.Failed, statusMessage: message })),
        );
      }
      this.onSlotFreed?.();
    }
  }

  /** Starts a job again after a moment (Redis was away when it was about to start). */
  private startLater(id: string): void {
    if (this.closing.signal.aborted) return;
    setTimeout(() => {
      if (this.closing.signal.aborted) return;
      this.queue.push(id);
      this.pumpQueue();
    }, 1_000).unref();
  }

  /**
   * Runner callback: the job's process ended with its real exit code, or it was lost with its
   * supervisor (`lost` says how): then its end is unknown, and it is Failed, saying so, never
   * Finished with a made-up exit code.
   */
  onExit(id: string, exitCode: number, lost?: string): void {
    const end: MutableFields = lost
      ? { status: JobStatus.Failed, statusMessage: `The job was lost on node ${this.opts.nodeId}: ${lost}` }
      : { status: JobStatus.Finished, exitCode };
    void this.chain(id, async () => {
      // An exit is a fact: while Redis is away (a restart, a failover, a partition) keep trying
      // until it is recorded or refused (fenced, terminal). If the node closes first, the job's
      // state stays on disk and the next start of this node id records the exit from it.
      await this.persist(() => this.write(id, end));
      this.runner.forget(id);
    })
      .catch((err) => this.logger.error({ jobId: id, err }, "could not record exit"))
      .finally(() => {
        this.pumpQueue();
        this.onSlotFreed?.();
      });
  }

  /** Runs a control operation on a job this node owns. */
  async control(job: Job, op: JobOperation): Promise<ControlResult> {
    const id = job.id;
    const required = validForStatus(op);
    if (job.status !== required) throw new ApiError(ErrCode.InvalidJobState, invalidStateMessage(op));
    if (op === JobOperation.Cancel) return this.cancel(id);
    const signal = SIGNALS[op];
    if (!this.runner.signal(id, signal)) {
      // Usually the process has just ended and its exit is about to be recorded: then the job is
      // no longer in the required state (409), not a control failure (500).
      if (await this.leftStatus(id, required)) {
        throw new ApiError(ErrCode.InvalidJobState, invalidStateMessage(op));
      }
      throw new ApiError(
        ErrCode.JobControlFailure,
        `Could not send ${signal} to job ${id}: process not found`,
      );
    }
    let ok = true;
    if (op === JobOperation.Suspend)
      ok = await this.chain(id, () => this.write(id, { status: JobStatus.Suspended }));
    if (op === JobOperation.Resume)
      ok = await this.chain(id, () => this.write(id, { status: JobStatus.Running }));
    if (op === JobOperation.Kill) {
      ok = await this.chain(id, () => this.write(id, { status: JobStatus.Killed, exitCode: 137 }));
    }
    if (!ok) throw new ApiError(ErrCode.InvalidJobState, invalidStateMessage(op));
    const verb = {
      [JobOperation.Suspend]: "suspended",
      [JobOperation.Resume]: "resumed",
      [JobOperation.Stop]: "sent SIGTERM",
      [JobOperation.Kill]: "killed",
    }[op];
    return { statusMessage: `Job ${id} ${verb}`, operationComplete: true };
  }

  /**
   * A control operation on a job waiting in the fleet queue, from any node: cancel takes it out of
   * the queue; the others answer as for any Pending job. A job a node claimed meanwhile is that
   * node's to control: the caller is asked to retry (it is then forwarded there).
   */
  async controlQueued(job: Job, op: JobOperation): Promise<ControlResult> {
    // Only cancel is valid for Pending, so every other operation is a 409 as for any Pending job.
    if (op !== JobOperation.Cancel || job.status !== validForStatus(op)) {
      throw new ApiError(ErrCode.InvalidJobState, invalidStateMessage(op));
    }
    try {
      await this.store.cancelQueued(job.id, "Canceled by user", this.now());
    } catch (err) {
      if (!(err instanceof StoreConflict)) throw err;
      if (err.kind === "OWNED") {
        throw new ApiError(ErrCode.PluginRestarted, `Job ${job.id} just started on node ${err.arg}; retry`);
      }
      throw new ApiError(ErrCode.InvalidJobState, invalidStateMessage(JobOperation.Cancel));
    }
    return { statusMessage: `Job ${job.id} canceled`, operationComplete: true };
  }

  /** Whether the job's recorded status leaves `status` within `timeoutMs` (pending writes included). */
  private async leftStatus(id: string, status: string, timeoutMs = 2_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await this.chains.get(id);
      if ((await this.store.get(id))?.job.status !== status) return true;
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * Cancel is for a job that never ran. One still waiting here, or launching but not yet handed to
   * its supervisor, never will. One already handed over may have started: the launch is awaited, and
   * a job that started is Running, which cancel is not for (409; stop or kill it), rather than
   * recorded Canceled while its command ran.
   */
  private async cancel(id: string): Promise<ControlResult> {
    this.queue.remove(id);
    const launching = this.launching.get(id);
    if (launching?.committed) await launching.done;
    else if (launching) launching.canceled = true;
    const ok = await this.chain(id, () =>
      this.write(id, { status: JobStatus.Canceled, statusMessage: "Canceled by user" }),
    );
    if (!ok) throw new ApiError(ErrCode.InvalidJobState, invalidStateMessage(JobOperation.Cancel));
    return { statusMessage: `Job ${id} canceled`, operationComplete: true };
  }

  /** An adopted job's output files as its supervisor recorded them, for a job never recorded Running. */
  private async recordedOutputs(job: Job): Promise<OwnerFields> {
    const account = await this.accountFor(job.user ?? "").catch(() => undefined);
    const outputs = account && this.runner.recordedOutputs(job.id, account.uid);
    return outputs ? { outputs: encodeOutputRecord(outputs) } : {};
  }

  /**
   * After a restart (same node id, new epoch): every unfinished job this node owns is watched
   * again or finished with the exit code its supervisor recorded while the node was down.
   */
  async adoptAll(): Promise<void> {
    const ids = await this.store.unfinishedOf(this.opts.nodeId);
    const pending: string[] = [];
    for (const stored of await this.store.getMany(ids)) {
      const { job } = stored;
      const state = this.runner.adopt(job.id);
      if (state === "running") {
        if (job.status === JobStatus.Pending) {
          // Its node stopped between its launch and its Running write.
          const pid = this.runner.pid(job.id);
          const owned = await this.recordedOutputs(job);
          await this.write(job.id, { status: JobStatus.Running, ...(pid ? { pid } : {}) }, owned);
        }
      } else if (state === "lost") {
        // Placed here by a peer and not yet taken: the inbox still holds it (taken after this).
        if (job.status === JobStatus.Pending && !stored.launching) continue;
        // Waiting for a slot when the node died: never launched, so launch it now. Otherwise it is gone.
        if (job.status === JobStatus.Pending) pending.push(job.id);
        else
          await this.write(job.id, {
            status: JobStatus.Failed,
            statusMessage: `The job's process was lost on node ${this.opts.nodeId}`,
          });
      } else {
        const owned = job.status === JobStatus.Pending ? await this.recordedOutputs(job) : {};
        await this.write(job.id, { status: JobStatus.Finished, exitCode: state.exitCode }, owned);
        this.runner.forget(job.id);
      }
    }
    pending.sort();
    this.queue.push(...pending);
    this.logger.info({ adopted: ids.length, relaunched: pending.length }, "re-adopted this node's jobs");
    await this.reconcile();
    this.pumpQueue();
  }

  /**
   * Processes this node still runs for jobs that are no longer its own (settled by a peer while
   * this node was cut off, or gone from Redis) are terminated, so records and reality agree.
   */
  async reconcile(): Promise<void> {
    for (const id of this.runner.known()) {
      const stored = await this.store.get(id);
      if (stored && stored.owner === this.opts.nodeId && !terminalStatus(stored.job.status ?? "")) continue;
      if (stored && stored.job.status === JobStatus.Killed) continue;
      if (this.runner.signal(id, "SIGKILL")) {
        this.logger.warn(
          { jobId: id, status: stored?.job.status },
          "terminated a process whose job was settled without this node",
        );
      }
      try {
        this.runner.forget(id);
      } catch (err) {
        // The killed job's supervisor may be writing its exit into the state dir right now
        // (ENOTEMPTY). The process is gone either way; the next reconcile removes the leftovers.
        // Never let this abort a node's start or its re-registration after fencing.
        this.logger.warn(
          { jobId: id, err: (err as Error).message },
          "could not remove a settled job's state",
        );
      }
    }
  }

  startExpiry(intervalMs?: number): void {
    this.expiry.start(intervalMs);
  }

  /** Retries `fn` while Redis is unavailable (503 from the store), until close(). */
  private async persist<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        const unavailable = err instanceof ApiError && err.code === ErrCode.PluginRestarted;
        if (!unavailable || this.closing.signal.aborted) throw err;
        await sleep(Math.min(100 * 2 ** attempt, 1_000), this.closing.signal);
      }
    }
  }

  async close(): Promise<void> {
    this.closing.abort();
    this.expiry.stop();
    await Promise.all([...this.chains.values()]);
  }
}

/** A user name as a single, harmless path segment. */
function safeName(user: string): string {
  return user.replace(/[^A-Za-z0-9._-]/g, "_") || "_";
}
