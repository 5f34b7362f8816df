// The shipped Redis ACL (ops/redis-acl.sh) on a real redis-server. Nodes logged in as the fleet's
// user run every kind of Redis work through HTTP (submit, status streams across nodes, output,
// control, listings, nodes, metrics, a lost node settled by a peer, expiry) and Redis refuses them
// nothing: its ACL LOG stays empty. The same user cannot reach keys or channels outside the
// fleet's prefix, nor run server-wide commands, and the default user is off.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SCRIPTS } from "../../src/cluster/scripts.js";
import { REPO_ROOT } from "../../src/topology/index.js";
import { closeAll, killGroup, waitAllOnline } from "../fleet/helpers.js";
import { api, readStream, startTestNode, type TestNode, token, until } from "../helpers/nodes.js";
import { ACL_SCRIPT, aclRedisUrl, type FleetAcl, fleetAcl, writeAclFile } from "../helpers/redis-acl.js";
import { type RedisServer, removeRedisDir, startRedis } from "../helpers/redis-server.js";

/** The shipped default prefix: this file has a Redis of its own. */
const PREFIX = "launcher";
/** Liveness loose enough for a busy machine, short enough to see a lost node settled. */
const TIMINGS = { offlineAfterMs: 3_000, lostAfterMs: 6_000 } as const;

let server: RedisServer;
let acl: FleetAcl;
let url: string;
let admin: Redis;
const nodes: TestNode[] = [];
const pids: number[] = [];
const dir = mkdtempSync(join(tmpdir(), "redis-acl-"));

beforeAll(async () => {
  acl = fleetAcl(PREFIX, { replication: true, sentinel: true });
  server = await startRedis({ aclFile: writeAclFile(acl, dir) });
  url = aclRedisUrl(acl, "127.0.0.1", server.port);
  admin = new Redis({ port: server.port, username: "admin", password: acl.passwords.admin });
});

afterAll(async () => {
  for (const pid of pids) killGroup(pid);
  await closeAll(nodes.splice(0));
  admin?.disconnect();
  if (server) {
    await server.stop();
    removeRedisDir(server);
  }
  rmSync(dir, { recursive: true, force: true });
});

/** How Redis 7 refuses: NOPERM for a command, and this wording for a redis.call() inside a script. */
const DENIED = /NOPERM|The user executing the script can't/;
const refused = (p: Promise<unknown>) => expect(p).rejects.toThrow(DENIED);

/** A client logged in as the fleet's user, failing at once instead of retrying. */
function fleetClient(): Redis {
  const r = new Redis(url, { maxRetriesPerRequest: 0, enableOfflineQueue: true });
  r.on("error", () => undefined);
  return r;
}

async function startNode(overrides: Parameters<typeof startTestNode>[1] = {}): Promise<TestNode> {
  const n = await startTestNode(PREFIX, { redisUrl: url, ...TIMINGS, ...overrides });
  nodes.push(n);
  return n;
}

describe("ops/redis-acl.sh", () => {
  it("writes hashed passwords only, turns the default user off and grants no blanket access", async () => {
    for (const pw of Object.values(acl.passwords)) expect(acl.text).not.toContain(pw);
    const line = acl.text.split("\n").find((l) => l.startsWith("user launcher "))!;
    expect(line).toMatch(/ resetkeys ~launcher:\* resetchannels &launcher:\* -@all \+/);
    for (const broad of ["+@", "allcommands", "allkeys", "allchannels", "~*", "&*", "nopass"]) {
      expect(line).not.toContain(broad);
    }
    expect(acl.commands).not.toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^(flushall|flushdb|config|keys|debug|scan|acl|shutdown)/),
      ]),
    );
    // What the server made of it.
    const users = (await admin.call("ACL", "LIST")) as string[];
    // Off (no login), with its permissions kept for the AOF replay (see the restart test below).
    expect(users).toContain("user default off ~* &* +@all");
    const loaded = users.find((u) => u.startsWith("user launcher "))!;
    expect(loaded).toMatch(/ ~launcher:\* resetchannels &launcher:\* -@all /);
    expect(new Set(loaded.split(" ").filter((w) => w.startsWith("+")))).toEqual(
      new Set(acl.commands.map((c) => `+${c}`)),
    );
  });

  it("allows every command the nodes' code sends (Lua scripts and ioredis calls)", () => {
    const clusterDir = join(REPO_ROOT, "src", "cluster");
    const used = new Set<string>(["evalsha", "eval"]); // defineCommand scripts
    for (const f of readdirSync(join(clusterDir, "lua"))) {
      const lua = readFileSync(join(clusterDir, "lua", f), "utf8");
      for (const m of lua.matchAll(/redis\.(?:p?call)\(\s*'([A-Za-z]+)'/g)) used.add(m[1]!.toLowerCase());
    }
    // ioredis calls on the command, subscriber and pipeline objects (methods that are not commands aside).
    const notCommands = new Set([
      "on",
      "once",
      "off",
      "connect",
      "disconnect",
      "defineCommand",
      "pipeline",
      "exec",
    ]);
    // The scripts' own commands (createJob, heartbeat, …) send EVALSHA, counted above.
    for (const name of Object.keys(SCRIPTS)) notCommands.add(name);
    for (const f of readdirSync(clusterDir).filter((x) => x.endsWith(".ts"))) {
      const ts = readFileSync(join(clusterDir, f), "utf8");
      for (const m of ts.matchAll(/\b(?:redis|sub|pipe)\.([a-z]+)\(/g)) {
        if (!notCommands.has(m[1]!)) used.add(m[1]!);
      }
    }
    expect(used.size).toBeGreaterThan(20);
    const missing = [...used].filter((c) => !acl.commands.includes(c));
    expect(missing, "commands the code sends that ops/redis-acl.sh does not allow").toEqual([]);
    // Only src/cluster talks to Redis, so the scan above sees every command.
    const importers = execFileSync(
      "grep",
      ["-rl", "--include=*.ts", 'from "ioredis"', join(REPO_ROOT, "src")],
      {
        encoding: "utf8",
      },
    )
      .split("\n")
      .filter(Boolean)
      .map((p) => p.slice(REPO_ROOT.length));
    expect(importers.filter((p) => !p.startsWith("src/cluster/"))).toEqual([]);
  });

  it("refuses a prefix that is not a plain glob, and missing passwords", () => {
    const run = (args: string[], env: Record<string, string>) => {
      try {
        execFileSync("sh", [ACL_SCRIPT, ...args], { env: { PATH: process.env.PATH, ...env }, stdio: "pipe" });
        return "";
      } catch (err) {
        return String((err as { stderr: Buffer }).stderr);
      }
    };
    const pws = { REDIS_LAUNCHER_PASSWORD: "a".repeat(32), REDIS_ADMIN_PASSWORD: "b".repeat(32) };
    expect(run(["prod*"], pws)).toContain("PREFIX must be");
    expect(run(["prod", "admin"], pws)).toContain("one of the users");
    expect(run(["prod"], { REDIS_ADMIN_PASSWORD: "x" })).toContain("REDIS_LAUNCHER_PASSWORD is not set");
    expect(run(["prod"], { REDIS_LAUNCHER_PASSWORD: "x" })).toContain("REDIS_ADMIN_PASSWORD is not set");
  });
});

describe("nodes logged in as the fleet's user", () => {
  it("run job lifecycles through HTTP, and Redis refuses them nothing", async () => {
    const a = await startNode();
    const b = await startNode();
    await waitAllOnline([a.url, b.url], [a.settings.nodeId, b.settings.nodeId], 20_000);
    const [alice, ops] = await Promise.all([token("alice"), token("ops", { admin: true })]);

    // Submit on A; B streams its statuses (the status bus: pub/sub and the event stream) and
    // forwards its output to A.
    const done = await api(a.url, "POST", "/jobs", {
      token: alice,
      body: { command: "echo acl-out; echo acl-err >&2; exit 3", name: "acl" },
    });
    expect(done.status).toBe(201);
    const doneId = done.body.id as string;
    const statuses = await readStream<{ status: string }>(b.url, `/jobs/${doneId}/status`, {
      token: alice,
      timeoutMs: 20_000,
    });
    expect(statuses.messages.at(-1)?.status).toBe("Finished");
    expect((await api(b.url, "GET", `/jobs/${doneId}`, { token: alice })).body).toMatchObject({
      status: "Finished",
      exitCode: 3,
    });
    const out = await readStream<{ output?: string; complete?: boolean }>(b.url, `/jobs/${doneId}/output`, {
      token: alice,
      timeoutMs: 20_000,
    });
    expect(out.messages.map((m) => m.output ?? "").join("")).toContain("acl-out\n");

    // Control through B: suspend, resume, stop (update_job with a required status).
    const sleeper = await api(a.url, "POST", "/jobs", { token: alice, body: { command: "sleep 30" } });
    const sleeperId = sleeper.body.id as string;
    const runningJob = await until(
      async () => {
        const j = await api(b.url, "GET", `/jobs/${sleeperId}`, { token: alice });
        return j.body.status === "Running" ? j.body : undefined;
      },
      { timeoutMs: 20_000 },
    );
    pids.push(runningJob.pid as number);
    for (const [operation, status] of [
      ["suspend", "Suspended"],
      ["resume", "Running"],
      ["stop", "Finished"],
    ] as const) {
      const r = await api(b.url, "POST", `/jobs/${sleeperId}/control`, { token: alice, body: { operation } });
      expect(r.status, `${operation}: ${JSON.stringify(r.body)}`).toBe(200);
      await until(
        async () => (await api(b.url, "GET", `/jobs/${sleeperId}`, { token: alice })).body.status === status,
        {
          timeoutMs: 20_000,
        },
      );
    }

    // Listings (one user's index, everyone's), nodes, status, metrics (summaries in a pipeline).
    const mine = await api<{ jobs: { id: string }[] }>(b.url, "GET", "/jobs", { token: alice });
    expect(mine.body.jobs.map((j) => j.id)).toEqual(expect.arrayContaining([doneId, sleeperId]));
    const everyone = await api<{ jobs: { id: string }[] }>(a.url, "GET", "/jobs?user=*", { token: ops });
    expect(everyone.body.jobs.map((j) => j.id)).toEqual(expect.arrayContaining([doneId, sleeperId]));
    const listed = await api<{ nodes: { id: string; online: boolean }[] }>(a.url, "GET", "/nodes", {
      token: ops,
    });
    expect(
      listed.body.nodes
        .filter((n) => n.online)
        .map((n) => n.id)
        .sort(),
    ).toEqual([a.settings.nodeId, b.settings.nodeId].sort());
    expect((await api(b.url, "GET", "/status", { token: ops })).body).toMatchObject({
      redis: { connected: true },
    });
    const metrics = await fetch(new URL("/metrics", a.url));
    expect(await metrics.text()).toMatch(/launcher_jobs\{status="Finished"\} 2/);

    // B leaves with a job running: A settles it (settle_lost builds the job keys in Lua).
    const orphan = await api(b.url, "POST", "/jobs", { token: alice, body: { command: "sleep 60" } });
    const orphanId = orphan.body.id as string;
    const orphanRunning = await until(
      async () => {
        const j = await api(a.url, "GET", `/jobs/${orphanId}`, { token: alice });
        return j.body.status === "Running" ? j.body : undefined;
      },
      { timeoutMs: 20_000 },
    );
    pids.push(orphanRunning.pid as number);
    await b.close();
    const settled = await until(
      async () => {
        const j = await api(a.url, "GET", `/jobs/${orphanId}`, { token: alice });
        return j.body.status === "Failed" ? j.body : undefined;
      },
      { timeoutMs: 30_000 },
    );
    expect(settled.statusMessage).toContain(`Node ${b.settings.nodeId} was lost`);
    killGroup(orphanRunning.pid as number);

    // Expiry: a node with a short expiry removes its finished job (expire_jobs builds the user
    // index and node keys in Lua).
    const c = await startNode({ jobExpiryHours: 0.0003 });
    const short = await api(c.url, "POST", "/jobs", { token: alice, body: { command: "true" } });
    const shortId = short.body.id as string;
    await until(async () => (await api(c.url, "GET", `/jobs/${shortId}`, { token: alice })).status === 404, {
      timeoutMs: 20_000,
    });
    expect(await admin.zscore(`${PREFIX}:jobs:user:alice`, shortId)).toBeNull();
    expect(await admin.exists(`${PREFIX}:job:${shortId}`)).toBe(0);

    await closeAll(nodes.splice(0));
    // Every command, key and channel the nodes used was allowed: Redis logged no refusal.
    expect(await admin.call("ACL", "LOG")).toEqual([]);
    // And they worked on the fleet's keys only.
    const keys = (await admin.keys("*")).sort();
    expect(keys.length).toBeGreaterThan(5);
    expect(keys.filter((k) => !k.startsWith(`${PREFIX}:`))).toEqual([]);
  });
});

describe("a Redis restart with the ACL", () => {
  it("replays the scripts' writes from the AOF: acknowledged jobs survive (redis/redis#14541)", async () => {
    // Redis replays the AOF's MULTI/EXEC blocks (every script's writes) as the default user and
    // checks them against its permissions: an ACL that took them away lost every job at restart.
    const own = mkdtempSync(join(dir, "aof-"));
    const persistent = await startRedis({ persistence: true, aclFile: writeAclFile(acl, own) });
    const login = { port: persistent.port, username: "admin", password: acl.passwords.admin };
    const check = new Redis({ ...login, maxRetriesPerRequest: 0 });
    check.on("error", () => undefined);
    try {
      const n = await startTestNode(PREFIX, { redisUrl: aclRedisUrl(acl, "127.0.0.1", persistent.port) });
      const alice = await token("alice");
      let id: string;
      try {
        const created = await api(n.url, "POST", "/jobs", { token: alice, body: { command: "exit 7" } });
        id = created.body.id as string;
        await until(
          async () => (await api(n.url, "GET", `/jobs/${id}`, { token: alice })).body.status === "Finished",
          {
            timeoutMs: 20_000,
          },
        );
      } finally {
        await n.close();
      }
      const before = await check.hgetall(`${PREFIX}:job:${id}`);
      const events = await check.xlen(`${PREFIX}:events`);
      check.disconnect();
      await persistent.restart();
      const after = new Redis({ ...login, maxRetriesPerRequest: 0 });
      try {
        expect(await after.hgetall(`${PREFIX}:job:${id}`)).toEqual(before);
        expect(before).toMatchObject({ status: "Finished", exitCode: "7" });
        expect(await after.xlen(`${PREFIX}:events`)).toBe(events);
        expect(await after.zscore(`${PREFIX}:jobs:user:alice`, id)).not.toBeNull();
        // Nothing was refused while replaying (the failover suite saw `default refused 'hset' (multi)`).
        expect(await after.call("ACL", "LOG")).toEqual([]);
      } finally {
        after.disconnect();
      }
    } finally {
      check.disconnect();
      await persistent.stop();
      removeRedisDir(persistent);
    }
  });
});

describe("the fleet's user, outside its prefix", () => {
  let r: Redis;
  beforeAll(async () => {
    r = fleetClient();
    await admin.set("other:secret", "kept");
  });
  afterAll(() => r?.disconnect());

  it("can neither read nor write a key outside <prefix>:*, not even from a script", async () => {
    await refused(r.get("other:secret"));
    await refused(r.set("other:secret", "changed"));
    await refused(r.hgetall("other:hash"));
    await refused(r.del("other:secret"));
    // The colon counts: another fleet's prefix that merely starts the same is out of reach.
    await refused(r.get(`${PREFIX}x:events:last`));
    await refused(r.eval("return redis.call('GET', KEYS[1])", 1, "other:secret"));
    // A key name built inside Lua is checked too (as expire_jobs.lua and settle_lost.lua build theirs from prefixes keys.ts passes in).
    await refused(r.eval("return redis.call('SET', 'other:' .. 'secret', 'changed')", 0));
    expect(await admin.get("other:secret")).toBe("kept");
    // Inside the prefix the same commands work.
    expect(await r.set(`${PREFIX}:acl-probe`, "1")).toBe("OK");
    expect(await r.eval("return redis.call('GET', KEYS[1])", 1, `${PREFIX}:acl-probe`)).toBe("1");
    expect(await r.del(`${PREFIX}:acl-probe`)).toBe(1);
  });

  it("can neither publish nor subscribe outside &<prefix>:*", async () => {
    await refused(r.publish("other:ch", "x"));
    await refused(r.eval("return redis.call('PUBLISH', 'other:ch', 'x')", 0));
    const sub = fleetClient();
    try {
      await refused(sub.subscribe("other:ch"));
      await refused(sub.psubscribe(`${PREFIX}:*`));
      expect(await sub.subscribe(`${PREFIX}:nodes:ch`)).toBe(1);
    } finally {
      sub.disconnect();
    }
    expect(await r.publish(`${PREFIX}:acl-probe:ch`, "x")).toBe(0);
  });

  it("cannot run server-wide or dangerous commands", async () => {
    const dangerous: (string | number)[][] = [
      ["FLUSHALL"],
      ["FLUSHDB"],
      ["CONFIG", "GET", "dir"],
      ["CONFIG", "SET", "appendonly", "no"],
      ["KEYS", "*"],
      ["SCAN", 0],
      ["DEBUG", "SLEEP", 0],
      ["SHUTDOWN", "NOSAVE"],
      ["ACL", "LIST"],
      ["ACL", "SETUSER", "launcher", "+@all"],
      ["CLIENT", "LIST"],
      ["CLIENT", "KILL", "TYPE", "normal"],
      ["SCRIPT", "FLUSH"],
      ["FUNCTION", "FLUSH"],
      ["MODULE", "LIST"],
      ["BGSAVE"],
      ["REPLICAOF", "NO", "ONE"],
      ["MONITOR"],
      ["SWAPDB", 0, 1],
      ["DBSIZE"],
    ];
    for (const [cmd, ...args] of dangerous) {
      const what = [cmd, ...args].join(" ");
      // The ACL's verdict alone (DEBUG and MODULE are also shut by enable-*-command), then the real call.
      expect(await admin.call("ACL", "DRYRUN", "launcher", String(cmd), ...args), what).toMatch(
        /^This user has no permissions to run the '[a-z|]+' command$/,
      );
      await expect(r.call(String(cmd), ...args), what).rejects.toThrow();
    }
    // From a script (FLUSHALL and CONFIG are not even allowed in scripts; these are).
    await refused(r.eval("return redis.call('KEYS', '*')", 0));
    await refused(r.eval("return redis.call('DBSIZE')", 0));
    expect(await admin.get("other:secret")).toBe("kept");
    expect(await admin.config("GET", "appendonly")).toEqual(["appendonly", "no"]);
  });

  it("the default user is off: without logging in, nothing runs", async () => {
    const replies = await rawExchange(
      server.port,
      "PING\r\nGET launcher:events:last\r\nAUTH launcher wrong\r\n",
    );
    expect(replies).toMatch(/^-NOAUTH.*\r\n-NOAUTH.*\r\n-WRONGPASS/s);
  });

  it("Redis logged each refusal, with the fleet's user and what it tried", async () => {
    const log = (await admin.call("ACL", "LOG", "128")) as unknown[][];
    const entries = log.map((flat) => {
      const e: Record<string, unknown> = {};
      for (let i = 0; i < flat.length; i += 2) e[String(flat[i])] = flat[i + 1];
      return e;
    });
    expect(entries.length).toBeGreaterThan(10);
    expect(new Set(entries.map((e) => e.username))).toEqual(new Set(["launcher"]));
    // "auth": the wrong password above.
    expect(new Set(entries.map((e) => e.reason))).toEqual(new Set(["command", "key", "channel", "auth"]));
  });
});

/** Sends raw RESP lines on a fresh connection and returns everything answered within 1 s. */
function rawExchange(port: number, lines: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = "";
    const sock = net.connect(port, "127.0.0.1", () => sock.write(lines));
    sock.on("data", (d) => {
      got += d.toString();
    });
    sock.on("error", reject);
    setTimeout(() => {
      sock.destroy();
      resolve(got);
    }, 1_000);
  });
}
