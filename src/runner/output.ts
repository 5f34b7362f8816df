/**
 * Following a job's output files the way the Local plugin's output stream does: replay from the
 * start, follow while the job runs, and after it ends drain every file to its last byte.
 */
import { constants } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { open } from "node:fs/promises";
import { StringDecoder } from "node:string_decoder";
import { setTimeout as sleep } from "node:timers/promises";
import type { FileIdentity } from "./types.js";

export type OutputType = "stdout" | "stderr";

export interface OutputChunk {
  output: string;
  outputType: OutputType;
}

/**
 * A file to follow, and what it must be: the very file the job's process opened (same device and
 * inode), a regular file, owned by the uid the job ran as; a root job's file must also have been
 * created by its launch (root owns every system file).
 */
export interface FollowedFileSpec {
  path: string;
  type: OutputType;
  identity: FileIdentity;
  jobUid: number;
}

export interface FollowOutputOptions {
  files: FollowedFileSpec[];
  /** Aborting ends the generator promptly, without draining. */
  signal: AbortSignal;
  /** True once the job has exited; everything written before that is still delivered. */
  isDone: () => boolean | Promise<boolean>;
  /** Pause between reads when nothing new arrived; default 100 ms. */
  pollMs?: number;
  /** Give up (OutputNotFoundError) if a file is still missing this long while the job runs; default: never. */
  missingTimeoutMs?: number;
}

export class OutputNotFoundError extends Error {
  override name = "OutputNotFoundError";
}

/**
 * Read sizes: most jobs write little, so a file starts with a small buffer, which doubles while reads
 * fill it (a 64 KiB buffer per file per stream, zero-filled, was most of a short stream's garbage).
 */
const FIRST_CHUNK_BYTES = 4 * 1024;
const MAX_CHUNK_BYTES = 64 * 1024;

/** Missing-file retry delays as in the Launcher: 50 ms steps up to 0.5 s, then every second. */
function missingBackoffMs(attempt: number): number {
  return attempt < 10 ? 50 * (attempt + 1) : 1000;
}

/**
 * Opening never blocks (a FIFO put in the file's place opens at once, and is then refused) and never
 * follows a symlink put there.
 */
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW;

/** Why `handle` is not the job's output file, or undefined when it is. */
async function refusal(handle: FileHandle, spec: FollowedFileSpec): Promise<string | undefined> {
  const st = await handle.stat({ bigint: true });
  const { identity, jobUid } = spec;
  if (!st.isFile()) return "is not a regular file";
  if (st.dev !== identity.dev || st.ino !== identity.ino) return "is not the file the job opened";
  if (Number(st.uid) !== jobUid) return "is not owned by the job's user";
  if (jobUid === 0 && !identity.created) return "existed before the root job started";
  return undefined;
}

class FollowedFile {
  private handle: FileHandle | undefined;
  private position = 0;
  private attempts = 0;
  private nextAttemptAt = 0;
  private readonly decoder = new StringDecoder("utf8");
  private buffer: Buffer | undefined;
  readonly path: string;
  readonly type: OutputType;

  constructor(private readonly spec: FollowedFileSpec) {
    this.path = spec.path;
    this.type = spec.type;
  }

  get missing(): boolean {
    return this.handle === undefined;
  }

  /** Opens the file if it exists; `force` ignores the back-off (used for the final drain). */
  async tryOpen(force: boolean): Promise<void> {
    if (this.handle) return;
    if (!force && Date.now() < this.nextAttemptAt) return;
    let handle: FileHandle;
    try {
      handle = await open(this.path, OPEN_FLAGS);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ELOOP") throw new OutputNotFoundError(`output file "${this.path}" is a symbolic link`);
      if (code !== "ENOENT") throw err;
      this.nextAttemptAt = Date.now() + missingBackoffMs(this.attempts++);
      return;
    }
    const why = await refusal(handle, this.spec).catch((err: Error) => `cannot be examined (${err.message})`);
    if (why !== undefined) {
      await handle.close().catch(() => undefined);
      throw new OutputNotFoundError(`output file "${this.path}" ${why}`);
    }
    this.handle = handle;
  }

  /**
   * The decoded text of the next piece appended since the last read (incomplete UTF-8 waits for its
   * rest), and whether more may follow at once: a read that does not fill the buffer reached the end
   * of the file (a regular file reads short only there), so no further read is needed to find out.
   */
  async read(): Promise<{ text: string; more: boolean }> {
    if (!this.handle) return { text: "", more: false };
    // Only the bytes read are decoded, so the buffer need not be zero-filled.
    this.buffer ??= Buffer.allocUnsafe(FIRST_CHUNK_BYTES);
    const buffer = this.buffer;
    const { bytesRead } = await this.handle.read(buffer, 0, buffer.length, this.position);
    this.position += bytesRead;
    const text = bytesRead === 0 ? "" : this.decoder.write(buffer.subarray(0, bytesRead));
    const more = bytesRead === buffer.length;
    if (more && buffer.length < MAX_CHUNK_BYTES) this.buffer = Buffer.allocUnsafe(buffer.length * 2);
    return { text, more };
  }

  /** Bytes of a character cut off at the very end of the file, as replacement characters. */
  tail(): string {
    return this.decoder.end();
  }

  /** Not awaited: a read-only file's close has nothing to report, and the stream's end need not wait. */
  close(): void {
    this.handle?.close().catch(() => undefined);
    this.handle = undefined;
  }
}

export async function* followOutput(opts: FollowOutputOptions): AsyncGenerator<OutputChunk> {
  const { signal, pollMs = 100 } = opts;
  const files = opts.files.map((f) => new FollowedFile(f));
  const startedAt = Date.now();
  try {
    while (!signal.aborted) {
      // Asked BEFORE reading: if the job was already done, this pass reads up to its last byte.
      const done = await opts.isDone();
      let progressed = false;
      // Files are opened together and first read together: each file system call is a trip to the
      // thread pool and back, and a finished job's whole output is then ready in one go.
      // Settled together: an open still in flight when another file was refused would otherwise
      // take its descriptor after `finally` closed the files, leaving it to the garbage collector.
      const opens = await Promise.allSettled(files.map((f) => f.tryOpen(done)));
      for (const o of opens) if (o.status === "rejected") throw o.reason;
      const firstReads = files.map((f) => f.read());
      for (const p of firstReads) p.catch(() => undefined); // awaited below, unless the stream ends first
      for (const [i, file] of files.entries()) {
        for (let piece = await firstReads[i]!; ; piece = await file.read()) {
          if (signal.aborted) return;
          if (piece.text) {
            progressed = true;
            yield { output: piece.text, outputType: file.type };
          }
          if (!piece.more) break;
        }
      }
      if (done) {
        yield* tails(files);
        return;
      }
      checkMissing(files, startedAt, opts.missingTimeoutMs);
      if (!progressed) await pause(pollMs, signal);
    }
  } finally {
    for (const file of files) file.close();
  }
}

function* tails(files: FollowedFile[]): Generator<OutputChunk> {
  for (const file of files) {
    const output = file.tail();
    if (output) yield { output, outputType: file.type };
  }
}

function checkMissing(files: FollowedFile[], startedAt: number, timeoutMs: number | undefined): void {
  if (timeoutMs === undefined || Date.now() - startedAt < timeoutMs) return;
  const missing = files.find((f) => f.missing);
  if (missing) throw new OutputNotFoundError(`output file "${missing.path}" not found`);
}

/** Waits, but wakes (without throwing) as soon as the signal aborts; no timer outlives it. */
async function pause(ms: number, signal: AbortSignal): Promise<void> {
  try {
    await sleep(ms, undefined, { signal });
  } catch {
    // aborted: the caller's loop condition ends the generator
  }
}
