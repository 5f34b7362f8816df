/**
 * The runner's side of the job supervisor (the program is in supervisor-script.ts): the state
 * directory layout, reaching the node's resident supervisor daemon (starting it when needed), the
 * launch report, and reading what the supervisor recorded about each job.
 *
 * State layout under the runner's stateDir:
 *   supervisor-<hash>.py     the program (named by content, so upgrades never rewrite a running one)
 *   sup-<hash>.sock          the daemon's Unix socket (mode 0600), and .lock, its one-daemon lock
 *   supervisor.log           the daemon's stderr (Python errors, status files it could not write)
 *   jobs/<encoded id>/
 *     spec                   launch input: NUL-terminated key, value pairs (written by the runner)
 *     stdin                  the job's stdin text, when there is any
 *     status                 JSON SupervisorStatus, replaced atomically by the supervisor
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { readCmdline, readProcStat } from "./proc.js";
import { SUPERVISOR_SCRIPT } from "./supervisor-script.js";

export { SUPERVISOR_SCRIPT };

/** The PATH a job gets when its environment has none (the Local plugin adds one too). */
export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/**
 * Exit code reported for a watched job whose supervisor vanished without recording one (it was
 * SIGKILLed): the job, if still there, is killed by the runner, so "killed" (128+9) is the truth.
 */
export const LOST_EXIT_CODE = 137;

/** What the supervisor recorded; fields appear as the job progresses. */
export interface SupervisorStatus {
  /** The supervisor daemon that started the job and waits for it. */
  supervisorPid: number;
  /** The supervisor's start time (/proc stat field 22), to tell it from a process reusing its pid. */
  supervisorStart?: number;
  /** The job's pid (= its process group id), once it has exec'd. */
  pid?: number;
  /** The job's start time (/proc stat field 22) to recognise it despite pid reuse. */
  startTime?: number;
  /** Set once the job ended: its exit code or 128+signal; 127 with `error` if it never started. */
  exitCode?: number;
  signal?: number;
  error?: string;
}

/** The inputs of one supervisor run, turned into the spec file. */
export interface SupervisorSpec {
  argv: string[];
  env: string[];
  /** Where a job without a working directory starts (the node's cwd). */
  base: string;
  cwd?: string;
  stdinFile?: string;
  stdoutFile: string;
  stderrFile: string;
  uid?: number;
  gid?: number;
}

const PYTHON = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

/** Unix socket paths are limited to 108 bytes (sun_path) on Linux, NUL included. */
const MAX_SOCKET_PATH = 107;

/** Job ids become directory names: everything but [A-Za-z0-9_-] is %-encoded (so no "..", no "/"). */
export function encodeJobId(id: string): string {
  return id.replace(/[^A-Za-z0-9_-]/gu, (c) => Buffer.from(c, "utf8").toString("hex").replace(/../g, "%$&"));
}

export function decodeJobId(name: string): string {
  return decodeURIComponent(name);
}

export function jobsDir(stateDir: string): string {
  return join(stateDir, "jobs");
}

export function jobDir(stateDir: string, id: string): string {
  return join(jobsDir(stateDir), encodeJobId(id));
}

/** Ids of all jobs with state on disk. */
export function recordedJobIds(stateDir: string): string[] {
  try {
    return readdirSync(jobsDir(stateDir)).map(decodeJobId);
  } catch {
    return [];
  }
}

const SCRIPT_HASH = createHash("sha256").update(SUPERVISOR_SCRIPT).digest("hex").slice(0, 12);
/** The daemon's socket in the state dir; named by program version, like the program itself. */
const SOCKET_NAME = `sup-${SCRIPT_HASH}.sock`;

/** Writes the supervisor program into the state dir (once per content version); returns its path. */
export function installSupervisor(stateDir: string): string {
  const path = join(stateDir, `supervisor-${SCRIPT_HASH}.py`);
  if (!existsSync(path)) {
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, SUPERVISOR_SCRIPT, { mode: 0o755 });
    renameSync(tmp, path);
  }
  return path;
}

export function writeSpecFile(dir: string, spec: SupervisorSpec): void {
  const pairs: [string, string | number | undefined][] = [
    ...spec.argv.map((a): [string, string] => ["arg", a]),
    ...spec.env.map((e): [string, string] => ["env", e]),
    ["base", spec.base],
    ["cwd", spec.cwd],
    ["stdin", spec.stdinFile],
    ["stdout", spec.stdoutFile],
    ["stderr", spec.stderrFile],
    ["uid", spec.uid],
    ["gid", spec.gid],
  ];
  const text = pairs
    .filter((p): p is [string, string | number] => p[1] !== undefined)
    .map(([key, value]) => `${key}\0${value}\0`)
    .join("");
  writeFileSync(join(dir, "spec"), text, { mode: 0o600 });
}

type LaunchReport = { ok: true; pid: number; supervisorPid: number } | { ok: false; error: string };

/**
 * A launch's outcome. A started job comes with the connection its supervisor closes once the job
 * has ended and its exit is recorded.
 */
export type Started =
  | { ok: true; pid: number; supervisorPid: number; conn: Socket; onClose(fn: () => void): void }
  | { ok: false; error: string };

/**
 * The node's client of the resident supervisor daemon of one state dir. Each launch is one
 * connection; the daemon is (re)started when there is none, e.g. at a node's first launch, or after
 * it exited for being idle. A node restarting on the same state dir finds the same daemon.
 */
export class SupervisorClient {
  readonly socketPath: string;
  private daemon: Promise<string | undefined> | undefined;

  constructor(
    private readonly stateDir: string,
    private readonly idleSeconds = 300,
    private readonly python = PYTHON,
  ) {
    this.socketPath = join(stateDir, SOCKET_NAME);
    if (Buffer.byteLength(this.socketPath) > MAX_SOCKET_PATH) {
      throw new Error(
        `runner state dir "${stateDir}" is too long for the supervisor's Unix socket ` +
          `(${MAX_SOCKET_PATH - SOCKET_NAME.length - 1} bytes at most): set a shorter scratch path`,
      );
    }
  }

  /** Asks a supervisor to start the job whose spec is in `dir`; resolves with its report. */
  async start(dir: string): Promise<Started> {
    let lastError = "";
    for (let attempt = 0; attempt < 12; attempt++) {
      let conn: Socket;
      try {
        conn = await this.connect();
      } catch (err) {
        lastError = (err as Error).message;
        const failed = await this.ensureDaemon(attempt);
        if (failed) return { ok: false, error: `cannot start the job supervisor: ${failed}` };
        continue;
      }
      const report = await exchange(conn, dir);
      if (report) return report;
      // Closed without a report. If no supervisor took the job (the daemon was leaving), retry.
      if (readStatus(dir)) return silentFailure(dir);
      lastError = "the supervisor daemon closed the connection";
    }
    const log = join(this.stateDir, "supervisor.log");
    return { ok: false, error: `cannot reach the job supervisor: ${lastError} (its log: ${log})` };
  }

  private connect(): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const conn = connect(this.socketPath);
      conn.once("connect", () => {
        conn.off("error", reject);
        resolve(conn);
      });
      conn.once("error", reject);
    });
  }

  /**
   * Starts the daemon unless one is starting; waits until it listens (or another one holds it).
   * Resolves with why it could not be started at all (no python3), else undefined.
   */
  private ensureDaemon(attempt: number): Promise<string | undefined> {
    this.daemon ??= this.spawnDaemon(attempt).finally(() => {
      this.daemon = undefined;
    });
    return this.daemon;
  }

  private async spawnDaemon(attempt: number): Promise<string | undefined> {
    // A "busy" answer means a daemon that is just leaving still holds the lock: back off a little.
    if (attempt > 1) await new Promise((r) => setTimeout(r, 10 * attempt));
    const script = installSupervisor(this.stateDir);
    const log = openSync(join(this.stateDir, "supervisor.log"), "a", 0o600);
    try {
      const child = spawn(
        this.python,
        ["-I", "-S", script, this.stateDir, SOCKET_NAME, String(this.idleSeconds)],
        {
          cwd: this.stateDir,
          detached: true,
          stdio: ["ignore", "pipe", log],
          env: { PATH: DEFAULT_PATH },
        },
      );
      const failed = await new Promise<string | undefined>((resolve) => {
        child.once("error", (err) =>
          resolve(`${this.python}: ${err.message} (the job supervisor runs on python3)`),
        );
        child.stdout?.once("data", () => resolve(undefined));
        child.once("exit", () => resolve(undefined));
      });
      child.stdout?.destroy();
      child.unref();
      return failed;
    } finally {
      closeSync(log);
    }
  }
}

/** Sends the job dir and waits for the one-line report; undefined when the connection closed first. */
function exchange(conn: Socket, dir: string): Promise<Started | undefined> {
  return new Promise((resolve) => {
    let text = "";
    let closed = false;
    const closers: (() => void)[] = [];
    const onClose = (fn: () => void): void => {
      if (closed) setImmediate(fn);
      else closers.push(fn);
    };
    conn.on("error", () => undefined); // a reset is seen as a close
    conn.once("close", () => {
      closed = true;
      for (const fn of closers.splice(0)) fn();
      resolve(undefined);
    });
    conn.setEncoding("utf8");
    conn.on("data", (chunk: string) => {
      text += chunk;
      const report = parseLaunchReport(text);
      if (!report) return;
      conn.removeAllListeners("data");
      conn.resume(); // nothing more is sent; keep reading so the close is seen
      if (!report.ok) conn.destroy();
      resolve(report.ok ? { ...report, conn, onClose } : report);
    });
    conn.write(`${dir}\n`);
  });
}

function parseLaunchReport(text: string): LaunchReport | undefined {
  const newline = text.indexOf("\n");
  if (newline < 0) return undefined;
  const line = text.slice(0, newline);
  const ok = /^ok (\d+) (\d+)$/.exec(line);
  if (ok) return { ok: true, pid: Number(ok[1]), supervisorPid: Number(ok[2]) };
  return { ok: false, error: line.startsWith("fail ") ? line.slice(5) : `job supervisor said "${line}"` };
}

/** The supervisor went away before reporting (it was killed); its status may say why. */
function silentFailure(dir: string): Started {
  const recorded = readStatus(dir)?.error;
  return { ok: false, error: recorded ?? "the job supervisor stopped before reporting the launch" };
}

export function readStatus(dir: string): SupervisorStatus | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(join(dir, "status"), "utf8"));
  } catch {
    return undefined; // not written yet (rename makes partial files impossible)
  }
  return isStatus(parsed) ? parsed : undefined;
}

function isStatus(value: unknown): value is SupervisorStatus {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  const optionalNumber = (k: string): boolean => v[k] === undefined || typeof v[k] === "number";
  return (
    typeof v.supervisorPid === "number" &&
    ["supervisorStart", "pid", "startTime", "exitCode", "signal"].every(optionalNumber) &&
    (v.error === undefined || typeof v.error === "string")
  );
}

/**
 * Whether the job's supervisor is still alive. The pid alone could have been reused by now, so its
 * start time must match (a zombie counts as gone). Statuses written before supervisors recorded
 * their start time are checked by command line, which then named the job dir.
 */
export function supervisorAlive(status: SupervisorStatus, dir: string): boolean {
  if (status.supervisorStart === undefined) return readCmdline(status.supervisorPid).includes(dir);
  const stat = readProcStat(status.supervisorPid);
  return stat !== undefined && stat.startTime === status.supervisorStart && stat.state !== "Z";
}

/** Whether the job's group leader is still the process the supervisor started (not a reused pid). */
export function jobAlive(status: SupervisorStatus): boolean {
  if (status.pid === undefined || status.startTime === undefined) return false;
  const stat = readProcStat(status.pid);
  return stat !== undefined && stat.startTime === status.startTime && stat.state !== "Z";
}

/**
 * Removes a job's state. Usually the dir holds a few plain files (spec, status, maybe stdin): they
 * are unlinked by name and the dir removed, with no failing system call on the way. (rmSync alone
 * costs a node about 3x the CPU, once per job: it lstats first, and its first rmdir always fails
 * with ENOTEMPTY, each failure a thrown error.) Anything else — the dir missing, a supervisor
 * writing its status at that moment so the dir gains an entry (ENOTEMPTY), a file already gone —
 * is left to rmSync, which retries.
 */
export function removeJobDir(dir: string): void {
  try {
    for (const name of readdirSync(dir)) unlinkSync(join(dir, name));
    rmdirSync(dir);
  } catch {
    rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 10 });
  }
}

export function ensureDir(path: string, mode = 0o700): void {
  mkdirSync(path, { recursive: true, mode });
}
