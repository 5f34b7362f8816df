// What `npm run fleet` watches (issue 15): a crashed node is reported and started again, its private
// Redis too when it dies (and reported when it stops answering), a node drained through the API is reported and left stopped, and the
// fleet's secret is kept in <scratch>/fleet/auth-secret (0600), so a token minted before a restart
// of the fleet still works after it.
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findFreePortRange, type LocalFleet, startLocalFleet } from "../../src/topology/index.js";
import { restartDelayMs } from "../../src/topology/local-fleet.js";
import { until } from "../helpers/nodes.js";
import { uniquePrefix } from "../helpers/redis.js";
import { ensureBuilt } from "./ensure-built.js";

let scratch: string;
let basePort: number;
const prefix = uniquePrefix("supervise");
const logs: string[] = [];
let fleet: LocalFleet | undefined;

const start = () =>
  startLocalFleet({
    nodes: 1,
    basePort,
    scratchPath: scratch,
    haproxy: false,
    supervise: true,
    persistSecret: true,
    env: { LAUNCHER_KEY_PREFIX: prefix, LAUNCHER_DRAIN_MS: "200", LAUNCHER_LOG_LEVEL: "warn" },
    log: (line) => logs.push(line),
  });

async function nodesAnswer(url: string, token: string): Promise<number> {
  try {
    const res = await fetch(`${url}/nodes`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(2_000),
    });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

const logged = (pattern: RegExp) => until(() => logs.some((l) => pattern.test(l)), { timeoutMs: 30_000 });

beforeAll(async () => {
  await ensureBuilt();
  scratch = mkdtempSync(join(tmpdir(), "launcher-supervise-"));
  basePort = await findFreePortRange(1);
  fleet = await start();
}, 120_000);

afterAll(async () => {
  await fleet?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
}, 60_000);

describe("npm run fleet's supervision", () => {
  it("the back-off doubles from 1 s to at most 30 s", () => {
    expect([0, 1, 2, 3, 4, 5, 6, 10].map(restartDelayMs)).toEqual([
      1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000,
    ]);
  });

  it("keeps its secret in a 0600 file and says where", () => {
    const file = join(scratch, "fleet", "auth-secret");
    expect(fleet!.secretFile).toEqual({ path: file, created: true });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, "utf8").trim()).toBe(fleet!.secret);
    expect(logs).toContain(`secret: new, saved in ${file} (mode 0600)`);
  });

  it("a crashed node is reported and started again; so is a dead Redis", async () => {
    const f = fleet!;
    const token = await f.adminToken("1h");
    const node = f.nodes[0]!;
    const before = node.pid!;
    process.kill(before, "SIGKILL");
    await logged(
      /^\*\*\* node-1: crashed \(signal SIGKILL\); restarting it in 1 s \(restart 1 in a row; log: /,
    );
    await until(() => node.pid !== undefined && node.pid !== before, { timeoutMs: 30_000 });
    await until(async () => (await nodesAnswer(node.url, token)) === 200, { timeoutMs: 30_000 });

    const redisPid = f.redisPid!;
    expect(redisPid).toBeGreaterThan(0);
    process.kill(redisPid, "SIGKILL");
    await logged(/^\*\*\* redis: redis-server on port \d+ DIED .*starting it again/);
    await logged(/^redis: redis-server is back on port \d+$/);
    expect(f.redisPid).not.toBe(redisPid);
    await until(async () => (await nodesAnswer(node.url, token)) === 200, { timeoutMs: 30_000 });

    // A Redis that is there but does not answer is reported too (and not restarted).
    const frozen = f.redisPid!;
    process.kill(frozen, "SIGSTOP");
    try {
      await logged(/^\*\*\* redis: redis-server on port \d+ does not answer PING/);
    } finally {
      process.kill(frozen, "SIGCONT");
    }
    await logged(/^redis: redis-server on port \d+ answers again$/);
    expect(f.redisPid).toBe(frozen);
  }, 90_000);

  it("a node drained through the API exits 0 and is left stopped; the next start reuses the secret", async () => {
    const f = fleet!;
    const token = await f.adminToken("1h");
    const node = f.nodes[0]!;
    const res = await fetch(`${node.url}/nodes/node-1/drain`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
    });
    expect(res.status).toBe(202);
    await logged(/^\*\*\* node-1: exited \(exit code 0, drained\): not restarted/);
    expect(node.pid).toBeUndefined();
    await f.stop();
    fleet = undefined;

    const secret = f.secret;
    fleet = await start();
    expect(fleet.secret).toBe(secret);
    expect(fleet.secretFile?.created).toBe(false);
    expect(logs).toContain(`secret: the one kept in ${join(scratch, "fleet", "auth-secret")} (mode 0600)`);
    // Yesterday's token still works.
    await until(async () => (await nodesAnswer(fleet!.nodes[0]!.url, token)) === 200, { timeoutMs: 30_000 });
  }, 90_000);
});
