// Reading the API's NDJSON streams line by line; the node tests' readStream and the failover
// harness's status-stream client share it.

/**
 * The trimmed, non-empty lines of an NDJSON body as they arrive. `onChunk` runs on each chunk
 * read, before its lines are yielded.
 */
export async function* ndjsonLines(
  body: ReadableStream<Uint8Array>,
  onChunk: () => void = () => {},
): AsyncGenerator<string> {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    onChunk();
    buf += value;
    let nl = buf.indexOf("\n");
    while (nl >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      nl = buf.indexOf("\n");
      if (line) yield line;
    }
  }
}
