/**
 * Input and callback types of the local runner. `Env` is the api package's type (a type-only import,
 * so the runner has no runtime dependency on the API layer, Redis or HTTP).
 */
import type { Env } from "../api/job.js";

export type { Env };

/** The user and group a job runs as (only honoured when the node runs as root). */
export interface RunAs {
  uid: number;
  gid: number;
}

/** Everything the runner needs to start one job as a local process. */
export interface LaunchSpec {
  id: string;
  /** Shell command; run as `/bin/sh -c "<command> <quoted args>"`. Exactly one of command/exe. */
  command?: string;
  /** Executable run directly with `args`; a bare name is looked up on the job's PATH. */
  exe?: string;
  args?: string[];
  /** The job's entire environment; PATH gets a default when absent. */
  environment?: Env[];
  /** When absent the job starts in the node process's current directory. */
  workingDirectory?: string;
  /** Text fed to the job's stdin; empty or absent means /dev/null. */
  stdin?: string;
  /** Appended to; the same path for both means one combined file. */
  stdoutFile: string;
  stderrFile: string;
  runAs?: RunAs;
}

export interface RunnerCallbacks {
  /**
   * The job's process exited: its exit code, or 128+N when killed by signal N. Fires exactly once per
   * job per runner instance; must not throw.
   */
  onExit(id: string, exitCode: number): void;
}

/** The signals the runner delivers to a job's process group. */
export type JobSignal = "SIGTERM" | "SIGKILL" | "SIGSTOP" | "SIGCONT";

/** A job could not be started (bad spec, missing executable, bad working directory, ...). */
export class LaunchError extends Error {
  override name = "LaunchError";
}
