// A push queue read as an async iterator: status streams never drop an event (the Launcher's Go
// cache does), and abort ends the reader at once. Unbounded: its writers bound what they push
// (status streams count what waits in it against the stream's budget, through `QueueCount`).

import type { PushStream } from "./port.js";

export class AsyncQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private wake: (() => void) | undefined;
  private ended = false;
  private failure: { error: unknown } | undefined;

  constructor(signal?: AbortSignal) {
    signal?.addEventListener("abort", () => this.end(), { once: true });
  }

  push(item: T): void {
    if (this.ended) return;
    this.items.push(item);
    this.notify();
  }

  end(): void {
    this.ended = true;
    this.notify();
  }

  /** Ends the queue with an error: the reader gets what is queued, then `error`. */
  fail(error: unknown): void {
    if (this.ended) return;
    this.failure = { error };
    this.end();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      while (this.items.length > 0) {
        yield this.items.shift()!;
      }
      if (this.failure) throw this.failure.error;
      if (this.ended) return;
      await new Promise<void>((r) => {
        this.wake = r;
      });
    }
  }
}

/** Told of each live message as it is queued for the reader and as the reader takes it. */
export interface QueueCount<T> {
  queued(message: T): void;
  taken(message: T): void;
}

/**
 * A PushStream read as a plain AsyncIterable: its catch-up, then its live messages through a queue
 * (for readers that pull, such as the plugin's status stream). Ends quietly when `signal` aborts.
 */
export async function* iteratePushStream<T>(
  stream: PushStream<T>,
  signal: AbortSignal,
  count?: QueueCount<T>,
): AsyncGenerator<T> {
  try {
    yield* { [Symbol.asyncIterator]: () => stream.catchUp() };
    const live = new AsyncQueue<T>(signal);
    const sink = {
      write: (message: T) => {
        count?.queued(message);
        live.push(message);
        return true;
      },
      drained: async () => {},
    };
    stream.follow(sink).then(
      () => live.end(),
      (err: unknown) => live.fail(err),
    );
    for await (const message of live) {
      count?.taken(message);
      yield message;
    }
  } finally {
    stream.close(); // a reader that stopped early (without aborting): the stream stops listening
  }
}

/** Resolves after `ms`, or at once when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
