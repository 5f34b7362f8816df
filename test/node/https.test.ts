// An HTTPS fleet: nodes with LAUNCHER_TLS_CERT_FILE/KEY_FILE serve HTTPS and forward owner-only
// requests to peers over HTTPS, verifying them against LAUNCHER_TLS_CA_FILE; a node that trusts
// another CA cannot reach the owner (503 code 4). Certificates come from the openssl CLI.

import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { Agent, fetch as undiciFetch } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobOperation } from "../../src/api/index.js";
import { SERVED_BY_HEADER, signToken } from "../../src/http/index.js";
import { OwnerClient } from "../../src/plugin/owner-client.js";
import { runCli } from "../helpers/cli.js";
import { ADMIN_GROUP, startTestNode, TEST_SECRET, type TestNode, token, until } from "../helpers/nodes.js";
import { uniquePrefix } from "../helpers/redis.js";

const dir = mkdtempSync(join(tmpdir(), "launcher-tls-"));

function openssl(...args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

/** A CA (its cert and key files), named `name`. */
function makeCa(name: string): { cert: string; key: string } {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl(
    "req",
    "-x509",
    ...ec,
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.crt`,
    "-days",
    "2",
    "-subj",
    `/CN=${name}`,
  );
  return { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
}

/** A server certificate for IP 127.0.0.1 signed by `ca`. */
function makeServerCert(name: string, ca: { cert: string; key: string }): { cert: string; key: string } {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl("req", ...ec, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`);
  writeFileSync(
    join(dir, `${name}.ext`),
    "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
  );
  openssl(
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    ca.cert,
    "-CAkey",
    ca.key,
    "-CAcreateserial",
    "-out",
    `${name}.crt`,
    "-days",
    "2",
    "-extfile",
    `${name}.ext`,
  );
  return { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
}

/** The fleet checks tokens' issuer, so the plugin's owner client must sign with it too. */
const ISSUER = "https-fleet-issuer";
let ca: { cert: string; key: string };
let a: TestNode;
let b: TestNode;
let stranger: TestNode;
let client: Agent;
let alice: string;
let admin: string;

interface Reply<T> {
  status: number;
  headers: Headers;
  body: T;
}

/** One request over HTTPS, trusting the test CA. */
async function call<T = Record<string, unknown>>(
  base: string,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown } = {},
): Promise<Reply<T>> {
  const res = await undiciFetch(new URL(path, base), {
    method,
    dispatcher: client,
    headers: {
      ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
      ...(opts.body !== undefined ? { "content-type": "application/json" } : {}),
    },
    ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {}
  return { status: res.status, headers: res.headers as unknown as Headers, body: body as T };
}

async function runningJob(on: TestNode, command: string): Promise<string> {
  const created = await call<{ id: string }>(on.url, "POST", "/jobs", { token: alice, body: { command } });
  expect(created.status).toBe(201);
  const id = created.body.id;
  await until(
    async () =>
      (await call<{ status: string }>(on.url, "GET", `/jobs/${id}`, { token: alice })).body.status ===
      "Running",
  );
  return id;
}

beforeAll(async () => {
  ca = makeCa("fleet-ca");
  const otherCa = makeCa("other-ca");
  const prefix = uniquePrefix("https");
  const tls = (name: string, caFile: string) => {
    const c = makeServerCert(name, ca);
    return { tlsCertFile: c.cert, tlsKeyFile: c.key, tlsCaFile: caFile, authIssuer: ISSUER };
  };
  [a, b, stranger] = await Promise.all([
    startTestNode(prefix, tls("node-a", ca.cert)),
    startTestNode(prefix, tls("node-b", ca.cert)),
    // Serves with a certificate of the fleet's CA, but trusts only another CA.
    startTestNode(prefix, tls("node-c", otherCa.cert)),
  ]);
  client = new Agent({ connect: { ca: readFileSync(ca.cert) } });
  [alice, admin] = await Promise.all([
    signToken(TEST_SECRET, { user: "alice", issuer: ISSUER }),
    signToken(TEST_SECRET, { user: "boss", groups: [ADMIN_GROUP], issuer: ISSUER }),
  ]);
  // The fleet checks the issuer: the usual test tokens have none.
  expect((await call(a.url, "GET", "/jobs", { token: await token("alice") })).status).toBe(401);
  // Every node sees the others online.
  await until(async () => {
    const nodes = await call<{ nodes: { id: string; status: string }[] }>(b.url, "GET", "/nodes", {
      token: admin,
    });
    return nodes.body.nodes.filter((n) => n.status === "Online").length >= 3;
  });
});

afterAll(async () => {
  for (const n of [a, b, stranger]) {
    if (!n) continue;
    const jobs = await call<{ jobs: { id: string; status: string }[] }>(
      n.url,
      "GET",
      "/jobs?statuses=Running",
      {
        token: admin,
      },
    ).catch(() => undefined);
    for (const j of jobs?.body.jobs ?? []) {
      await call(n.url, "POST", `/jobs/${j.id}/control`, { token: admin, body: { operation: "kill" } }).catch(
        () => undefined,
      );
    }
  }
  await Promise.all([a, b, stranger].filter(Boolean).map((n) => n.close()));
  await client?.close();
});

describe("an HTTPS fleet", () => {
  it("nodes advertise https URLs and do not speak plain HTTP", async () => {
    for (const n of [a, b, stranger]) expect(n.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    // /healthz: served whenever the process serves HTTP (readiness also needs a fresh heartbeat,
    // which the fast test timings can miss on a loaded machine).
    expect((await call(a.url, "GET", "/healthz")).status).toBe(200);
    const plain = a.url.replace(/^https:/, "http:");
    await expect(fetch(`${plain}/healthz`, { signal: AbortSignal.timeout(5_000) })).rejects.toThrow();
    // Without the CA, the node's certificate is not trusted.
    await expect(fetch(`${a.url}/healthz`)).rejects.toThrow();
  });

  it("forwards control and output to the owner over HTTPS", async () => {
    const id = await runningJob(a, "echo over-tls; sleep 30");
    const killed = await call<{ status?: string }>(b.url, "POST", `/jobs/${id}/control`, {
      token: alice,
      body: { operation: "kill" },
    });
    expect(killed.status).toBe(200);
    expect(killed.headers.get(SERVED_BY_HEADER)).toBe(a.settings.nodeId);
    await until(
      async () =>
        (await call<{ status: string }>(b.url, "GET", `/jobs/${id}`, { token: alice })).body.status ===
        "Killed",
    );

    const output = await call<string>(b.url, "GET", `/jobs/${id}/output`, { token: alice });
    expect(output.status).toBe(200);
    expect(output.headers.get(SERVED_BY_HEADER)).toBe(a.settings.nodeId);
    const lines = String(output.body)
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { output?: string; complete?: boolean });
    expect(lines.map((l) => l.output ?? "").join("")).toBe("over-tls\n");
    expect(lines.at(-1)).toMatchObject({ complete: true });
  });

  it("a node that does not trust the owner's certificate answers 503 code 4, saying why", async () => {
    const id = await runningJob(a, "sleep 30");
    const res = await call<{ code: number; name: string; message: string }>(
      stranger.url,
      "POST",
      `/jobs/${id}/control`,
      { token: alice, body: { operation: "kill" } },
    );
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ code: 4 });
    expect(res.body.message).toMatch(
      new RegExp(
        `Job ${id} is owned by node ${a.settings.nodeId}, which presented a certificate this node does not trust`,
      ),
    );
    // The job was not touched; the owner itself still answers.
    expect((await call<{ status: string }>(a.url, "GET", `/jobs/${id}`, { token: alice })).body.status).toBe(
      "Running",
    );
    expect(
      (await call(a.url, "POST", `/jobs/${id}/control`, { token: alice, body: { operation: "kill" } }))
        .status,
    ).toBe(200);
  });

  it("the plugin's owner client reaches owners over HTTPS too, for an admin `*` caller", async () => {
    const id = await runningJob(a, "sleep 30");
    const owners = new OwnerClient(
      {
        nodeId: "plugin-node",
        authSecret: TEST_SECRET,
        authDisabled: false,
        adminGroup: ADMIN_GROUP,
        peerTimeoutMs: 3_000,
        tlsCaFile: ca.cert,
        authIssuer: ISSUER,
        authAudience: undefined,
      },
      pino({ level: "silent" }),
    );
    try {
      const location = { owner: a.settings.nodeId, baseUrl: a.url };
      const star = { user: "*", groups: [ADMIN_GROUP], admin: true };
      const network = await owners.network(star, location, id);
      expect(network).toHaveProperty("host");
      const result = await owners.control(star, location, id, JobOperation.Kill);
      expect(result).toBeDefined();
      await until(
        async () =>
          (await call<{ status: string }>(a.url, "GET", `/jobs/${id}`, { token: alice })).body.status ===
          "Killed",
      );
    } finally {
      await owners.close();
    }
  });

  it("the CLI reaches an HTTPS node with LAUNCHER_TLS_CA_FILE or NODE_EXTRA_CA_CERTS, and says why not without", async () => {
    const cli = (env: NodeJS.ProcessEnv) =>
      runCli(["nodes", "--url", b.url], { LAUNCHER_TOKEN: admin, ...env });
    for (const env of [{ LAUNCHER_TLS_CA_FILE: ca.cert }, { NODE_EXTRA_CA_CERTS: ca.cert }]) {
      const r = await cli(env);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
      const ids = (JSON.parse(r.stdout) as { nodes: { id: string }[] }).nodes.map((n) => n.id);
      expect(ids).toEqual(expect.arrayContaining([a.settings.nodeId, b.settings.nodeId]));
    }
    const untrusted = await cli({});
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toBe(`cannot reach ${b.url}: UNABLE_TO_VERIFY_LEAF_SIGNATURE\n`);
  });
});
