/**
 * Input and callback types of the local runner. `Env` is the api package's type (a type-only import,
 * so the runner has no runtime dependency on the API layer, Redis or HTTP).
 */
import type { Env } from "../api/job.js";

export type { Env };

/** An OS user as the host's user database (NSS) knows it. */
export interface UserAccount {
  name: string;
  uid: number;
  /** Primary group. */
  gid: number;
  /** Every group of the user, the primary one included (getgrouplist). */
  groups: number[];
  home: string;
  shell: string;
}

/** Which file an output file is: recorded when the job's process opened it. */
export interface FileIdentity {
  dev: bigint;
  ino: bigint;
  /** The file's owner when it was opened. */
  uid: number;
  /** Whether the job's launch created it (rather than appending to an existing file). */
  created: boolean;
}

/** The output files a job's process opened, and the uid it ran as. */
export interface OutputRecord {
  uid: number;
  stdout?: FileIdentity;
  stderr?: FileIdentity;
}

/** Everything the runner needs to start one job as a local process. */
export interface LaunchSpec {
  id: string;
  /** Shell command; run as `/bin/sh -c "<command> <quoted args>"`. Exactly one of command/exe. */
  command?: string;
  /** Executable run directly with `args`; a bare name is looked up on the job's PATH. */
  exe?: string;
  args?: string[];
  /** The job's own environment; HOME, USER, LOGNAME, SHELL (of `user`) and PATH get defaults. */
  environment?: Env[];
  /** Whose job it is: its environment names this user. Default: the node's own user. */
  user?: UserAccount;
  /** Run with the user's uid, gid and groups (a root node); otherwise as the node's own user. */
  switchUser?: boolean;
  /** The job's default output dir, created for it (owned by its user, mode 0700) when missing. */
  outputDir?: string;
  /** When absent the job starts in the node process's current directory. */
  workingDirectory?: string;
  /** Text fed to the job's stdin; empty or absent means /dev/null. */
  stdin?: string;
  /** Appended to; the same path for both means one combined file. */
  stdoutFile: string;
  stderrFile: string;
}

export interface RunnerCallbacks {
  /**
   * The job's process exited: its exit code, or 128+N when killed by signal N. Fires exactly once per
   * job per runner instance; must not throw. `lost` says why the real exit is unknown: its supervisor
   * died without recording one (the runner then kills what is left of the job, so 137 is reported).
   */
  onExit(id: string, exitCode: number, lost?: string): void;
}

/** The signals the runner delivers to a job's process group. */
export type JobSignal = "SIGTERM" | "SIGKILL" | "SIGSTOP" | "SIGCONT";

/** A job could not be started (bad spec, missing executable, bad working directory, ...). */
export class LaunchError extends Error {
  override name = "LaunchError";
}
