// Driving a service stream for a front door: both ask the service's iterable for one item at a
// time (so a client that reads slowly holds the source back) and stop at once when their stream is
// canceled, even while the source waits for its next item. The framing (NDJSON/SSE lines, plugin
// messages) and the seqIds that number them stay with each front door.

import type { PushStream } from "../port.js";

function noop(): void {}

/** Whether a service's stream can push its live messages (see PushStream). */
export function isPushStream<T>(stream: AsyncIterable<T>): stream is PushStream<T> {
  const s = stream as Partial<PushStream<T>>;
  return typeof s.catchUp === "function" && typeof s.follow === "function";
}

/**
 * A stream's iterator results, each given up as soon as the stream's signal aborts (even while the
 * source still waits for its next item). One abort listener for the stream's life, not one per
 * item: adding and removing an EventTarget listener per status event was ~4% of what a streaming
 * node allocated per event.
 */
export class AbortableNext {
  /** Rejects the promise last handed out; a no-op once that one has settled. */
  private rejectWaiting: ((reason: unknown) => void) | undefined;

  constructor(private readonly signal: AbortSignal) {
    signal.addEventListener("abort", () => this.rejectWaiting?.(signal.reason), { once: true });
  }

  /** Resolves with the iterator's next result, or rejects with the signal's reason once it aborts. */
  next<T>(next: Promise<IteratorResult<T>>): Promise<IteratorResult<T>> {
    if (this.signal.aborted) return Promise.reject(this.signal.reason);
    return new Promise((resolve, reject) => {
      this.rejectWaiting = reject;
      next.then(resolve, reject);
    });
  }
}

const ABORTED = Symbol("aborted");

/** The iterator's next result, or ABORTED as soon as the signal fires. */
async function nextUnlessAborted<T>(
  next: Promise<IteratorResult<T>>,
  signal: AbortSignal,
  nexts: AbortableNext,
): Promise<IteratorResult<T> | typeof ABORTED> {
  try {
    return await nexts.next(next);
  } catch (err) {
    if (signal.aborted) return ABORTED;
    throw err;
  }
}

/**
 * Runs `fn` for each item until the iterable ends (true) or the signal fires (false). A canceled
 * stream stops at once even if the source is waiting; the source is then told to finish.
 */
export async function forEachUntilAborted<T>(
  iterable: AsyncIterable<T>,
  signal: AbortSignal,
  fn: (item: T) => Promise<void> | void,
): Promise<boolean> {
  const iterator = iterable[Symbol.asyncIterator]();
  const nexts = new AbortableNext(signal);
  let next: Promise<IteratorResult<T>> | undefined;
  let done = false;
  try {
    for (;;) {
      next = iterator.next();
      const result = await nextUnlessAborted(next, signal, nexts);
      if (result === ABORTED) return false;
      next = undefined;
      if (result.done) {
        done = true;
        return true;
      }
      await fn(result.value);
      if (signal.aborted) return false;
    }
  } finally {
    // A source stopped early (canceled, or the sink failed) is told to finish and clean up.
    if (next) next.catch(noop);
    if (!done) iterator.return?.()?.catch(noop);
  }
}
