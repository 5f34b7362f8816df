// Graceful shutdown: SIGTERM to a node process makes it Draining (peers see it), fails its
// readiness and status for LAUNCHER_DRAIN_MS while it keeps serving, ends its streams cleanly and
// exits 0. Its running job keeps running and the next start of the same node id adopts it.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import {
  api,
  type ChildNode,
  readStream,
  startTestNode,
  type TestNode,
  testSettings,
  token,
  until,
} from "../helpers/nodes.js";
import { redisUrl, uniquePrefix } from "../helpers/redis.js";
import {
  adminRedis,
  alive,
  nodeView,
  type StatusMsg,
  spawnNode,
  streamEvents,
  submit,
  tearDown,
  track,
  waitAllOnline,
  waitStatus,
} from "./helpers.js";

/** A rolling restart is quicker than LOST_AFTER; a child node boots in seconds on a busy machine. */
const TIMINGS = { offlineAfterMs: 3_000, lostAfterMs: 20_000, drainMs: 1_500 };

const children: ChildNode[] = [];
const nodes: TestNode[] = [];
const pids: number[] = [];
let redis: Redis | undefined;
const figures: Record<string, number> = {};

afterAll(() => tearDown({ figures: ["drain", figures], children, pids, nodes: [nodes], redis }));

describe("drain on SIGTERM", () => {
  it("Draining, readiness off while serving, exit 0, the job runs on and is re-adopted", async () => {
    const prefix = uniquePrefix("fleet-drain");
    redis = adminRedis(redisUrl());
    const [b, a] = await Promise.all([
      track(startTestNode(prefix, TIMINGS), nodes),
      track(spawnNode(testSettings(prefix, TIMINGS)), children),
    ]);
    const aId = a.settings.nodeId;
    await waitAllOnline([a.url, b.url], [aId, b.settings.nodeId]);
    const tok = await token("dora");
    const gate = join(mkdtempSync(join(tmpdir(), "fleet-drain-")), "go");

    const id = await submit(a.url, tok, { command: `while [ ! -e ${gate} ]; do sleep 0.05; done; exit 5` });
    const pid = (await waitStatus(b.url, tok, id, "Running")).pid as number;
    pids.push(pid);
    // A client following the job on A: its stream must end cleanly when A goes.
    const following = readStream<StatusMsg>(a.url, `/jobs/${id}/status`, { token: tok, timeoutMs: 20_000 });

    const exited = new Promise<number | null>((resolve) => a.proc.once("exit", (code) => resolve(code)));
    a.proc.kill("SIGTERM");
    const termAt = Date.now();

    // During the drain: peers see Draining at once, A fails readiness and status, yet still serves.
    const seen = { readyz: 0, status: 0, served: 0, statusBody: "" };
    const probing = (async () => {
      while (a.proc.exitCode === null) {
        try {
          const [r, s, j] = await Promise.all([
            fetch(`${a.url}/readyz`),
            api(a.url, "GET", "/status"),
            api(a.url, "GET", `/jobs/${id}`, { token: tok }),
          ]);
          await r.body?.cancel();
          if (r.status === 503) seen.readyz++;
          if (s.status === 503) {
            seen.status++;
            seen.statusBody = String(s.body.status);
          }
          if (j.status === 200) seen.served++;
        } catch {
          // closing
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    await until(async () => (await nodeView(b.url, aId))?.status === "Draining", {
      timeoutMs: 5_000,
      everyMs: 10,
    });
    figures.drainingSeenByPeer = Date.now() - termAt;
    const viewed = await nodeView(b.url, aId);
    expect(viewed).toMatchObject({ status: "Draining", online: false });
    // Owner-only requests through B now say the owner is draining.
    const ctl = await api(b.url, "POST", `/jobs/${id}/control`, {
      token: tok,
      body: { operation: "suspend" },
    });
    expect(ctl.status).toBe(503);
    expect(ctl.body).toMatchObject({ code: 4 });
    expect(String(ctl.body.message)).toContain(aId);

    expect(await exited).toBe(0);
    figures.exitAfterSigterm = Date.now() - termAt;
    await probing;
    expect(figures.exitAfterSigterm).toBeGreaterThanOrEqual(TIMINGS.drainMs);
    expect(seen.readyz).toBeGreaterThan(0);
    expect(seen.status).toBeGreaterThan(0);
    expect(["Yellow", "Red"]).toContain(seen.statusBody);
    expect(seen.served).toBeGreaterThan(0);
    const stream = await following;
    expect(stream.ended).toBe(true);
    expect(stream.messages.at(-1)).toMatchObject({ error: { code: 4, name: "PluginRestarted" } });

    // A is gone; its job is not: still running, still Running in the record, not settled.
    expect(alive(pid)).toBe(true);
    expect((await api(b.url, "GET", `/jobs/${id}`, { token: tok })).body).toMatchObject({
      status: "Running",
      pid,
    });
    expect(await redis.hget(`${prefix}:node:${aId}`, "status")).toBe("Draining");

    // The same node id starts again (in-process, on the same scratch path): it adopts the job,
    // which ends with its real exit code.
    const again = await startTestNode(prefix, {
      ...TIMINGS,
      nodeId: aId,
      scratchPath: a.settings.scratchPath,
    });
    nodes.push(again);
    await until(async () => (await nodeView(b.url, aId))?.online === true);
    writeFileSync(gate, "");
    const finished = await waitStatus(b.url, tok, id, "Finished");
    expect(finished.exitCode).toBe(5);
    expect((await streamEvents(redis, prefix)).filter((e) => e.id === id).map((e) => e.status)).toEqual([
      "Pending",
      "Running",
      "Finished",
    ]);
  }, 60_000);
});
