// Secrets and tokens on real nodes: the 32-byte minimum stops `node dist/cli.js node` (exit 2), the
// _FILE form feeds both the node and `token`, `token --key` signs for a node that holds only a
// public key, issuer/audience are checked, and a `sub: "*"` token lists nothing.
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt } from "../helpers/build.js";
import { runCli, startCliNode } from "../helpers/cli.js";
import { api, startTestNode, TEST_SECRET, type TestNode, token } from "../helpers/nodes.js";
import { redisUrl, uniquePrefix } from "../helpers/redis.js";
import { freePort } from "../helpers/redis-server.js";
import { endAll, listJobs, running } from "./helpers.js";

const cli = runCli;

const dir = mkdtempSync(join(tmpdir(), "launcher-secrets-"));
function file(name: string, content: string | Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, content, { mode: 0o600 });
  return path;
}

/** The JWT's payload, unverified. */
function claims(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split(".")[1]!, "base64url").toString()) as Record<string, unknown>;
}

beforeAll(() => ensureBuilt());

describe("`node dist/cli.js node` refuses a short secret", () => {
  const base = () => ({
    LAUNCHER_REDIS_URL: redisUrl(),
    LAUNCHER_UNPRIVILEGED: "1",
    LAUNCHER_PORT: "0",
    LAUNCHER_SCRATCH_PATH: mkdtempSync(join(tmpdir(), "secrets-node-")),
    LAUNCHER_KEY_PREFIX: uniquePrefix("secrets-short"),
  });

  it("exits 2 before serving, saying how long the secret must be", async () => {
    const r = await cli(["node"], { ...base(), LAUNCHER_AUTH_SECRET: "change-me" });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      "LAUNCHER_AUTH_SECRET must be at least 32 bytes (got 9); generate one with: openssl rand -base64 48\n",
    );
  });

  it("exits 2 for a 31-byte secret from LAUNCHER_AUTH_SECRET_FILE, and for an unreadable file", async () => {
    const short = file("short-secret", `${"x".repeat(31)}\n`);
    const r = await cli(["node"], { ...base(), LAUNCHER_AUTH_SECRET_FILE: short });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^LAUNCHER_AUTH_SECRET \(from LAUNCHER_AUTH_SECRET_FILE\) must be at least 32 bytes \(got 31\)/,
    );
    const missing = await cli(["node"], { ...base(), LAUNCHER_AUTH_SECRET_FILE: join(dir, "nope") });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`LAUNCHER_AUTH_SECRET_FILE: cannot read "${join(dir, "nope")}": ENOENT`);
  });

  it("--auth-secret on the command line is refused the same way", async () => {
    const r = await cli(["node", "--auth-secret", "short"], base());
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/at least 32 bytes \(got 5\)/);
  });
});

describe("LAUNCHER_AUTH_SECRET_FILE", () => {
  it("a node and `token` both read the secret from the file", async () => {
    const secretFile = file("secret", `${TEST_SECRET}-from-a-file\n`);
    const port = await freePort();
    const node = await startCliNode(port, {
      LAUNCHER_REDIS_URL: redisUrl(),
      LAUNCHER_AUTH_SECRET_FILE: secretFile,
      LAUNCHER_UNPRIVILEGED: "1",
      LAUNCHER_HOST: "127.0.0.1",
      LAUNCHER_PORT: String(port),
      LAUNCHER_SCRATCH_PATH: mkdtempSync(join(tmpdir(), "secrets-file-")),
      LAUNCHER_KEY_PREFIX: uniquePrefix("secrets-file"),
      LAUNCHER_LOG_LEVEL: "warn",
    });
    const url = node.url;
    try {
      const minted = await cli(["token", "--user", "alice"], { LAUNCHER_AUTH_SECRET_FILE: secretFile });
      expect({ code: minted.code, stderr: minted.stderr }).toEqual({ code: 0, stderr: "" });
      const jwt = minted.stdout.trim();
      expect((await api(url, "GET", "/jobs", { token: jwt })).status).toBe(200);
      // A token signed with the test's usual secret is not one of this node's.
      expect((await api(url, "GET", "/jobs", { token: await token("alice") })).status).toBe(401);
    } finally {
      await node.stop("SIGTERM");
    }
  });
});

describe("`token`", () => {
  it("--secret works but warns that the secret is visible in ps, suggesting LAUNCHER_AUTH_SECRET_FILE", async () => {
    const r = await cli(["token", "--user", "alice", "--secret", TEST_SECRET]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/--secret is visible to every local user \(ps/);
    expect(r.stderr).toContain("LAUNCHER_AUTH_SECRET_FILE");
    expect(claims(r.stdout.trim())).toMatchObject({ sub: "alice", groups: [] });
    // From the environment: no warning.
    const quiet = await cli(["token", "--user", "alice"], { LAUNCHER_AUTH_SECRET: TEST_SECRET });
    expect({ code: quiet.code, stderr: quiet.stderr }).toEqual({ code: 0, stderr: "" });
  });

  it("exits 2 with a clear message for a short secret, wherever it comes from", async () => {
    const short = file("token-short", "short\n");
    for (const [args, env, message] of [
      [["--secret", "short"], {}, /--secret must be at least 32 bytes \(got 5\)/],
      [[], { LAUNCHER_AUTH_SECRET: "short" }, /LAUNCHER_AUTH_SECRET must be at least 32 bytes \(got 5\)/],
      [
        [],
        { LAUNCHER_AUTH_SECRET_FILE: short },
        /LAUNCHER_AUTH_SECRET \(from LAUNCHER_AUTH_SECRET_FILE\) must be at least 32 bytes \(got 5\)/,
      ],
    ] as const) {
      const r = await cli(["token", "--user", "alice", ...args], env);
      expect(r.code, JSON.stringify(env)).toBe(2);
      expect(r.stdout).toBe("");
      expect(r.stderr).toMatch(message);
    }
  });

  it("exits 2 for a missing secret, a user name a node would refuse, or conflicting sources", async () => {
    const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
      [
        ["--user", "alice"],
        {},
        /set LAUNCHER_AUTH_SECRET or LAUNCHER_AUTH_SECRET_FILE .* or give --key FILE/,
      ],
      [[], { LAUNCHER_AUTH_SECRET: TEST_SECRET }, /--user is required/],
      [
        ["--user", "*"],
        { LAUNCHER_AUTH_SECRET: TEST_SECRET },
        /--user must be a user name .*: it contains "\*"/,
      ],
      [["--user", "a b"], { LAUNCHER_AUTH_SECRET: TEST_SECRET }, /it contains whitespace/],
      [
        ["--user", "alice"],
        { LAUNCHER_AUTH_SECRET: TEST_SECRET, LAUNCHER_AUTH_SECRET_FILE: file("both", TEST_SECRET) },
        /are both set/,
      ],
      [["--user", "alice", "--key", join(dir, "no-key.pem")], {}, /--key: cannot read .*ENOENT/],
      [
        ["--user", "alice", "--key", file("k", "x"), "--secret", TEST_SECRET],
        {},
        /--key and --secret exclude/,
      ],
      [["--user", "alice", "--ttl", "soon"], { LAUNCHER_AUTH_SECRET: TEST_SECRET }, /--ttl "soon"/],
      [["--user", "alice", "--frobnicate"], { LAUNCHER_AUTH_SECRET: TEST_SECRET }, /frobnicate/],
    ];
    for (const [args, env, message] of cases) {
      const r = await cli(["token", ...args], env);
      expect({ args, code: r.code, stdout: r.stdout }).toEqual({ args, code: 2, stdout: "" });
      expect(r.stderr).toMatch(message);
    }
  });

  it("--issuer, --audience, --group and --ttl end up in the token; issuer/audience default from the environment", async () => {
    const r = await cli(
      [
        "token",
        "--user",
        "alice",
        "--group",
        "dev",
        "--group",
        "ops",
        "--ttl",
        "120",
        "--issuer",
        "i",
        "--audience",
        "a",
      ],
      { LAUNCHER_AUTH_SECRET: TEST_SECRET },
    );
    expect(r.code).toBe(0);
    const c = claims(r.stdout.trim());
    expect(c).toMatchObject({ sub: "alice", groups: ["dev", "ops"], iss: "i", aud: "a" });
    expect((c.exp as number) - (c.iat as number)).toBeGreaterThanOrEqual(119);
    expect((c.exp as number) - (c.iat as number)).toBeLessThanOrEqual(120);
    const fromEnv = await cli(["token", "--user", "alice"], {
      LAUNCHER_AUTH_SECRET: TEST_SECRET,
      LAUNCHER_AUTH_ISSUER: "env-i",
      LAUNCHER_AUTH_AUDIENCE: "env-a",
    });
    expect(claims(fromEnv.stdout.trim())).toMatchObject({ iss: "env-i", aud: "env-a" });
  });
});

describe("a node with only LAUNCHER_AUTH_PUBLIC_KEY_FILE", () => {
  const nodes: TestNode[] = [];
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.close()));
  });

  for (const [alg, pair] of [
    ["RS256", () => generateKeyPairSync("rsa", { modulusLength: 2048 })],
    ["ES256", () => generateKeyPairSync("ec", { namedCurve: "P-256" })],
  ] as const) {
    it(`accepts what \`token --key\` signs (${alg}), with its issuer and audience, and nothing else`, async () => {
      const keys = pair();
      const pub = file(`${alg}.pub.pem`, keys.publicKey.export({ type: "spki", format: "pem" }));
      const priv = file(`${alg}.key.pem`, keys.privateKey.export({ type: "pkcs8", format: "pem" }));
      const n = await startTestNode(uniquePrefix(`pubkey-${alg}`), {
        authSecret: undefined,
        authPublicKeyFile: pub,
        authIssuer: "https://idp.example",
        authAudience: "fleet",
      });
      nodes.push(n);
      expect(n.settings.authSecret).toBeUndefined();

      const args = ["token", "--key", priv, "--user", "carol", "--issuer", "https://idp.example"];
      const minted = await cli([...args, "--audience", "fleet", "--group", "launcher-admins"]);
      expect({ code: minted.code, stderr: minted.stderr }).toEqual({ code: 0, stderr: "" });
      const jwt = minted.stdout.trim();
      expect(JSON.parse(Buffer.from(jwt.split(".")[0]!, "base64url").toString())).toEqual({
        alg,
        typ: "JWT",
      });
      const list = await api<{ jobs: unknown[] }>(n.url, "GET", "/jobs?user=*", { token: jwt });
      expect(list.status).toBe(200);

      // Wrong audience, no issuer, or an HS256 token (the node has no secret): 401 naming why.
      const wrongAud = (await cli([...args, "--audience", "elsewhere"])).stdout.trim();
      const noIss = (
        await cli(["token", "--key", priv, "--user", "carol", "--audience", "fleet"])
      ).stdout.trim();
      for (const [tok, message] of [
        [wrongAud, /"aud" claim does not match this fleet's LAUNCHER_AUTH_AUDIENCE/],
        [noIss, /"iss" claim is missing/],
        [await token("carol", { admin: true }), /algorithm HS256 is not accepted/],
      ] as const) {
        const res = await api<{ code: number; name: string; message: string }>(n.url, "GET", "/jobs", {
          token: tok,
        });
        expect(res.status).toBe(401);
        expect(res.body).toMatchObject({ code: 2, name: "InvalidRequest" });
        expect(res.body.message).toMatch(message);
      }
    });
  }
});

describe('a token with sub "*"', () => {
  let n: TestNode;
  let admin: string;
  beforeAll(async () => {
    n = await startTestNode(uniquePrefix("sub-star"));
    admin = await token("boss", { admin: true });
    await Promise.all([
      running(n, await token("alice"), { command: "sleep 30" }),
      running(n, await token("bob"), { command: "sleep 30" }),
    ]);
  });
  afterAll(async () => {
    await endAll(n, admin);
    await n.close();
  });

  it("lists nobody's jobs: 401 with the InvalidRequest body", async () => {
    expect((await listJobs(n, admin, "?user=*")).length).toBeGreaterThanOrEqual(2);
    const star = await new SignJWT({})
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("*")
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode(TEST_SECRET));
    for (const path of ["/jobs", "/jobs?user=*", "/jobs/*/status"]) {
      const res = await api<{ code: number; name: string; message: string; jobs?: unknown }>(
        n.url,
        "GET",
        path,
        {
          token: star,
        },
      );
      expect(res.status, path).toBe(401);
      expect(res.body).toEqual({
        code: 2,
        name: "InvalidRequest",
        message: expect.stringMatching(/^Invalid token: the "sub" claim must be a user name/),
      });
    }
  });
});
