// Stream writes made in one turn of the event loop leave in one socket write (coalesceWrites).
import { createServer, request, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, expect, it } from "vitest";
import { coalesceWrites } from "../../src/http/streams.js";

const servers: ReturnType<typeof createServer>[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** Counts the socket writes a response makes (_write for one buffer, _writev for several). */
function countSocketWrites(res: ServerResponse): () => number {
  const socket = res.socket as unknown as Record<string, (...a: unknown[]) => unknown>;
  let n = 0;
  for (const name of ["_write", "_writev"]) {
    const original = socket[name];
    if (typeof original !== "function") continue;
    socket[name] = function (this: unknown, ...args: unknown[]) {
      n++;
      return original.apply(this, args);
    };
  }
  return () => n;
}

async function serve(handler: (res: ServerResponse, writes: () => number) => void): Promise<string> {
  const server = createServer((_req, res) => handler(res, countSocketWrites(res)));
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return new Promise((resolve, reject) => {
    request({ port, host: "127.0.0.1", path: "/" }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve(body));
    })
      .on("error", reject)
      .end();
  });
}

it("headers and the writes of one turn leave in one socket write; later turns still flow", async () => {
  const counts: number[] = [];
  const body = await serve((res, writes) => {
    coalesceWrites(res);
    res.writeHead(200, { "content-type": "application/x-ndjson" });
    res.flushHeaders();
    for (const line of ['{"seqId":1}\n', '{"seqId":2}\n', '{"seqId":3}\n']) {
      coalesceWrites(res);
      res.write(line);
    }
    setImmediate(() => {
      setImmediate(() => {
        counts.push(writes());
        coalesceWrites(res);
        res.write('{"seqId":4,"complete":true}\n');
        res.end();
      });
    });
  });
  expect(body).toBe('{"seqId":1}\n{"seqId":2}\n{"seqId":3}\n{"seqId":4,"complete":true}\n');
  expect(counts).toEqual([1]); // headers + three lines: one write
});

it("without it, the same writes are separate socket writes (what the test above guards against)", async () => {
  const counts: number[] = [];
  await serve((res, writes) => {
    res.writeHead(200, { "content-type": "application/x-ndjson" });
    res.flushHeaders();
    for (const line of ['{"seqId":1}\n', '{"seqId":2}\n']) res.write(line);
    setImmediate(() => {
      counts.push(writes());
      res.end();
    });
  });
  expect(counts[0]).toBeGreaterThan(1);
});
