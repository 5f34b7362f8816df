// A push queue read as an async iterator: status streams never drop an event (the Launcher's Go
// cache does), and abort ends the reader at once. Unbounded unless given a
// bound: then, once the queue holds more than the bound allows (a reader that stopped reading), it
// lets go of everything it holds and fails the reader, rather than skip events silently.

export interface QueueBound<T> {
  /** The (estimated) bytes an item holds. */
  sizeOf(item: T): number;
  /** Whether the queue may hold `bytes` (the sum of its items' sizes). */
  fits(bytes: number): boolean;
  /** Called once when it may not: the error the reader then gets. */
  overflow(): unknown;
}

export class AsyncQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private wake: (() => void) | undefined;
  private ended = false;
  private bytes = 0;
  private failure: { error: unknown } | undefined;

  constructor(
    signal?: AbortSignal,
    private readonly bound?: QueueBound<T>,
  ) {
    signal?.addEventListener("abort", () => this.end(), { once: true });
  }

  push(item: T): void {
    if (this.ended) return;
    this.items.push(item);
    if (this.bound) {
      this.bytes += this.bound.sizeOf(item);
      if (!this.bound.fits(this.bytes)) {
        this.items.length = 0;
        this.bytes = 0;
        this.failure = { error: this.bound.overflow() };
        this.end();
        return;
      }
    }
    this.notify();
  }

  end(): void {
    this.ended = true;
    this.notify();
  }

  get size(): number {
    return this.items.length;
  }

  /** The sum of the queued items' sizes (0 without a bound). */
  get byteSize(): number {
    return this.bytes;
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      while (this.items.length > 0) {
        const item = this.items.shift()!;
        if (this.bound) this.bytes -= this.bound.sizeOf(item);
        yield item;
      }
      if (this.failure) throw this.failure.error;
      if (this.ended) return;
      await new Promise<void>((r) => {
        this.wake = r;
      });
    }
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
