// The nodes API an operator and the web console rely on: `GET /nodes?watch=1` streams the list and
// then each change (a job placed, a node killed turning Offline), `status` and `online` never
// contradict, `runningJobs` is the node's own count, jobs carry the id of the node that runs them,
// and an admin drains a node through the API (forwarded to it; the node exits 0).

import { afterAll, describe, expect, it } from "vitest";
import type { NodeView } from "../../src/api/index.js";
import {
  api,
  type ChildNode,
  startTestNode,
  type TestNode,
  testSettings,
  token,
  until,
} from "../helpers/nodes.js";
import { uniquePrefix } from "../helpers/redis.js";
import { getJob, submit, waitStatus } from "../node/helpers.js";
import { nodesOf, spawnNode, tearDown, track, waitAllOnline } from "./helpers.js";

// A heartbeat of 300 ms against OFFLINE_AFTER 3 s: a loaded machine does not make a live node look silent.
const TIMINGS = { heartbeatMs: 300, offlineAfterMs: 3_000, lostAfterMs: 30_000, drainMs: 300 };

const nodes: TestNode[] = [];
const children: ChildNode[] = [];
afterAll(() => tearDown({ children, nodes: [nodes] }));

type WatchMessage = { seqId: number; nodes?: NodeView[]; node?: NodeView; removed?: string };

/** Reads `GET /nodes?watch=1` into `messages` until stopped. */
function watch(url: string, tok: string) {
  const messages: WatchMessage[] = [];
  const ctrl = new AbortController();
  const done = (async () => {
    const res = await fetch(`${url}/nodes?watch=1`, {
      headers: { authorization: `Bearer ${tok}` },
      signal: ctrl.signal,
    });
    expect(res.status, res.status === 200 ? "" : await res.text()).toBe(200);
    expect(res.headers.get("content-type")).toContain("application/x-ndjson");
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      for (let nl = buffer.indexOf("\n"); nl >= 0; nl = buffer.indexOf("\n")) {
        messages.push(JSON.parse(buffer.slice(0, nl)) as WatchMessage);
        buffer = buffer.slice(nl + 1);
      }
    }
  })().catch((err: Error) => {
    if (err.name !== "AbortError") throw err;
  });
  return { messages, stop: () => ctrl.abort(), done };
}

describe("the nodes API", () => {
  it("watch: the list, then each change, live; a killed node turns Offline with online false", async () => {
    const prefix = uniquePrefix("nodes-watch");
    const [a, b] = await Promise.all([
      track(startTestNode(prefix, TIMINGS), nodes),
      track(spawnNode(testSettings(prefix, TIMINGS)), children),
    ]);
    const [aId, bId] = [a.settings.nodeId, b.settings.nodeId];
    await waitAllOnline([a.url, b.url], [aId, bId]);
    const tok = await token("walt");
    const w = watch(a.url, tok);
    await until(() => w.messages.length > 0);
    expect(w.messages[0]!.seqId).toBe(1);
    expect(w.messages[0]!.nodes?.map((n) => n.id)).toEqual([aId, bId].sort());

    // A job placed on b: its runningJobs change is told.
    const job = await submit(b, tok, { command: "sleep 30" });
    expect(job.node).toBe(bId);
    expect((await getJob(a, tok, job.id)).node).toBe(bId);
    await until(() => w.messages.some((m) => m.node?.id === bId && m.node.runningJobs === 1), {
      timeoutMs: 5_000,
    });
    // GET /nodes agrees with b's own count.
    const views = await nodesOf(a.url);
    expect(views.find((v) => v.id === bId)?.runningJobs).toBe(1);
    expect(
      (await api<{ node: { runningJobs: number } }>(b.url, "GET", "/status")).body.node.runningJobs,
    ).toBe(1);

    // b dies: after OFFLINE_AFTER the watcher is told Offline, never Online-and-not-online.
    await b.stop("SIGKILL");
    const offline = await until(() => w.messages.find((m) => m.node?.id === bId && m.node.online === false), {
      timeoutMs: 10_000,
    });
    expect(offline.node).toMatchObject({ status: "Offline", online: false });
    for (const m of w.messages) {
      for (const n of m.nodes ?? (m.node ? [m.node] : [])) expect(n.status === "Online").toBe(n.online);
    }
    for (const v of await nodesOf(a.url)) expect(v.status === "Online").toBe(v.online);
    // Only changes are sent: no message repeats the one before it for the same node.
    const bMessages = w.messages
      .filter((m) => m.node?.id === bId)
      .map((m) => JSON.stringify({ ...m.node, lastSeen: 0 }));
    bMessages.forEach((m, i) => {
      if (i > 0) expect(m).not.toBe(bMessages[i - 1]);
    });

    w.stop();
    await w.done;
  }, 60_000);

  it("drain: admins only, forwarded to the node, which drains and exits 0", async () => {
    const prefix = uniquePrefix("nodes-drain");
    const [a, b] = await Promise.all([
      track(startTestNode(prefix, TIMINGS), nodes),
      track(spawnNode(testSettings(prefix, TIMINGS)), children),
    ]);
    const bId = b.settings.nodeId;
    await waitAllOnline([a.url, b.url], [a.settings.nodeId, bId]);
    const admin = await token("ops", { admin: true });
    const user = await token("uma");

    expect((await api(a.url, "POST", `/nodes/${bId}/drain`, { token: user })).status).toBe(403);
    const unknown = await api(a.url, "POST", "/nodes/no-such-node/drain", { token: admin });
    expect(unknown.status).toBe(404);
    expect(unknown.body.message).toContain("no-such-node");

    const exited = new Promise<number | null>((r) => b.proc.once("exit", (code) => r(code)));
    const res = await api(a.url, "POST", `/nodes/${bId}/drain`, { token: admin });
    expect(res).toMatchObject({ status: 202, body: { id: bId, status: "Draining" } });
    expect(await exited).toBe(0);
    const seen = await until(async () => (await nodesOf(a.url)).find((v) => v.id === bId && !v.online));
    expect(["Draining", "Offline"]).toContain(seen.status);
    // Nothing is placed on it while it drains or after: a new job runs on a.
    const job = await submit(a, user, { command: "true" });
    expect((await waitStatus(a, user, job.id, "Finished")).node).toBe(a.settings.nodeId);
  }, 60_000);
});
