/**
 * Runs jobs as local processes, started and waited for by the node's resident supervisor daemon
 * (see supervisor.py), so jobs outlive the node and a restarted node learns their real exit
 * codes through adopt().
 */

import { mkdirSync, writeFileSync } from "node:fs";
import type { Socket } from "node:net";
import { join, resolve } from "node:path";
import { launchHelper } from "./launch-helper.js";
import { LegacyOutputRecords, OutputDirs } from "./output-records.js";
import { type CpuSnapshot, type ResourceUsage, sampleProcessGroup } from "./proc.js";
import { buildArgv } from "./shell.js";
import {
  DEFAULT_PATH,
  encodeSpec,
  ensureDir,
  jobAlive,
  jobDir,
  jobsDir,
  LOST_EXIT_CODE,
  parseFileId,
  readStatus,
  recordedJobIds,
  removeJobDir,
  SpareJobDirs,
  SupervisorClient,
  type SupervisorStatus,
  supervisorAlive,
} from "./supervisor.js";
import {
  type Env,
  type JobSignal,
  LaunchError,
  type LaunchSpec,
  type OutputRecord,
  type RunnerCallbacks,
  type UserAccount,
} from "./types.js";
import { nodeAccount } from "./users.js";

export type { JobSignal, LaunchSpec, RunnerCallbacks };
export { LaunchError };

/** What adopt() found: still running (now watched), already exited, or no usable trace. */
export type AdoptResult = "running" | { exitCode: number } | "lost";

export interface LocalRunnerOptions {
  /** Where job state lives; must survive node restarts (not a per-boot tmpfs if jobs should too). */
  stateDir: string;
  callbacks: RunnerCallbacks;
  /** How often adopted jobs are checked for exit; default 200 ms. */
  pollMs?: number;
  /**
   * Jobs watched through their supervisor's connection (one file descriptor each); jobs beyond it
   * are watched by polling their status, like adopted ones. Default 512, well under the usual
   * 1,024 open files per process.
   */
  maxWatchedConnections?: number;
  /** How long the supervisor daemon stays without work before it exits; default 300 s. */
  supervisorIdleSeconds?: number;
  /** The Python 3 interpreter that runs the supervisor; default /usr/bin/python3, else python3 on PATH. */
  supervisorPython?: string;
  /** Whether jobs run as their own users (a root node): the launch helper is then needed. */
  switchUsers?: boolean;
  /** false: start jobs of other users by forking the daemon even where the helper exists (tests). */
  useLaunchHelper?: boolean;
}

interface WatchedJob {
  id: string;
  dir: string;
  /**
   * What the supervisor recorded about itself (pid, start time), to tell whether it still lives.
   * Only polled jobs need the start time; for a job watched through its connection, the pid.
   */
  supervisor: SupervisorStatus;
  /** The job's pid and process group id; unknown while an adopted launch is still in progress. */
  pid: number | undefined;
  /** Stops listening to the supervisor's connection (undefined for jobs watched by polling). */
  detach?: () => void;
  cpu?: CpuSnapshot;
}

export class LocalRunner {
  private readonly stateDir: string;
  private readonly callbacks: RunnerCallbacks;
  private readonly pollMs: number;
  private readonly maxConnections: number;
  private readonly supervisors: SupervisorClient;
  private readonly jobs = new Map<string, WatchedJob>();
  /** Ids between asking for a supervisor and its launch report. */
  private readonly launching = new Set<string>();
  /** Ids reported ended whose supervisor is done with their dir (so forget() may reuse it). */
  private readonly ended = new Set<string>();
  private readonly spares: SpareJobDirs;
  private connections = 0;
  private pollTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly legacyOutputs: LegacyOutputRecords;
  private readonly outputDirs = new OutputDirs();
  private readonly self = nodeAccount();
  /** Why jobs of other users start by forking (no launch helper), if they do. */
  readonly helperMissing: string | undefined;

  constructor(opts: LocalRunnerOptions) {
    this.stateDir = resolve(opts.stateDir);
    this.callbacks = opts.callbacks;
    this.pollMs = opts.pollMs ?? 200;
    this.maxConnections = opts.maxWatchedConnections ?? 512;
    ensureDir(jobsDir(this.stateDir));
    // As many spares as jobs it watches at once: a burst of exits fills the pool, a burst of
    // launches empties it, and neither then creates or deletes a dir.
    this.spares = new SpareJobDirs(this.stateDir, this.maxConnections);
    this.legacyOutputs = new LegacyOutputRecords(join(this.stateDir, "outputs"));
    const helper =
      opts.switchUsers && opts.useLaunchHelper !== false ? launchHelper(this.stateDir) : undefined;
    this.helperMissing = helper && "missing" in helper ? helper.missing : undefined;
    this.supervisors = new SupervisorClient(
      this.stateDir,
      opts.supervisorIdleSeconds,
      opts.supervisorPython,
      helper && "path" in helper ? helper.path : undefined,
    );
  }

  /** The host's user `name` (NSS, through the supervisor daemon); undefined when there is none. */
  lookupUser(name: string): Promise<UserAccount | undefined> {
    return this.supervisors.lookupUser(name);
  }

  /** The output record an earlier version kept in a file for job `id` (see output-records.ts). */
  legacyOutputRecord(id: string): OutputRecord | undefined {
    return this.legacyOutputs.read(id);
  }

  removeLegacyOutputRecord(id: string): void {
    this.legacyOutputs.remove(id);
  }

  /**
   * The output files an adopted job's process opened, as its supervisor recorded them (while its
   * state is kept: until forget). `uid`: the user it runs as.
   */
  recordedOutputs(id: string, uid: number): OutputRecord | undefined {
    const status = readStatus(jobDir(this.stateDir, id));
    if (!status?.stdoutId && !status?.stderrId) return undefined;
    const stdout = parseFileId(status.stdoutId);
    const stderr = parseFileId(status.stderrId);
    return { uid, ...(stdout ? { stdout } : {}), ...(stderr ? { stderr } : {}) };
  }

  /**
   * Starts a job; resolves with its pid once it has exec'd (the job is Running), and the output
   * files its process opened: the only files its output may be streamed from, for the caller to
   * record. Rejects with a LaunchError when it cannot start; nothing is left behind then.
   */
  async launch(spec: LaunchSpec): Promise<{ pid: number; outputs: OutputRecord }> {
    this.assertOpen();
    if (spec.outputDir) this.outputDirs.ensure(spec.outputDir, spec.switchUser ? spec.user : undefined);
    const { dir, input } = this.prepareJobDir(spec);
    this.launching.add(spec.id);
    const started = await this.supervisors.start(dir, input).finally(() => this.launching.delete(spec.id));
    if (!started.ok) {
      removeJobDir(dir);
      throw new LaunchError(started.error);
    }
    const uid = spec.switchUser && spec.user ? spec.user.uid : (process.getuid?.() ?? 0);
    const outputs: OutputRecord = { uid, ...started.outputs };
    if (this.closed) {
      started.conn.destroy(); // closed meanwhile: the job stays recorded for the next runner to adopt
      return { pid: started.pid, outputs };
    }
    const job: WatchedJob = {
      id: spec.id,
      dir,
      supervisor: { supervisorPid: started.supervisorPid },
      pid: started.pid,
    };
    this.jobs.set(spec.id, job);
    if (this.connections < this.maxConnections) {
      this.watchConnection(job, started.conn, started.onClose);
    } else {
      // Polling judges the supervisor by its recorded start time, so read it (watched jobs need not).
      job.supervisor = readStatus(dir) ?? job.supervisor;
      started.conn.destroy();
      this.startPolling();
    }
    return { pid: started.pid, outputs };
  }

  /**
   * Takes over a job launched by an earlier runner (e.g. before a node restart). Returns:
   *  - "running": its supervisor is alive; the job is now watched and onExit will fire.
   *  - { exitCode }: it already ended (possibly while no node was up); its real code, and no onExit.
   *  - "lost": no state, or its supervisor died without recording an exit (it was SIGKILLed, or the
   *    machine rebooted). A job process left behind unsupervised is killed so it cannot run on untracked.
   */
  adopt(id: string): AdoptResult {
    this.assertOpen();
    if (this.jobs.has(id)) return "running";
    const dir = jobDir(this.stateDir, id);
    const status = readStatus(dir);
    if (!status) return "lost";
    if (status.exitCode !== undefined) return { exitCode: status.exitCode };
    if (!supervisorAlive(status, dir)) {
      // It may have recorded the exit between our read and its death.
      const last = readStatus(dir) ?? status;
      if (last.exitCode !== undefined) return { exitCode: last.exitCode };
      killUnsupervised(last);
      return "lost";
    }
    this.jobs.set(id, { id, dir, supervisor: status, pid: status.pid });
    this.startPolling();
    return "running";
  }

  /**
   * Signals the job's whole process group; false when it is not running. Besides watched jobs this
   * reaches recorded jobs not (yet) adopted, when their process is verifiably still the job.
   */
  signal(id: string, signal: JobSignal): boolean {
    const pid = this.jobs.get(id)?.pid ?? this.unwatchedPid(id);
    if (pid === undefined) return false;
    try {
      process.kill(-pid, signal);
      return true;
    } catch {
      return false;
    }
  }

  pid(id: string): number | undefined {
    return this.jobs.get(id)?.pid;
  }

  /** Ids of the jobs this runner currently watches. */
  running(): string[] {
    return [...this.jobs.keys()];
  }

  /** Ids of all jobs with state on disk (what a restarted node may adopt() or forget()). */
  known(): string[] {
    return recordedJobIds(this.stateDir);
  }

  /** Resource usage of the job's process group; CPU % is relative to this job's previous sample. */
  async sample(id: string): Promise<ResourceUsage | undefined> {
    const job = this.jobs.get(id);
    if (job?.pid === undefined) return undefined;
    const result = await sampleProcessGroup(job.pid, job.cpu);
    if (!result) return undefined;
    job.cpu = result.snapshot;
    return result.usage;
  }

  /**
   * Deletes the job's state once its exit is recorded elsewhere. Called for a job that still runs,
   * it stops watching it (no onExit) and the job can no longer be adopted; it is NOT signalled.
   */
  forget(id: string): void {
    this.jobs.get(id)?.detach?.();
    this.jobs.delete(id);
    const dir = jobDir(this.stateDir, id);
    if (!(this.ended.delete(id) && this.spares.keep(dir))) removeJobDir(dir);
  }

  /** Stops watching. Jobs keep running; the next runner on this stateDir adopts them. */
  async close(): Promise<void> {
    this.closed = true;
    this.ended.clear();
    this.stopPolling();
    for (const job of this.jobs.values()) job.detach?.();
    this.jobs.clear();
  }

  private assertOpen(): void {
    if (this.closed) throw new Error("LocalRunner is closed");
  }

  private unwatchedPid(id: string): number | undefined {
    const status = readStatus(jobDir(this.stateDir, id));
    return status?.exitCode === undefined && status && jobAlive(status) ? status.pid : undefined;
  }

  /**
   * Creating the job dir (non-recursively) is what makes an id ours. Leftovers of an earlier run of
   * the id whose supervisor is gone (a launch cut short by a crash, a lost or finished job not yet
   * forgotten) are replaced; a live one makes the launch fail.
   */
  private claimDir(dir: string, id: string): void {
    if (this.jobs.has(id) || this.launching.has(id)) throw new LaunchError(`job "${id}" is already running`);
    // A new id (the usual case) is claimed by the mkdir alone; only an existing dir needs a look.
    if (this.spares.take(dir) || makeJobDir(dir)) return;
    const status = readStatus(dir);
    if (status && status.exitCode === undefined && supervisorAlive(status, dir)) {
      throw new LaunchError(`job "${id}" is already running`);
    }
    removeJobDir(dir);
    if (!makeJobDir(dir)) throw new LaunchError(`cannot create job state: ${dir} exists`);
  }

  /**
   * Validates the spec and makes the job's state dir (with its stdin, if any); returns the dir and
   * the spec the supervisor gets. Any failure removes the dir again.
   */
  private prepareJobDir(spec: LaunchSpec): { dir: string; input: Buffer } {
    const argv = buildArgv(spec);
    const user = spec.user ?? this.self;
    const env = buildEnv(spec.environment, user);
    const cwd = spec.workingDirectory || undefined;
    const base = cwd ?? process.cwd();
    const stdoutFile = resolve(base, spec.stdoutFile);
    const stderrFile = resolve(base, spec.stderrFile);
    assertNoNul([...argv, ...env, cwd, stdoutFile, stderrFile]);

    const dir = jobDir(this.stateDir, spec.id);
    this.claimDir(dir, spec.id);
    try {
      const stdinFile = spec.stdin ? join(dir, "stdin") : undefined;
      if (stdinFile) writeFileSync(stdinFile, spec.stdin as string, { mode: 0o600 });
      const { uid, gid, groups } = user;
      const input = encodeSpec({
        argv,
        env,
        base: process.cwd(),
        cwd,
        stdinFile,
        stdoutFile,
        stderrFile,
        ...(spec.switchUser ? { uid, gid, groups } : {}),
      });
      return { dir, input };
    } catch (err) {
      removeJobDir(dir);
      throw new LaunchError(`cannot prepare job: ${(err as Error).message}`);
    }
  }

  /**
   * The supervisor sends the job's exit code and closes the job's connection once it has recorded
   * the exit (or it closes without one when it was killed: finish() then finds no exit code). A very
   * short job's close may already have been seen; onClose then reports after launch()'s caller has
   * seen the pid.
   */
  private watchConnection(
    job: WatchedJob,
    conn: Socket,
    onClose: (fn: (exitCode: number | undefined) => void) => void,
  ): void {
    let watching = true;
    this.connections++;
    const stop = (): void => {
      if (!watching) return;
      watching = false;
      this.connections--;
    };
    job.detach = () => {
      stop();
      conn.destroy();
    };
    onClose((exitCode) => {
      if (!watching) return;
      stop();
      this.finish(job, exitCode);
    });
  }

  private startPolling(): void {
    this.pollTimer ??= setInterval(() => this.pollAdopted(), this.pollMs);
  }

  private stopPolling(): void {
    clearInterval(this.pollTimer);
    this.pollTimer = undefined;
  }

  /** Adopted jobs are not our children, so we learn of their end by looking. */
  private pollAdopted(): void {
    let adopted = 0;
    for (const job of this.jobs.values()) {
      if (job.detach) continue;
      adopted++;
      const status = readStatus(job.dir);
      job.pid ??= status?.pid;
      if (status?.exitCode !== undefined || !supervisorAlive(job.supervisor, job.dir)) this.finish(job);
    }
    if (adopted === 0) this.stopPolling();
  }

  /** Reports the job's end: `exitCode` as its supervisor sent it, else as recorded in its status. */
  private finish(job: WatchedJob, exitCode?: number): void {
    if (this.closed || this.jobs.get(job.id) !== job) return; // closed, or already reported
    this.jobs.delete(job.id);
    const code = exitCode ?? readStatus(job.dir)?.exitCode;
    if (code !== undefined) {
      this.ended.add(job.id);
      this.callbacks.onExit(job.id, code);
      return;
    }
    const status = readStatus(job.dir);
    // Its supervisor died without recording an exit (killed, or OOM-killed): the job is killed too
    // (unsupervised, nobody would record its end), and reported as lost, not as a real exit.
    if (status) killUnsupervised(status);
    const pid = status?.supervisorPid ?? job.supervisor?.supervisorPid;
    this.callbacks.onExit(
      job.id,
      LOST_EXIT_CODE,
      `its supervisor daemon${pid ? ` (pid ${pid})` : ""} died before recording the job's exit; what was left of the job was killed`,
    );
  }
}

/** Creates a job's state dir; false when it already exists. */
function makeJobDir(dir: string): boolean {
  try {
    mkdirSync(dir, { mode: 0o700 });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw new LaunchError(`cannot create job state: ${(err as Error).message}`);
  }
}

function killUnsupervised(status: SupervisorStatus): void {
  if (status.pid === undefined || !jobAlive(status)) return;
  try {
    process.kill(-status.pid, "SIGKILL");
  } catch {
    // it ended by itself meanwhile
  }
}

/**
 * The job's whole environment: its own variables (later duplicates win) over its user's HOME, USER,
 * LOGNAME, SHELL and a default PATH. Nothing of the node's environment.
 */
function buildEnv(environment: Env[] = [], user: UserAccount): string[] {
  const env = new Map<string, string>([
    ["HOME", user.home || "/"],
    ["USER", user.name],
    ["LOGNAME", user.name],
    ["SHELL", user.shell || "/bin/sh"],
    ["PATH", DEFAULT_PATH],
  ]);
  for (const { name, value } of environment) {
    if (name === "" || name.includes("=")) {
      throw new LaunchError(`invalid environment variable name "${name}"`);
    }
    env.set(name, value);
  }
  return [...env].map(([name, value]) => `${name}=${value}`);
}

/** execve takes C strings, and the spec file is NUL-separated. */
function assertNoNul(values: (string | undefined)[]): void {
  if (values.some((v) => v?.includes("\0"))) {
    throw new LaunchError("launch parameters must not contain NUL bytes");
  }
}
