/**
 * The runner's side of the per-job supervisor (the program is in supervisor-script.ts): the state
 * directory layout, starting a supervisor, its launch report, and reading what it recorded.
 *
 * State layout under the runner's stateDir:
 *   supervisor-<hash>.pl     the program (named by content, so upgrades never rewrite a running one)
 *   jobs/<encoded id>/
 *     spec                   launch input: NUL-terminated key, value pairs (written by the runner)
 *     stdin                  the job's stdin text, when there is any
 *     supervisor.log         the supervisor's own stderr (Perl errors)
 *     status                 JSON SupervisorStatus, replaced atomically by the supervisor
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
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
  supervisorPid: number;
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
  cwd?: string;
  stdinFile?: string;
  stdoutFile: string;
  stderrFile: string;
  uid?: number;
  gid?: number;
}

const PERL = existsSync("/usr/bin/perl") ? "/usr/bin/perl" : "perl";

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

/** Writes the supervisor program into the state dir (once per content version); returns its path. */
export function installSupervisor(stateDir: string): string {
  const hash = createHash("sha256").update(SUPERVISOR_SCRIPT).digest("hex").slice(0, 12);
  const path = join(stateDir, `supervisor-${hash}.pl`);
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

/**
 * Starts a supervisor in its own session (detached) in `cwd`, which a job without a working
 * directory inherits. Its stderr goes straight to a file so it never depends on the node being alive.
 */
export function spawnSupervisor(script: string, dir: string, cwd: string): ChildProcess {
  const log = openSync(join(dir, "supervisor.log"), "a", 0o600);
  try {
    return spawn(PERL, [script, dir], {
      cwd,
      detached: true,
      stdio: ["ignore", "pipe", log],
      env: { PATH: DEFAULT_PATH },
    });
  } finally {
    closeSync(log);
  }
}

export type LaunchReport = { ok: true; pid: number } | { ok: false; error: string };

/** Waits for the supervisor's one-line launch report (`ok <pid>` / `fail <why>`). */
export function readLaunchReport(child: ChildProcess, dir: string): Promise<LaunchReport> {
  return new Promise((resolve) => {
    const stdout = child.stdout;
    let text = "";
    let settled = false;
    const settle = (report: LaunchReport): void => {
      if (settled) return;
      settled = true;
      stdout?.destroy();
      resolve(report);
    };
    const onEnd = (): void => settle(parseLaunchReport(text) ?? silentFailure(child, dir));
    child.once("error", (err) => settle({ ok: false, error: `cannot start job supervisor: ${err.message}` }));
    if (!stdout) return onEnd();
    stdout.setEncoding("utf8");
    stdout.on("data", (chunk: string) => {
      text += chunk;
      const report = parseLaunchReport(text);
      if (report) settle(report);
    });
    stdout.once("close", onEnd);
  });
}

function parseLaunchReport(text: string): LaunchReport | undefined {
  const newline = text.indexOf("\n");
  if (newline < 0) return undefined;
  const line = text.slice(0, newline);
  const pid = /^ok (\d+)$/.exec(line)?.[1];
  if (pid !== undefined) return { ok: true, pid: Number(pid) };
  return { ok: false, error: line.startsWith("fail ") ? line.slice(5) : `job supervisor said "${line}"` };
}

/** The supervisor died before reporting; its log says why (e.g. a Perl error). */
function silentFailure(child: ChildProcess, dir: string): LaunchReport {
  let log = "";
  try {
    log = readFileSync(join(dir, "supervisor.log"), "utf8").trim();
  } catch {
    // no log: fall through to the generic message
  }
  const how = child.exitCode !== null ? `exit code ${child.exitCode}` : (child.signalCode ?? "no report");
  return { ok: false, error: `job supervisor failed (${how})${log ? `: ${log}` : ""}` };
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
    ["pid", "startTime", "exitCode", "signal"].every(optionalNumber) &&
    (v.error === undefined || typeof v.error === "string")
  );
}

/**
 * Whether the supervisor for `dir` is still alive. The pid alone could have been reused by now, so
 * its command line must name this job dir (a zombie has an empty one and counts as gone).
 */
export function supervisorAlive(pid: number, dir: string): boolean {
  return readCmdline(pid).includes(dir);
}

/** Whether the job's group leader is still the process the supervisor started (not a reused pid). */
export function jobAlive(status: SupervisorStatus): boolean {
  if (status.pid === undefined || status.startTime === undefined) return false;
  const stat = readProcStat(status.pid);
  return stat !== undefined && stat.startTime === status.startTime && stat.state !== "Z";
}

/**
 * Removes a job's state. A supervisor may be writing its status at that moment, so a directory
 * that gains an entry mid-removal (ENOTEMPTY) is retried.
 */
export function removeJobDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 10 });
}

export function ensureDir(path: string, mode = 0o700): void {
  mkdirSync(path, { recursive: true, mode });
}
