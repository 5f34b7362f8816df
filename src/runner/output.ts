/**
 * Following a job's output files the way the Local plugin's output stream does: replay from the
 * start, follow while the job runs, and after it ends drain every file to its last byte.
 */
import type { FileHandle } from "node:fs/promises";
import { open } from "node:fs/promises";
import { StringDecoder } from "node:string_decoder";
import { setTimeout as sleep } from "node:timers/promises";

export type OutputType = "stdout" | "stderr";

export interface OutputChunk {
  output: string;
  outputType: OutputType;
}

export interface FollowOutputOptions {
  files: { path: string; type: OutputType }[];
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

const CHUNK_BYTES = 64 * 1024;

/** Missing-file retry delays as in the Launcher: 50 ms steps up to 0.5 s, then every second. */
function missingBackoffMs(attempt: number): number {
  return attempt < 10 ? 50 * (attempt + 1) : 1000;
}

class FollowedFile {
  private handle: FileHandle | undefined;
  private position = 0;
  private attempts = 0;
  private nextAttemptAt = 0;
  private readonly decoder = new StringDecoder("utf8");
  private readonly buffer = Buffer.alloc(CHUNK_BYTES);

  constructor(
    readonly path: string,
    readonly type: OutputType,
  ) {}

  get missing(): boolean {
    return this.handle === undefined;
  }

  /** Opens the file if it exists; `force` ignores the back-off (used for the final drain). */
  private async tryOpen(force: boolean): Promise<boolean> {
    if (this.handle) return true;
    if (!force && Date.now() < this.nextAttemptAt) return false;
    try {
      this.handle = await open(this.path, "r");
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      this.nextAttemptAt = Date.now() + missingBackoffMs(this.attempts++);
      return false;
    }
  }

  /** Decoded text of everything appended since the last call; incomplete UTF-8 waits for its rest. */
  async *readAvailable(force: boolean): AsyncGenerator<string> {
    if (!(await this.tryOpen(force)) || !this.handle) return;
    for (;;) {
      const { bytesRead } = await this.handle.read(this.buffer, 0, CHUNK_BYTES, this.position);
      if (bytesRead === 0) return;
      this.position += bytesRead;
      const text = this.decoder.write(this.buffer.subarray(0, bytesRead));
      if (text) yield text;
    }
  }

  /** Bytes of a character cut off at the very end of the file, as replacement characters. */
  tail(): string {
    return this.decoder.end();
  }

  async close(): Promise<void> {
    await this.handle?.close();
    this.handle = undefined;
  }
}

export async function* followOutput(opts: FollowOutputOptions): AsyncGenerator<OutputChunk> {
  const { signal, pollMs = 100 } = opts;
  const files = opts.files.map((f) => new FollowedFile(f.path, f.type));
  const startedAt = Date.now();
  try {
    while (!signal.aborted) {
      // Asked BEFORE reading: if the job was already done, this pass reads up to its last byte.
      const done = await opts.isDone();
      let progressed = false;
      for (const file of files) {
        for await (const output of file.readAvailable(done)) {
          if (signal.aborted) return;
          progressed = true;
          yield { output, outputType: file.type };
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
    await Promise.all(files.map((f) => f.close()));
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
