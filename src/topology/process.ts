// Child processes of a local fleet: output appended to a log file, a promise for their exit, and
// a stop that escalates to SIGKILL.
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Child {
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly logFile: string;
  /** Settles when the process has exited (never rejects). */
  readonly exited: Promise<ExitInfo>;
  /** True once the process has exited. */
  hasExited(): boolean;
}

export interface SpawnOptions {
  env: NodeJS.ProcessEnv;
  logFile: string;
  cwd?: string;
}

/**
 * Starts `command` with stdout and stderr appended to `logFile`. The child gets its own process
 * group (detached) so a Ctrl-C in the terminal reaches only the fleet's parent, which then stops
 * the children in order (nodes drain) instead of every process dying at once.
 */
export function spawnLogged(command: string, args: string[], opts: SpawnOptions): Child {
  const fd = openSync(opts.logFile, "a");
  let proc: ChildProcess;
  try {
    proc = spawn(command, args, {
      env: opts.env,
      cwd: opts.cwd,
      stdio: ["ignore", fd, fd],
      detached: true,
    });
  } finally {
    // The child has its own copy of the descriptor.
    closeSync(fd);
  }
  let done = false;
  const exited = new Promise<ExitInfo>((resolve) => {
    proc.once("exit", (code, signal) => {
      done = true;
      resolve({ code, signal });
    });
    // A failed spawn (ENOENT, EACCES) emits "error" and no "exit".
    proc.once("error", () => {
      done = true;
      resolve({ code: null, signal: null });
    });
  });
  if (proc.pid === undefined) throw new Error(`could not start ${command}`);
  return { proc, pid: proc.pid, logFile: opts.logFile, exited, hasExited: () => done };
}

/** Sends `signal`, waits up to `timeoutMs` for the exit, then SIGKILLs. */
export async function stopChild(child: Child, signal: NodeJS.Signals, timeoutMs: number): Promise<ExitInfo> {
  if (child.hasExited()) return child.exited;
  child.proc.kill(signal);
  const timer = setTimeout(() => child.proc.kill("SIGKILL"), timeoutMs);
  try {
    return await child.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** The last `lines` lines of a log file, for error messages about a child that died. */
export function tailFile(path: string, lines = 20): string {
  try {
    return readFileSync(path, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

export function describeExit(exit: ExitInfo): string {
  return exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`;
}
