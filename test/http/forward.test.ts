// Two real apps on 127.0.0.1: job X lives on A; B's service says so, and B forwards.
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FORWARDED_BY_HEADER } from "../../src/http/index.js";
import { freePort } from "../helpers/redis-server.js";
import { FakeService, whenAborted } from "./fake-service.js";
import { bearer, eventually, listen, makeApp, ndjson, sse, type TestApp } from "./helpers.js";

interface Pair {
  a: TestApp & { url: string };
  b: TestApp & { url: string };
  /** Headers of the requests A received for /jobs/X… */
  seenByA: IncomingHttpHeaders[];
  auth: { authorization: string };
}

let pair: Pair;
const extra: TestApp[] = [];
const servers: ReturnType<typeof createServer>[] = [];

/**
 * A bare HTTP server standing in for the owner, answering however the test says, with B's location
 * for job X pointing at it. Returns what it received.
 */
async function fakeOwner(handle: (req: IncomingMessage, res: ServerResponse) => void) {
  const seen: { headers: IncomingHttpHeaders; url: string; body: string }[] = [];
  let connections = 0;
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => {
      body += c.toString();
    });
    req.on("end", () => {
      seen.push({ headers: req.headers, url: req.url ?? "", body });
      handle(req, res);
    });
  });
  server.on("connection", () => connections++);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  pair.b.service.locations.set("X", {
    owner: "node-a",
    local: false,
    online: true,
    draining: false,
    baseUrl: `http://127.0.0.1:${port}`,
  });
  return { seen, connections: () => connections };
}

async function startPair(): Promise<Pair> {
  const seenByA: IncomingHttpHeaders[] = [];
  const serviceA = new FakeService("node-a");
  const a = await makeApp({
    service: serviceA,
    settings: { nodeId: "node-a" },
    setup: (app) =>
      app.addHook("onRequest", async (request) => {
        if (request.url.startsWith("/jobs/X")) seenByA.push(request.headers);
      }),
  });
  const urlA = await listen(a.app);
  const serviceB = new FakeService("node-b");
  const b = await makeApp({ service: serviceB, settings: { nodeId: "node-b", peerTimeoutMs: 500 } });
  const urlB = await listen(b.app);
  for (const s of [serviceA, serviceB]) s.addJob({ id: "X", user: "alice", status: "Running" });
  serviceB.locations.set("X", {
    owner: "node-a",
    local: false,
    online: true,
    draining: false,
    baseUrl: urlA,
  });
  return { a: { ...a, url: urlA }, b: { ...b, url: urlB }, seenByA, auth: await bearer("alice", ["dev"]) };
}

/** A's output stream: one "tick", then nothing until it is aborted (which `aborted` then says). */
function tickUntilAborted(a: TestApp): { aborted: boolean } {
  const state = { aborted: false };
  a.service.outputImpl = async function* (_c, _id, _t, signal) {
    yield { output: "tick", outputType: "stdout" };
    await whenAborted(signal);
    state.aborted = true;
  };
  return state;
}

beforeEach(async () => {
  pair = await startPair();
});
afterEach(async () => {
  for (const server of servers.splice(0)) server.closeAllConnections();
  await Promise.all([pair.a.app.close(), pair.b.app.close(), ...extra.splice(0).map((t) => t.app.close())]);
});

describe("forwarding owner-only requests", () => {
  it("control through B is answered by A, with the caller's identity and the hop header", async () => {
    const { a, b, seenByA, auth } = pair;
    const res = await fetch(`${b.url}/jobs/X/control`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ operation: "stop" }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ statusMessage: "Stop by node-a", operationComplete: true });
    expect(res.headers.get("x-launcher-owner")).toBe("node-a");
    expect(b.service.callsTo("control")).toHaveLength(0);
    expect(a.service.callsTo("control")[0]?.caller).toEqual({ user: "alice", groups: ["dev"], admin: false });
    expect(seenByA[0]?.[FORWARDED_BY_HEADER]).toBe("node-b");
    expect(seenByA[0]?.authorization).toBe(auth.authorization);
  });

  it("errors from the owner pass through unchanged", async () => {
    const { b, auth } = pair;
    const res = await fetch(`${b.url}/jobs/X/control`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ operation: 1 }),
    });
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({ code: 8, name: "InvalidJobState" });
  });

  it("network through B", async () => {
    const { b, auth } = pair;
    const res = await fetch(`${b.url}/jobs/X/network`, { headers: auth });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ host: "host-node-a", ipAddresses: ["10.0.0.1"] });
    // B only located the job; the route itself ran on A alone.
    expect(b.service.callsTo("locate")).toHaveLength(1);
    expect(b.service.callsTo("network")).toHaveLength(0);
  });

  it("output through B streams A's output (NDJSON and SSE)", async () => {
    const { b, auth } = pair;
    const res = await fetch(`${b.url}/jobs/X/output?outputType=stdout`, { headers: auth });
    expect(res.headers.get("content-type")).toBe("application/x-ndjson");
    expect(ndjson(await res.text())).toEqual([
      { seqId: 1, output: "hello from node-a\n", outputType: "stdout" },
      { seqId: 2, output: "oops\n", outputType: "stderr" },
      { seqId: 3, complete: true },
    ]);
    expect(pair.a.service.callsTo("outputStream")[0]?.args).toEqual(["X", 0]);
    const events = sse(
      await (
        await fetch(`${b.url}/jobs/X/output`, { headers: { ...auth, accept: "text/event-stream" } })
      ).text(),
    );
    expect(events.map((e) => e.data?.seqId)).toEqual([1, 2, 3]);
    expect(b.service.callsTo("outputStream")).toHaveLength(0);
  });

  it("reads are served locally, not forwarded", async () => {
    const { b, auth, seenByA } = pair;
    expect((await fetch(`${b.url}/jobs/X`, { headers: auth })).status).toBe(200);
    expect(seenByA).toHaveLength(0);
  });

  it("a bad token is refused by B before forwarding", async () => {
    const { b, seenByA } = pair;
    const res = await fetch(`${b.url}/jobs/X/network`, { headers: { authorization: "Bearer nope" } });
    expect(res.status).toBe(401);
    expect(seenByA).toHaveLength(0);
  });

  it("a client disconnect at B cancels the stream on A at once", async () => {
    const { a, b, auth } = pair;
    const onA = tickUntilAborted(a);
    const client = new AbortController();
    const res = await fetch(`${b.url}/jobs/X/output`, { headers: auth, signal: client.signal });
    const reader = res.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toContain("tick");
    expect(b.app.streams.size).toBe(1);
    client.abort();
    await eventually(() => onA.aborted, 1000);
    await eventually(() => b.app.streams.size === 0 && a.app.streams.size === 0, 1000);
  });

  it("the owner dying mid-stream ends the stream with an error line", async () => {
    const { a, b, auth } = pair;
    tickUntilAborted(a);
    const res = await fetch(`${b.url}/jobs/X/output`, { headers: auth });
    const text = res.text();
    await eventually(() => a.app.streams.size === 1);
    a.app.server.closeAllConnections();
    const lines = ndjson(await text);
    expect(lines[0]).toMatchObject({ seqId: 1, output: "tick" });
    expect(lines.at(-1)).toMatchObject({ error: { code: 4, name: "PluginRestarted" } });
    expect(JSON.stringify(lines.at(-1))).toContain("node-a");
  });

  it("closing B ends a forwarded stream with B's own PluginRestarted line, and the stream on A", async () => {
    const { a, b, auth } = pair;
    const onA = tickUntilAborted(a);
    const res = await fetch(`${b.url}/jobs/X/output`, { headers: auth });
    const text = res.text();
    await eventually(() => b.app.streams.size === 1 && a.app.streams.size === 1);
    await b.app.close();
    const lines = ndjson(await text);
    expect(lines[0]).toMatchObject({ seqId: 1, output: "tick" });
    expect(lines.at(-1)).toMatchObject({ error: { code: 4, name: "PluginRestarted" } });
    expect(JSON.stringify(lines.at(-1))).toContain("node-b");
    await eventually(() => onA.aborted && a.app.streams.size === 0, 1000);
  });

  it("a client that stops reading a forwarded stream stops B reading from A (B holds no backlog)", async () => {
    const { a, b, auth } = pair;
    const chunk = "x".repeat(64 * 1024);
    let sent = 0;
    a.service.outputImpl = async function* () {
      for (let i = 0; i < 2_000; i++) {
        sent++;
        yield { output: chunk, outputType: "stdout" };
      }
    };
    const client = new AbortController();
    const res = await fetch(`${b.url}/jobs/X/output`, { headers: auth, signal: client.signal });
    expect(res.status).toBe(200);
    // Nothing read: the socket buffers on the way fill, then A's stream waits for B, B for the client.
    for (let before = -1, i = 0; before !== sent && i < 50; i++) {
      before = sent;
      await new Promise((r) => setTimeout(r, 300));
    }
    // 2,000 messages of 64 KiB are 128 MiB: far less than that waits in buffers between A and the client.
    expect(sent).toBeLessThan(1_000);
    expect(b.app.streams.size).toBe(1);
    client.abort();
    await eventually(() => b.app.streams.size === 0 && a.app.streams.size === 0, 2000);
  });
});

describe("plain (non-stream) answers", () => {
  it("are relayed byte for byte with the owner's status and content headers, hop-by-hop ones dropped", async () => {
    const { b, auth } = pair;
    // Multi-byte characters and a body well over one socket read, so it arrives in several chunks.
    const body = JSON.stringify({ message: "déjà vu ✓", pad: "x".repeat(200_000) });
    const owner = await fakeOwner((_req, res) => {
      res.writeHead(409, {
        "content-type": "application/json; charset=utf-8",
        "cache-control": "no-store",
        "x-internal": "not for clients",
      });
      res.end(body);
    });
    const res = await fetch(`${b.url}/jobs/X/control`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ operation: "stop" }),
    });
    expect(res.status).toBe(409);
    expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("content-length")).toBe(String(Buffer.byteLength(body)));
    expect(res.headers.get("x-launcher-owner")).toBe("node-a");
    expect(res.headers.get("x-internal")).toBeNull();
    expect(Buffer.from(await res.arrayBuffer()).equals(Buffer.from(body))).toBe(true);
    // What the owner got: the same request, the caller's token, the hop header, the JSON body.
    expect(owner.seen).toHaveLength(1);
    expect(owner.seen[0]).toMatchObject({ url: "/jobs/X/control", body: '{"operation":"stop"}' });
    expect(owner.seen[0]?.headers).toMatchObject({
      authorization: auth.authorization,
      [FORWARDED_BY_HEADER]: "node-b",
      "content-type": "application/json",
    });
    expect(owner.seen[0]?.headers["x-request-id"]).toEqual(expect.any(String));
  });

  it("completed answers leave the connection to the owner open for the next request (nothing aborted)", async () => {
    const { b, auth } = pair;
    const owner = await fakeOwner((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"host":"h","ipAddresses":[]}');
    });
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${b.url}/jobs/X/network`, { headers: auth });
      expect(await res.json()).toEqual({ host: "h", ipAddresses: [] });
    }
    expect(owner.seen).toHaveLength(5);
    expect(owner.connections()).toBe(1);
  });

  it("HEAD through B gives A's status and length without a body", async () => {
    const { b, auth } = pair;
    const get = await fetch(`${b.url}/jobs/X/network`, { headers: auth });
    const length = String((await get.arrayBuffer()).byteLength);
    const head = await fetch(`${b.url}/jobs/X/network`, { method: "HEAD", headers: auth });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe(length);
    expect(head.headers.get("x-launcher-owner")).toBe("node-a");
    expect(await head.text()).toBe("");
  });

  it("an owner breaking off its answer → 503 code 4 naming the node", async () => {
    const { b, auth } = pair;
    await fakeOwner((_req, res) => {
      res.writeHead(200, { "content-type": "application/json", "content-length": "100" });
      res.write('{"host":');
      setImmediate(() => res.destroy());
    });
    const res = await fetch(`${b.url}/jobs/X/network`, { headers: auth });
    expect(res.status).toBe(503);
    const body = (await res.json()) as { code: number; message: string };
    expect(body.code).toBe(4);
    expect(body.message).toMatch(/node-a, which broke off its answer/);
  });

  it("a client leaving before the answer cancels the request to the owner", async () => {
    const { b, auth } = pair;
    let ownerSawClose = false;
    const owner = await fakeOwner((req) => {
      // Never answers; only the forwarding node giving up ends this request.
      req.socket.once("close", () => {
        ownerSawClose = true;
      });
    });
    const client = new AbortController();
    const pending = fetch(`${b.url}/jobs/X/network`, { headers: auth, signal: client.signal }).catch(
      (err: unknown) => err,
    );
    await eventually(() => owner.seen.length === 1);
    client.abort();
    await pending;
    await eventually(() => ownerSawClose);
  });
});

describe("owner unavailable", () => {
  async function expect503(res: Response, message: RegExp): Promise<void> {
    expect(res.status).toBe(503);
    const body = (await res.json()) as { code: number; name: string; message: string };
    expect(body).toMatchObject({ code: 4, name: "PluginRestarted" });
    expect(body.message).toMatch(message);
  }

  it("offline owner → 503 code 4 naming the node, without trying it", async () => {
    const { b, auth, seenByA } = pair;
    // An address (TEST-NET-1) that never accepts: had the node tried it, the message would name a
    // connection failure, not "offline".
    b.service.locations.set("X", {
      owner: "node-a",
      local: false,
      online: false,
      draining: false,
      baseUrl: "http://192.0.2.1:5559",
    });
    await expect503(
      await fetch(`${b.url}/jobs/X/network`, { headers: auth }),
      /^Job X is owned by node node-a, which is offline/,
    );
    expect(seenByA).toHaveLength(0);
  });

  it("draining owner → 503 code 4", async () => {
    const { b, auth } = pair;
    b.service.locations.set("X", {
      owner: "node-a",
      local: false,
      online: true,
      draining: true,
      baseUrl: pair.a.url,
    });
    await expect503(await fetch(`${b.url}/jobs/X/output`, { headers: auth }), /node-a, which is draining/);
  });

  it("unreachable owner (closed port) → 503 code 4 saying it refused the connection", async () => {
    const { b, auth } = pair;
    const port = await freePort();
    b.service.locations.set("X", {
      owner: "node-a",
      local: false,
      online: true,
      draining: false,
      baseUrl: `http://127.0.0.1:${port}`,
    });
    await expect503(
      await fetch(`${b.url}/jobs/X/control`, {
        method: "POST",
        headers: { ...auth, "content-type": "application/json" },
        body: JSON.stringify({ operation: "stop" }),
      }),
      /node-a.*refused the connection/,
    );
  });

  it("an address that never answers → 503 code 4 once peerTimeoutMs has passed (not the OS's minutes)", async () => {
    const { b, auth } = pair;
    // TEST-NET-1 (RFC 5737): never routed, so the connect either fails or times out.
    b.service.locations.set("X", {
      owner: "node-a",
      local: false,
      online: true,
      draining: false,
      baseUrl: "http://192.0.2.1:5559",
    });
    // Without the node's own connect timeout this would wait for the OS's (minutes) and the test's
    // timeout would fail it. Some sandboxes refuse or fail the connect at once instead.
    await expect503(
      await fetch(`${b.url}/jobs/X/network`, { headers: auth }),
      /node-a, which (did not accept a connection in time|could not be reached|refused the connection)/,
    );
  });

  it("a request that was already forwarded is not forwarded again (loop guard)", async () => {
    const { b, auth, seenByA } = pair;
    const res = await fetch(`${b.url}/jobs/X/network`, {
      headers: { ...auth, [FORWARDED_BY_HEADER]: "node-c" },
    });
    await expect503(res, /node-a/);
    expect(seenByA).toHaveLength(0);
  });

  it("the owner answering for a job it does not own does not bounce it back", async () => {
    const { a, b, auth } = pair;
    // A thinks B owns X now, B thinks A does.
    a.service.locations.set("X", {
      owner: "node-b",
      local: false,
      online: true,
      draining: false,
      baseUrl: b.url,
    });
    const res = await fetch(`${b.url}/jobs/X/network`, { headers: auth });
    await expect503(res, /node-b/);
    expect(a.service.callsTo("network")).toHaveLength(0);
    expect(b.service.callsTo("network")).toHaveLength(0);
  });
});
