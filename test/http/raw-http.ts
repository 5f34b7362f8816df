// A raw HTTP/1.1 client over `net`, for what fetch cannot do: send a request a byte at a time, and
// stop reading a response (a paused socket takes nothing more from the kernel).
import { connect, type Socket } from "node:net";

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  /** The body, de-chunked when the response was chunked. */
  body: string;
}

/** Opens a connection to `url`'s host and port. */
export function rawConnect(url: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) }, () => resolve(socket));
    socket.once("error", reject);
  });
}

/** Everything the socket receives until the peer closes it (or it errors: a reset ends it too). */
export function readToEnd(socket: Socket): Promise<Buffer> {
  const parts: Buffer[] = [];
  return new Promise((resolve) => {
    socket.on("data", (d: Buffer) => parts.push(d));
    const done = () => resolve(Buffer.concat(parts));
    socket.once("close", done);
    socket.once("error", () => undefined);
    socket.resume();
  });
}

/** The chunks of a chunked body, in order (a torn last chunk gives what arrived of it). */
export function chunks(raw: string): string[] {
  const out: string[] = [];
  let at = 0;
  for (;;) {
    const eol = raw.indexOf("\r\n", at);
    if (eol < 0) return out;
    const size = Number.parseInt(raw.slice(at, eol), 16);
    if (!Number.isFinite(size) || size === 0) return out;
    out.push(raw.slice(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

/** Decodes a chunked body. */
export function dechunk(raw: string): string {
  return chunks(raw).join("");
}

/** Parses one raw HTTP response. */
export function parseResponse(raw: Buffer): RawResponse {
  const text = raw.toString("utf8");
  const end = text.indexOf("\r\n\r\n");
  const head = end < 0 ? text : text.slice(0, end);
  const [statusLine = "", ...lines] = head.split("\r\n");
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const rest = end < 0 ? "" : text.slice(end + 4);
  return {
    status: Number(statusLine.split(" ")[1] ?? 0),
    headers,
    body: headers["transfer-encoding"] === "chunked" ? dechunk(rest) : rest,
  };
}

/** The JSON lines of an NDJSON body (a torn last line is left out). */
export function jsonLines(body: string): Record<string, unknown>[] {
  const lines = body.split("\n");
  lines.pop(); // after the last newline: empty, or a torn line
  return lines.filter((l) => l.trim() !== "").map((l) => JSON.parse(l) as Record<string, unknown>);
}
