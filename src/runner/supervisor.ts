/**
 * The runner's side of the job supervisor (the program is supervisor.py): the state directory
 * layout, reaching the node's resident supervisor daemon (starting it when needed), the launch
 * report, user lookups, and reading what the supervisor recorded about each job. (About 450 lines:
 * the node's half of one protocol, kept beside the state layout both halves share.)
 *
 * State layout under the runner's stateDir:
 *   supervisor-<hash>.py     the program (named by content, so upgrades never rewrite a running one)
 *   sup-<hash>.sock          the daemon's Unix socket (mode 0600), and .lock, its one-daemon lock
 *   supervisor.log           the daemon's stderr (Python errors, status files it could not write)
 *   spare/<n>/               job dirs of ended jobs kept for reuse (SpareJobDirs), status emptied
 *   jobs/<encoded id>/
 *     stdin                  the job's stdin text, when there is any
 *     status                 JSON SupervisorStatus lines appended by the supervisor; the last
 *                            complete one is the job's state
 * The launch input (the spec: NUL-terminated key, value pairs) goes over the daemon's socket, not
 * into a file: on a file system without a journal every inode created and deleted makes later
 * creations dearer (see supervisor.py), and the spec is not needed after the launch.
 */
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
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
  truncateSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { readCmdline, readProcStat } from "./proc.js";
import type { FileIdentity, UserAccount } from "./types.js";

/** The supervisor program (supervisor.py beside this module; the build copies it to dist/). */
export const SUPERVISOR_SCRIPT = readFileSync(new URL("./supervisor.py", import.meta.url), "utf8");

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
  /** Ids of the output files the job's process opened (see parseFileId). */
  stdoutId?: string;
  stderrId?: string;
}

/** The inputs of one supervisor run, sent to the daemon as the job's spec. */
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
  groups?: number[];
}

const PYTHON = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

/** Unix socket paths are limited to 108 bytes (sun_path) on Linux, NUL included. */
const MAX_SOCKET_PATH = 107;

/** Job ids become directory names: everything but [A-Za-z0-9_-] is %-encoded (so no "..", no "/"). Exported only for test/runner/misc.test.ts (its only user outside this file). */
export function encodeJobId(id: string): string {
  return id.replace(/[^A-Za-z0-9_-]/gu, (c) => Buffer.from(c, "utf8").toString("hex").replace(/../g, "%$&"));
}

// Exported only for test/runner/misc.test.ts (its only user outside this file).
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

/** The spec as the daemon reads it: NUL-terminated key, value pairs (arg and env repeat). */
export function encodeSpec(spec: SupervisorSpec): Buffer {
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
    ["groups", spec.groups?.join(",")],
  ];
  const text = pairs
    .filter((p): p is [string, string | number] => p[1] !== undefined)
    .map(([key, value]) => `${key}\0${value}\0`)
    .join("");
  return Buffer.from(text);
}

/** What the job's process opened as stdout and stderr (undefined: no regular file). */
export interface OutputIdentities {
  stdout?: FileIdentity;
  stderr?: FileIdentity;
}

type LaunchReport =
  | { ok: true; pid: number; supervisorPid: number; outputs: OutputIdentities }
  | { ok: false; error: string };

/**
 * A launch's outcome. A started job comes with the connection its supervisor closes once the job
 * has ended and its exit is recorded; `onClose` gets the exit code the supervisor sent before
 * closing (undefined when it closed without one: it was killed).
 */
export type Started =
  | {
      ok: true;
      pid: number;
      supervisorPid: number;
      outputs: OutputIdentities;
      conn: Socket;
      onClose(fn: (exitCode: number | undefined) => void): void;
    }
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
    /** The launch helper for jobs of other users (a root daemon); see launch-helper.ts. */
    private readonly helper?: string,
  ) {
    this.socketPath = join(stateDir, SOCKET_NAME);
    if (Buffer.byteLength(this.socketPath) > MAX_SOCKET_PATH) {
      throw new Error(
        `runner state dir "${stateDir}" is too long for the supervisor's Unix socket ` +
          `(${MAX_SOCKET_PATH - SOCKET_NAME.length - 1} bytes at most): set a shorter scratch path`,
      );
    }
  }

  /** Asks a supervisor to start the job of `dir` with `spec` (encodeSpec); resolves with its report. */
  async start(dir: string, spec: Buffer): Promise<Started> {
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
      const report = await exchange(conn, dir, spec);
      if (report) return report;
      // Closed without a report. If no supervisor took the job (the daemon was leaving), retry.
      if (readStatus(dir)) return silentFailure(dir);
      lastError = "the supervisor daemon closed the connection";
    }
    const log = join(this.stateDir, "supervisor.log");
    return { ok: false, error: `cannot reach the job supervisor: ${lastError} (its log: ${log})` };
  }

  /**
   * Looks a user up in the host's user database (NSS) through the daemon, which has Python's
   * getpwnam and getgrouplist (Node has neither). Undefined: no such user.
   */
  async lookupUser(name: string): Promise<UserAccount | undefined> {
    if (!/^[^\s\0/:]{1,256}$/u.test(name)) return undefined;
    for (let attempt = 0; attempt < 12; attempt++) {
      let conn: Socket;
      try {
        conn = await this.connect();
      } catch {
        const failed = await this.ensureDaemon(attempt);
        if (failed) throw new Error(`cannot start the job supervisor: ${failed}`);
        continue;
      }
      const line = await requestLine(conn, `user ${name}\n`);
      if (line === "nouser") return undefined;
      const account = parseAccount(name, line);
      if (account) return account;
    }
    throw new Error("the job supervisor did not answer a user lookup");
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
        [
          "-I",
          "-S",
          script,
          this.stateDir,
          SOCKET_NAME,
          String(this.idleSeconds),
          ...(this.helper ? [this.helper] : []),
        ],
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

/**
 * Sends the job's dir and spec and waits for the one-line report; undefined when the connection
 * closed first. After the report, the one thing the supervisor sends is `exit CODE`, just before it
 * closes the connection.
 */
function exchange(conn: Socket, dir: string, spec: Buffer): Promise<Started | undefined> {
  return new Promise((resolve) => {
    let text = "";
    let reported = false;
    let closed = false;
    const closers: ((exitCode: number | undefined) => void)[] = [];
    const exitCode = (): number | undefined => {
      const m = /^exit (\d+)$/m.exec(text);
      return m ? Number(m[1]) : undefined;
    };
    const onClose = (fn: (exitCode: number | undefined) => void): void => {
      if (closed) setImmediate(() => fn(exitCode()));
      else closers.push(fn);
    };
    conn.on("error", () => undefined); // a reset is seen as a close
    conn.once("close", () => {
      closed = true;
      const code = exitCode();
      for (const fn of closers.splice(0)) fn(code);
      resolve(undefined);
    });
    conn.setEncoding("utf8");
    conn.on("data", (chunk: string) => {
      text += chunk;
      if (reported) return;
      const report = parseLaunchReport(text);
      if (!report) return;
      reported = true;
      text = text.slice(text.indexOf("\n") + 1); // what may follow: the exit line
      if (!report.ok) conn.destroy();
      resolve(report.ok ? { ...report, conn, onClose } : report);
    });
    conn.write(`job ${spec.length} ${dir}\n`);
    conn.write(spec);
  });
}

/** Sends one request line; resolves with the first answer line ("" if the connection closed first). */
function requestLine(conn: Socket, request: string): Promise<string> {
  return new Promise((resolve) => {
    let text = "";
    conn.setEncoding("utf8");
    conn.on("error", () => undefined); // a reset is seen as a close
    conn.on("data", (chunk: string) => {
      text += chunk;
      if (text.includes("\n")) conn.destroy();
    });
    conn.once("close", () => resolve(text.split("\n")[0] ?? ""));
    conn.write(request);
  });
}

/** `user UID GID G1,G2 HOME_HEX SHELL_HEX` (hex "-" when empty). */
function parseAccount(name: string, line: string): UserAccount | undefined {
  const m = /^user (\d+) (\d+) ([\d,]*) ([0-9a-f]+|-) ([0-9a-f]+|-)$/.exec(line);
  if (!m) return undefined;
  const text = (hex: string) => (hex === "-" ? "" : Buffer.from(hex, "hex").toString("utf8"));
  return {
    name,
    uid: Number(m[1]),
    gid: Number(m[2]),
    groups: m[3] ? m[3].split(",").map(Number) : [Number(m[2])],
    home: text(m[4]!),
    shell: text(m[5]!),
  };
}

/** `DEV:INO:OWNER_UID:CREATED` of a regular file, or "-" (none). */
export function parseFileId(id: string | undefined): FileIdentity | undefined {
  const m = id ? /^(\d+):(\d+):(\d+):([01])$/.exec(id) : null;
  if (!m) return undefined;
  return { dev: BigInt(m[1]!), ino: BigInt(m[2]!), uid: Number(m[3]), created: m[4] === "1" };
}

function parseLaunchReport(text: string): LaunchReport | undefined {
  const newline = text.indexOf("\n");
  if (newline < 0) return undefined;
  const line = text.slice(0, newline);
  const ok = /^ok (\d+) (\d+) (\S+) (\S+)$/.exec(line);
  if (ok) {
    const outputs = { stdout: parseFileId(ok[3]), stderr: parseFileId(ok[4]) };
    return { ok: true, pid: Number(ok[1]), supervisorPid: Number(ok[2]), outputs };
  }
  return { ok: false, error: line.startsWith("fail ") ? line.slice(5) : `job supervisor said "${line}"` };
}

/** The supervisor went away before reporting (it was killed); its status may say why. */
function silentFailure(dir: string): Started {
  const recorded = readStatus(dir)?.error;
  return { ok: false, error: recorded ?? "the job supervisor stopped before reporting the launch" };
}

/**
 * The job's state: the last whole line of its status file. A line being appended at this moment is
 * not whole yet (a JSON object parses only once its closing brace is there), so the one before it
 * counts; none yet (or no file): undefined.
 */
export function readStatus(dir: string): SupervisorStatus | undefined {
  let text: string;
  try {
    text = readFileSync(join(dir, "status"), "utf8");
  } catch {
    return undefined; // not written yet
  }
  const lines = text.split("\n");
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!.trim();
    if (line === "") continue;
    try {
      const parsed: unknown = JSON.parse(line);
      return isStatus(parsed) ? parsed : undefined;
    } catch {
      // the last line, still being written
    }
  }
  return undefined;
}

function isStatus(value: unknown): value is SupervisorStatus {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  const optionalNumber = (k: string): boolean => v[k] === undefined || typeof v[k] === "number";
  return (
    typeof v.supervisorPid === "number" &&
    ["supervisorStart", "pid", "startTime", "exitCode", "signal"].every(optionalNumber) &&
    ["error", "stdoutId", "stderrId"].every((k) => v[k] === undefined || typeof v[k] === "string")
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

/**
 * Job dirs of ended jobs, kept (up to `max`) and given to new jobs, with their status file emptied
 * but kept. On a file system without a journal, ext4's inode allocator skips every inode deleted
 * within the last ~30 s (it checks each one's deletion time), so at a few hundred short jobs a
 * second, creating and deleting a dir and a status file per job made every creation scan thousands
 * of inodes: ~20% of the supervisor daemon's CPU and a good part of the node's. A rename creates and
 * frees nothing.
 */
export class SpareJobDirs {
  private readonly free: string[] = [];
  private readonly root: string;
  private readonly tag = randomBytes(4).toString("hex");
  private next = 0;

  constructor(
    stateDir: string,
    private readonly max = 64,
  ) {
    this.root = join(stateDir, "spare");
    // What an earlier runner left is not known to be empty: removed (a runner sharing the state dir
    // finds its own spares gone, and then makes dirs as usual).
    rmSync(this.root, { recursive: true, force: true });
    ensureDir(this.root);
  }

  /** Makes `dir` from a spare dir; false when there is none, or `dir` exists. */
  take(dir: string): boolean {
    const spare = this.free.pop();
    if (spare === undefined) return false;
    if (existsSync(dir)) {
      this.free.push(spare);
      return false;
    }
    try {
      renameSync(spare, dir);
      return true;
    } catch {
      rmSync(spare, { recursive: true, force: true });
      return false;
    }
  }

  /**
   * Keeps the dir of a job whose supervisor is done with it (the job's exit is recorded: nothing
   * writes there any more). False when it is not kept (more than a status file in it, or enough
   * spares): the caller removes it.
   */
  keep(dir: string): boolean {
    if (this.free.length >= this.max) return false;
    try {
      const names = readdirSync(dir);
      if (names.some((name) => name !== "status")) return false;
      if (names.length > 0) truncateSync(join(dir, "status"));
      const spare = join(this.root, `${this.tag}-${this.next++}`);
      renameSync(dir, spare);
      this.free.push(spare);
      return true;
    } catch {
      return false;
    }
  }
}

export function ensureDir(path: string, mode = 0o700): void {
  mkdirSync(path, { recursive: true, mode });
}
