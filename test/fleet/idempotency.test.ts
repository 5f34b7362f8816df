// Idempotent submission: POST /jobs with `Idempotency-Key` made twice (on any node, after a Redis
// restart, or many times at once) gives one job and runs its command once; the same key with
// another body is a 409; keys are per user; the CLI sends one and retries while it cannot connect.
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Settings } from "../../src/config.js";
import { runCli } from "../helpers/cli.js";
import { api, startTestNode, type TestNode, token, until } from "../helpers/nodes.js";
import { uniquePrefix } from "../helpers/redis.js";
import { freePort, type RedisServer, removeRedisDir, startRedis } from "../helpers/redis-server.js";
import { type JobBody, listJobs, waitStatus } from "../node/helpers.js";
import { closeAll, RELAXED, sleep, track, waitAllOnline } from "./helpers.js";

let nodes: TestNode[] = [];
let servers: RedisServer[] = [];

afterEach(async () => {
  await closeAll(nodes);
  for (const server of servers) {
    await server.stop();
    removeRedisDir(server);
  }
  nodes = [];
  servers = [];
});

async function startNodes(prefix: string, n: number, over: Partial<Settings> = {}): Promise<TestNode[]> {
  const started = await Promise.all(
    Array.from({ length: n }, () => track(startTestNode(prefix, { ...RELAXED, ...over }), nodes)),
  );
  await waitAllOnline(
    started.map((s) => s.url),
    started.map((s) => s.settings.nodeId),
  );
  return started;
}

function post(n: TestNode, tok: string, body: unknown, key?: string) {
  return api<JobBody & { code?: number; message?: string }>(n.url, "POST", "/jobs", {
    token: tok,
    body,
    ...(key === undefined ? {} : { headers: { "idempotency-key": key } }),
  });
}

/** A job that appends a line to a ledger: how many times it ran. */
function ledgerJob(dir: string, line: string) {
  return { command: `echo ${line} >> ${join(dir, "ledger")}`, name: line };
}

function ledger(dir: string): string[] {
  try {
    return readFileSync(join(dir, "ledger"), "utf8").trim().split("\n").filter(Boolean);
  } catch {
    return [];
  }
}

describe("Idempotency-Key", () => {
  it("a repeat on another node is the same job (200), run once; another body is a 409; keys are per user", async () => {
    const [a, b] = (await startNodes(uniquePrefix("idem"), 2)) as [TestNode, TestNode];
    const alice = await token("alice");
    const dir = mkdtempSync(join(tmpdir(), "idem-"));
    const body = ledgerJob(dir, "once");

    const first = await post(a, alice, body, "key-1");
    expect(first.status).toBe(201);
    await waitStatus(a, alice, first.body.id, "Finished");
    const again = await post(b, alice, body, "key-1");
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ id: first.body.id, status: "Finished", exitCode: 0 });
    // The same body with its fields in another order is the same request.
    const reordered = await post(a, alice, { name: body.name, command: body.command }, "key-1");
    expect(reordered).toMatchObject({ status: 200, body: { id: first.body.id } });

    const other = await post(b, alice, ledgerJob(dir, "other"), "key-1");
    expect(other.status).toBe(409);
    expect(other.body).toMatchObject({ code: 2, name: "InvalidRequest" });
    expect(other.body.message).toContain('Idempotency-Key "key-1"');
    expect(other.body.message).toContain(first.body.id);

    // Bob's key-1 is his own.
    const bob = await token("bob");
    const bobs = await post(a, bob, ledgerJob(dir, "bob"), "key-1");
    expect(bobs.status).toBe(201);
    expect(bobs.body.id).not.toBe(first.body.id);
    await waitStatus(a, bob, bobs.body.id, "Finished");

    expect((await listJobs(a, alice)).map((j) => j.id)).toEqual([first.body.id]);
    expect(ledger(dir).sort()).toEqual(["bob", "once"]);
  }, 60_000);

  it("many submissions with one key at once, through both nodes: one job, one 201", async () => {
    const [a, b] = (await startNodes(uniquePrefix("idem-race"), 2)) as [TestNode, TestNode];
    const tok = await token("carol");
    const dir = mkdtempSync(join(tmpdir(), "idem-race-"));
    const body = ledgerJob(dir, "raced");
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => post(i % 2 ? a : b, tok, body, "same-key")),
    );
    expect(answers.filter((r) => r.status === 201)).toHaveLength(1);
    expect(answers.filter((r) => r.status === 200)).toHaveLength(19);
    expect(new Set(answers.map((r) => r.body.id)).size).toBe(1);
    await waitStatus(a, tok, answers[0]!.body.id, "Finished");
    await sleep(200);
    expect(ledger(dir)).toEqual(["raced"]);
  }, 60_000);

  it("a key outlives a Redis restart (AOF)", async () => {
    const server = await startRedis({ persistence: true });
    servers.push(server);
    const [n] = (await startNodes(uniquePrefix("idem-redis"), 1, {
      redisUrl: server.url,
      offlineAfterMs: 1_000,
      lostAfterMs: 3_000,
    })) as [TestNode];
    const tok = await token("dora");
    const dir = mkdtempSync(join(tmpdir(), "idem-redis-"));
    const first = await post(n, tok, ledgerJob(dir, "survivor"), "restart-key");
    expect(first.status).toBe(201);
    await waitStatus(n, tok, first.body.id, "Finished");
    await server.stop();
    await server.restart();
    await until(async () => (await fetch(`${n.url}/readyz`)).status === 200, { timeoutMs: 15_000 });
    const again = await post(n, tok, ledgerJob(dir, "survivor"), "restart-key");
    expect(again).toMatchObject({ status: 200, body: { id: first.body.id } });
    expect(ledger(dir)).toEqual(["survivor"]);
  }, 60_000);

  it("a bad key is a 400 naming the header, and no job is made", async () => {
    const [n] = (await startNodes(uniquePrefix("idem-bad"), 1)) as [TestNode];
    const tok = await token("erin");
    for (const key of ["has space", "x".repeat(256), "tab\there"]) {
      const r = await post(n, tok, { command: "true" }, key);
      expect(r.status).toBe(400);
      expect(r.body.message).toContain("Idempotency-Key");
    }
    expect(await listJobs(n, tok)).toEqual([]);
  });
});

describe("the CLI's submissions", () => {
  it("carry a key and are retried while no node answers: one job once a node is up", async () => {
    const port = await freePort();
    const tok = await token("fay");
    const dir = mkdtempSync(join(tmpdir(), "idem-cli-"));
    // Nothing listens on the port yet: the CLI retries with the same key until a node does.
    const submitted = runCli(
      [
        "jobs",
        "submit",
        "--command",
        `echo cli >> ${join(dir, "ledger")}`,
        "--url",
        `http://127.0.0.1:${port}`,
      ],
      { LAUNCHER_TOKEN: tok },
      30_000,
    );
    await sleep(600);
    const [n] = (await startNodes(uniquePrefix("idem-cli"), 1, { port })) as [TestNode];
    const r = await submitted;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/cannot reach http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED; retrying in \d+ ms/);
    const job = JSON.parse(r.stdout) as JobBody;
    await waitStatus(n, tok, job.id, "Finished");
    expect((await listJobs(n, tok)).map((j) => j.id)).toEqual([job.id]);
    expect(ledger(dir)).toEqual(["cli"]);
  }, 60_000);
});
