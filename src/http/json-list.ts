// A JSON list answer (`{"jobs":[…]}`) written a part at a time: a listing of 10,000 jobs is never
// one array of objects plus one multi-MB string, which grew the node's heap for good.
import { Readable } from "node:stream";

export const JSON_UTF8 = "application/json; charset=utf-8";

/** Characters gathered before a write: few writes, little held. */
const CHUNK_CHARS = 64 * 1024;

/**
 * The bytes `JSON.stringify({ [key]: items })` would give, from an iterator whose first result
 * the caller has already awaited: a failure reading the start is then an ordinary error reply,
 * since nothing is sent before it. A later failure ends the stream with an error, and fastify
 * cuts the connection (the headers are out), so a client never takes a partial list for a whole.
 * The client going away stops the reading (`return()` reaches the source).
 */
export function jsonListBody<T>(key: string, first: IteratorResult<T>, rest: AsyncIterator<T>): Readable {
  return Readable.from(chunks(key, first, rest), { objectMode: false });
}

async function* chunks<T>(
  key: string,
  first: IteratorResult<T>,
  rest: AsyncIterator<T>,
): AsyncGenerator<string> {
  try {
    let text = `{${JSON.stringify(key)}:[`;
    let separator = "";
    for (let item = first; !item.done; item = await rest.next()) {
      text += separator + JSON.stringify(item.value);
      separator = ",";
      if (text.length >= CHUNK_CHARS) {
        yield text;
        text = "";
      }
    }
    yield `${text}]}`;
  } finally {
    await rest.return?.();
  }
}

/**
 * `jsonListBody` of items already serialised, a batch at a time: the same bytes as
 * `JSON.stringify({ [key]: items })` when each text is its item's `JSON.stringify`.
 */
export function jsonListOfTexts(
  key: string,
  first: IteratorResult<readonly string[]>,
  rest: AsyncIterator<readonly string[]>,
): Readable {
  return Readable.from(textChunks(key, first, rest), { objectMode: false });
}

async function* textChunks(
  key: string,
  first: IteratorResult<readonly string[]>,
  rest: AsyncIterator<readonly string[]>,
): AsyncGenerator<string> {
  try {
    let parts: string[] = [`{${JSON.stringify(key)}:[`];
    let size = 0;
    let separator = "";
    for (let batch = first; !batch.done; batch = await rest.next()) {
      for (const text of batch.value) {
        parts.push(separator, text);
        separator = ",";
        size += text.length;
        // Parts of ~64 kB, as jsonListBody's: a batch of whole jobs is ~500 kB, and buffers that
        // large are what the allocator keeps (resident) after a listing.
        if (size >= CHUNK_CHARS) {
          yield parts.join("");
          parts = [];
          size = 0;
        }
      }
    }
    parts.push("]}");
    yield parts.join("");
  } finally {
    await rest.return?.();
  }
}
