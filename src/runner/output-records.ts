// What the node keeps about a job's output files: the identity of each file the job's process
// opened (the only file its output may be streamed from), and the users' default output dirs, the
// one thing the node creates for a job.
// The identities are recorded in the job's Redis hash with its Running status (encoded here); until
// session 8 they were one file per job under the runner's `outputs/` dir, which cost an inode per
// job (40-500 µs of system CPU on an ext4 virtual disk) and grew one directory by every job for a
// day. Those files are still read and removed for jobs started before.
import { chmodSync, chownSync, lstatSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { type FileIdentity, LaunchError, type OutputRecord, type UserAccount } from "./types.js";

/** The per-job record files of earlier versions under `dir`: read, and removed when a job expires. */
export class LegacyOutputRecords {
  constructor(private readonly dir: string) {}

  read(id: string): OutputRecord | undefined {
    try {
      return decodeOutputRecord(readFileSync(this.path(id), "utf8"));
    } catch {
      return undefined;
    }
  }

  remove(id: string): void {
    rmSync(this.path(id), { force: true });
  }

  private path(id: string): string {
    return join(this.dir, encodeURIComponent(id));
  }
}

/** Users' default output dirs under the scratch dir, remembered once made right. */
export class OutputDirs {
  private readonly ready = new Set<string>();

  /**
   * Makes `dir` a directory owned by `owner` (the node's user when undefined), mode 0700; an
   * existing one is put right (never followed if it is a symlink: only the node can create entries
   * in its parent, which it makes 0711).
   */
  ensure(dir: string, owner: UserAccount | undefined): void {
    if (this.ready.has(dir)) return;
    try {
      mkdirSync(dirname(dir), { recursive: true, mode: 0o711 });
      chmodSync(dirname(dir), 0o711);
      try {
        mkdirSync(dir, { mode: 0o700 });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
        if (!lstatSync(dir).isDirectory()) throw new Error(`${dir} is not a directory`);
      }
      if (owner) chownSync(dir, owner.uid, owner.gid);
      chmodSync(dir, 0o700);
    } catch (err) {
      throw new LaunchError(`cannot prepare the output dir ${dir}: ${(err as Error).message}`);
    }
    this.ready.add(dir);
  }
}

/** Stored: JSON, with the identities' big numbers as strings. */
export function encodeOutputRecord(record: OutputRecord): string {
  const id = (f: FileIdentity | undefined) => f && { ...f, dev: String(f.dev), ino: String(f.ino) };
  return JSON.stringify({ uid: record.uid, stdout: id(record.stdout), stderr: id(record.stderr) });
}

/** The record `text` holds; undefined when it holds none (empty, not JSON, no uid). */
export function decodeOutputRecord(text: string | undefined): OutputRecord | undefined {
  let raw: { uid?: unknown; stdout?: Record<string, unknown>; stderr?: Record<string, unknown> };
  try {
    raw = JSON.parse(text ?? "") as typeof raw;
  } catch {
    return undefined;
  }
  if (typeof raw?.uid !== "number") return undefined;
  const id = (f: Record<string, unknown> | undefined): FileIdentity | undefined =>
    f && typeof f.dev === "string" && typeof f.ino === "string"
      ? { dev: BigInt(f.dev), ino: BigInt(f.ino), uid: Number(f.uid), created: f.created === true }
      : undefined;
  const stdout = id(raw.stdout);
  const stderr = id(raw.stderr);
  return { uid: raw.uid, ...(stdout ? { stdout } : {}), ...(stderr ? { stderr } : {}) };
}
