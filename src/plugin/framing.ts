// The Launcher Plugin API framing (launcher-plugin-api.md §5.1): every message, in both directions,
// is a 4-byte big-endian unsigned length followed by that many bytes of UTF-8 JSON. The decoder is
// incremental (chunks may split or join frames anywhere) and never throws on bad input: a length
// over the limit is skipped and reported, a stream that ends mid-frame is reported as truncated.
import type { Writable } from "node:stream";

/** The Launcher's default `max-message-size` (5 MiB). */
export const DEFAULT_MAX_MESSAGE_SIZE = 5 * 1024 * 1024;
export const HEADER_BYTES = 4;
/** The largest length the 4-byte header can carry. */
export const MAX_FRAME_LENGTH = 0xffff_ffff;
/** How much of a skipped (oversize) or truncated payload is kept, to find its `requestId`. */
export const PREFIX_BYTES = 4096;

export class MessageTooLargeError extends Error {
  constructor(
    readonly size: number,
    readonly max: number,
  ) {
    super(`Message of ${size} bytes exceeds the maximum message size of ${max} bytes`);
    this.name = "MessageTooLargeError";
  }
}

/** Encodes one message: header + UTF-8 JSON. Throws MessageTooLargeError over `maxSize`. */
export function encodeFrame(message: unknown, maxSize = DEFAULT_MAX_MESSAGE_SIZE): Buffer {
  const json = Buffer.from(JSON.stringify(message), "utf8");
  if (json.length > maxSize || json.length > MAX_FRAME_LENGTH)
    throw new MessageTooLargeError(json.length, maxSize);
  const frame = Buffer.allocUnsafe(HEADER_BYTES + json.length);
  frame.writeUInt32BE(json.length, 0);
  json.copy(frame, HEADER_BYTES);
  return frame;
}

/** What the decoder found in the input. */
export type DecodeEvent =
  /** A complete frame's payload (not yet parsed: that is protocol.ts's job). */
  | { kind: "frame"; payload: Buffer }
  /** A frame whose length is over the limit; its payload is skipped, `prefix` is its start. */
  | { kind: "oversize"; size: number; max: number; prefix: Buffer }
  /** The input ended inside a frame (`expected` is unknown when the header itself was cut). */
  | { kind: "truncated"; expected?: number; received: number; prefix: Buffer };

type State =
  | { name: "header" }
  | { name: "body"; length: number }
  | {
      name: "skip";
      size: number;
      remaining: number;
      prefix: Buffer[];
      prefixLength: number;
      reported: boolean;
    };

/**
 * Incremental decoder. `push` returns the events completed by a chunk (in order); `end` reports
 * a truncated frame if the input stopped in the middle of one.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private state: State = { name: "header" };

  constructor(readonly maxSize = DEFAULT_MAX_MESSAGE_SIZE) {}

  /** Bytes received but not yet part of an emitted event. */
  get pending(): number {
    return this.buffered;
  }

  push(chunk: Buffer): DecodeEvent[] {
    const events: DecodeEvent[] = [];
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    for (;;) {
      const state = this.state;
      if (state.name === "header") {
        if (this.buffered < HEADER_BYTES) break;
        const length = this.take(HEADER_BYTES).readUInt32BE(0);
        this.state =
          length > this.maxSize
            ? { name: "skip", size: length, remaining: length, prefix: [], prefixLength: 0, reported: false }
            : { name: "body", length };
      } else if (state.name === "body") {
        if (this.buffered < state.length) break;
        events.push({ kind: "frame", payload: this.take(state.length) });
        this.state = { name: "header" };
      } else {
        if (state.remaining > 0 && this.buffered === 0) break;
        const n = Math.min(state.remaining, this.buffered);
        const bytes = this.take(n);
        if (state.prefixLength < PREFIX_BYTES) {
          const keep = bytes.subarray(0, PREFIX_BYTES - state.prefixLength);
          state.prefix.push(Buffer.from(keep));
          state.prefixLength += keep.length;
        }
        state.remaining -= n;
        // Report once: as soon as enough of the payload is seen to find its requestId, or at its end.
        if (!state.reported && (state.prefixLength >= PREFIX_BYTES || state.remaining === 0)) {
          state.reported = true;
          events.push({
            kind: "oversize",
            size: state.size,
            max: this.maxSize,
            prefix: Buffer.concat(state.prefix),
          });
        }
        if (state.remaining === 0) this.state = { name: "header" };
        else break;
      }
    }
    return events;
  }

  /** The input has ended: a partial frame becomes a `truncated` event (reported at most once). */
  end(): DecodeEvent[] {
    const state = this.state;
    const rest = this.buffered > 0 ? this.take(this.buffered) : Buffer.alloc(0);
    this.state = { name: "header" };
    if (state.name === "header") {
      return rest.length > 0 ? [{ kind: "truncated", received: rest.length, prefix: rest }] : [];
    }
    if (state.name === "body") {
      return [
        {
          kind: "truncated",
          expected: state.length,
          received: rest.length,
          prefix: rest.subarray(0, PREFIX_BYTES),
        },
      ];
    }
    if (state.reported) return [];
    const prefix = Buffer.concat(state.prefix);
    return [{ kind: "truncated", expected: state.size, received: state.size - state.remaining, prefix }];
  }

  /** Removes and returns the first `n` buffered bytes (n <= buffered). */
  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[0]!;
    if (first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let copied = 0;
    while (copied < n) {
      const chunk = this.chunks[0]!;
      const want = n - copied;
      if (chunk.length <= want) {
        chunk.copy(out, copied);
        copied += chunk.length;
        this.chunks.shift();
      } else {
        chunk.copy(out, copied, 0, want);
        this.chunks[0] = chunk.subarray(want);
        copied += want;
      }
    }
    this.buffered -= n;
    return out;
  }
}

/**
 * Writes framed messages to a stream (the plugin's stdout). `write` encodes synchronously (so it
 * throws MessageTooLargeError before anything is written) and returns a promise when the stream's
 * buffer is full, which streaming loops await for backpressure.
 */
export class FrameWriter {
  constructor(
    private readonly out: Writable,
    readonly maxSize = DEFAULT_MAX_MESSAGE_SIZE,
  ) {}

  /** False once the stream is closed or broken; writes are then dropped. */
  get open(): boolean {
    return !this.out.destroyed && !this.out.writableEnded;
  }

  write(message: unknown): Promise<void> | undefined {
    const frame = encodeFrame(message, this.maxSize);
    if (!this.open) return undefined;
    if (this.out.write(frame)) return undefined;
    return new Promise((resolve) => {
      const done = () => {
        this.out.off("drain", done);
        this.out.off("close", done);
        this.out.off("error", done);
        resolve();
      };
      this.out.once("drain", done);
      this.out.once("close", done);
      this.out.once("error", done);
    });
  }
}
