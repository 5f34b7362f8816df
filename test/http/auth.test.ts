import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import fc from "fast-check";
import { SignJWT } from "jose";
import { pino } from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import { signingKeyFromPem, signToken } from "../../src/http/index.js";
import { ADMIN_GROUP, adminAuth, bearer, makeApp, SECRET, type TestApp } from "./helpers.js";

const apps: TestApp[] = [];
async function app(opts: Parameters<typeof makeApp>[0] = {}): Promise<TestApp> {
  const t = await makeApp(opts);
  apps.push(t);
  return t;
}
afterEach(async () => {
  await Promise.all(apps.splice(0).map((t) => t.app.close()));
});

const secretKey = new TextEncoder().encode(SECRET);

function expect401(res: { statusCode: number; json(): unknown }, message: RegExp): void {
  expect(res.statusCode).toBe(401);
  const body = res.json() as { code: number; name: string; message: string };
  expect(body).toMatchObject({ code: 2, name: "InvalidRequest" });
  expect(body.message).toMatch(message);
}

describe("auth", () => {
  it("rejects a request without a token with the Launcher error body", async () => {
    const { app: a } = await app();
    const res = await a.inject({ method: "GET", url: "/jobs" });
    expect401(res, /Missing bearer token/);
    expect(res.headers["www-authenticate"]).toMatch(/^Bearer/);
  });

  it("rejects a non-Bearer Authorization header", async () => {
    const { app: a } = await app();
    const res = await a.inject({ method: "GET", url: "/jobs", headers: { authorization: "Basic YTpi" } });
    expect401(res, /Bearer/);
  });

  it("rejects a bad signature", async () => {
    const { app: a } = await app();
    const forged = await signToken(
      { authSecret: "another-secret-another-secret-another" },
      { user: "alice" },
    );
    const res = await a.inject({
      method: "GET",
      url: "/jobs",
      headers: { authorization: `Bearer ${forged}` },
    });
    expect401(res, /Invalid token/);
  });

  it("rejects garbage", async () => {
    const { app: a } = await app();
    const res = await a.inject({
      method: "GET",
      url: "/jobs",
      headers: { authorization: "Bearer not.a.jwt" },
    });
    expect401(res, /Invalid token/);
  });

  it("rejects an expired token", async () => {
    const { app: a } = await app();
    const expired = await new SignJWT({ groups: [] })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("alice")
      .setIssuedAt(Math.floor(Date.now() / 1000) - 7200)
      .setExpirationTime(Math.floor(Date.now() / 1000) - 3600)
      .sign(secretKey);
    const res = await a.inject({
      method: "GET",
      url: "/jobs",
      headers: { authorization: `Bearer ${expired}` },
    });
    expect401(res, /expired/);
  });

  it("a token that was accepted is refused once it expires (verification cache)", async () => {
    const { app: a } = await app();
    const headers = await bearer("alice");
    expect((await a.inject({ url: "/jobs", headers })).statusCode).toBe(200);
    expect((await a.inject({ url: "/jobs", headers })).statusCode).toBe(200);
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      vi.setSystemTime(Date.now() + 2 * 3600_000);
      expect401(await a.inject({ url: "/jobs", headers }), /expired/);
    } finally {
      vi.useRealTimers();
    }
  });

  it("rejects a token without sub or without exp", async () => {
    const { app: a } = await app();
    const noSub = await new SignJWT({ groups: [] })
      .setProtectedHeader({ alg: "HS256" })
      .setExpirationTime("1h")
      .sign(secretKey);
    expect401(await a.inject({ url: "/jobs", headers: { authorization: `Bearer ${noSub}` } }), /sub/);
    const noExp = await new SignJWT({})
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("alice")
      .sign(secretKey);
    expect401(await a.inject({ url: "/jobs", headers: { authorization: `Bearer ${noExp}` } }), /exp/);
  });

  it("rejects a groups claim that is not a string array", async () => {
    const { app: a } = await app();
    const bad = await new SignJWT({ groups: "launcher-admins" })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("alice")
      .setExpirationTime("1h")
      .sign(secretKey);
    expect401(await a.inject({ url: "/jobs", headers: { authorization: `Bearer ${bad}` } }), /groups/);
  });

  it("rejects alg none", async () => {
    const { app: a } = await app();
    const header = Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url");
    const payload = Buffer.from(
      JSON.stringify({ sub: "root", exp: 9999999999, groups: [ADMIN_GROUP] }),
    ).toString("base64url");
    const res = await a.inject({ url: "/jobs", headers: { authorization: `Bearer ${header}.${payload}.` } });
    expect401(res, /Invalid token/);
  });

  it("sets the caller from sub and groups; admin by group", async () => {
    const { app: a, service } = await app();
    expect((await a.inject({ url: "/jobs", headers: await bearer("alice", ["dev"]) })).statusCode).toBe(200);
    expect((await a.inject({ url: "/jobs", headers: await adminAuth() })).statusCode).toBe(200);
    const callers = service.callsTo("listJobs").map((c) => c.caller);
    expect(callers).toEqual([
      { user: "alice", groups: ["dev"], admin: false },
      { user: "root", groups: [ADMIN_GROUP], admin: true },
    ]);
  });

  it("hides other users' jobs as 404, never 403", async () => {
    const { app: a, service } = await app();
    service.addJob({ id: "j1", user: "bob" });
    const res = await a.inject({ url: "/jobs/j1", headers: await bearer("alice") });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ code: 3, name: "JobNotFound" });
    expect((await a.inject({ url: "/jobs/j1", headers: await adminAuth() })).statusCode).toBe(200);
  });

  it("leaves public routes open", async () => {
    const { app: a } = await app();
    for (const url of ["/status", "/healthz", "/readyz", "/metrics", "/docs/json"]) {
      const res = await a.inject({ url });
      expect(res.statusCode, url).toBe(200);
    }
  });

  it("with auth disabled, every request is admin * and a warning is logged once", async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const { app: a, service } = await app({
      settings: { authDisabled: true, authSecret: undefined },
      logger: pino({ level: "warn" }, sink),
    });
    expect((await a.inject({ url: "/jobs" })).statusCode).toBe(200);
    expect((await a.inject({ url: "/jobs" })).statusCode).toBe(200);
    expect(service.callsTo("listJobs")[0]?.caller).toEqual({ user: "*", groups: [ADMIN_GROUP], admin: true });
    expect(lines.filter((l) => l.includes("LAUNCHER_AUTH_DISABLED"))).toHaveLength(1);
  });

  it("never logs the token", async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const { app: a } = await app({ logger: pino({ level: "trace" }, sink) });
    const headers = await bearer("alice");
    await a.inject({ url: "/jobs", headers });
    await a.inject({ url: "/jobs/nope", headers });
    const jwt = headers.authorization.slice("Bearer ".length);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.join("\n")).not.toContain(jwt);
  });

  it("verifies RS256 and ES256 tokens with the public key file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "launcher-auth-"));
    for (const [alg, pair] of [
      ["RS256", generateKeyPairSync("rsa", { modulusLength: 2048 })],
      ["ES256", generateKeyPairSync("ec", { namedCurve: "P-256" })],
    ] as const) {
      const file = join(dir, `${alg}.pub`);
      writeFileSync(file, pair.publicKey.export({ type: "spki", format: "pem" }));
      const { app: a, service } = await app({ settings: { authSecret: undefined, authPublicKeyFile: file } });
      const jwt = await new SignJWT({ groups: [ADMIN_GROUP] })
        .setProtectedHeader({ alg })
        .setSubject("carol")
        .setExpirationTime("1h")
        .sign(pair.privateKey);
      const ok = await a.inject({ url: "/jobs", headers: { authorization: `Bearer ${jwt}` } });
      expect(ok.statusCode, alg).toBe(200);
      expect(service.callsTo("listJobs")[0]?.caller).toEqual({
        user: "carol",
        groups: [ADMIN_GROUP],
        admin: true,
      });
      // An HS256 token is not accepted when only a public key is configured.
      const hs = await signToken({ authSecret: SECRET }, { user: "carol" });
      expect((await a.inject({ url: "/jobs", headers: { authorization: `Bearer ${hs}` } })).statusCode).toBe(
        401,
      );
    }
  });

  it("signToken accepts a secret string, a ttl in seconds, and needs a secret", async () => {
    const jwt = await signToken(SECRET, { user: "dave", ttl: 60 });
    const payload = JSON.parse(Buffer.from(jwt.split(".")[1]!, "base64url").toString()) as {
      exp: number;
      sub: string;
    };
    expect(payload.sub).toBe("dave");
    expect(payload.exp - Date.now() / 1000).toBeGreaterThan(50);
    expect(payload.exp - Date.now() / 1000).toBeLessThanOrEqual(61);
    await expect(signToken({ authSecret: undefined }, { user: "dave" })).rejects.toThrow(/SECRET/);
  });
});

/** An HS256 token with the given claims (`sub` and `exp` only when given). */
function hs256(claims: Record<string, unknown>, secret = SECRET): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(secret));
}
const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;

describe("the sub claim must be a plausible user name", () => {
  it('a token for sub "*" without groups is refused with 401 and lists nothing', async () => {
    const { app: a, service } = await app();
    service.addJob({ id: "j1", user: "bob" });
    const star = await hs256({ sub: "*", exp: inAnHour() });
    for (const url of ["/jobs", "/jobs?user=*", "/jobs/j1", "/jobs/*/status"]) {
      const res = await a.inject({ url, headers: { authorization: `Bearer ${star}` } });
      expect401(res, /^Invalid token: the "sub" claim must be a user name .*: it contains "\*"$/);
    }
    expect(service.callsTo("listJobs")).toEqual([]);
  });

  it("refuses a sub with a forbidden character, empty, too long or not a string; names the claim", async () => {
    const { app: a, service } = await app();
    const forbidden = fc.constantFrom("*", "/", ":", " ", "\t", "\n", "\0", "\x7f", "\u00a0", "\u2028");
    await fc.assert(
      fc.asyncProperty(
        fc.string({ maxLength: 10 }),
        forbidden,
        fc.string({ maxLength: 10 }),
        async (before, bad, after) => {
          const jwt = await hs256({ sub: before + bad + after, exp: inAnHour() });
          expect401(
            await a.inject({ url: "/jobs", headers: { authorization: `Bearer ${jwt}` } }),
            /"sub" claim/,
          );
        },
      ),
      { numRuns: 60 },
    );
    for (const sub of ["", "a".repeat(257), 42, ["alice"]]) {
      const jwt = await hs256({ sub, exp: inAnHour() });
      const res = await a.inject({ url: "/jobs", headers: { authorization: `Bearer ${jwt}` } });
      expect401(res, /"sub"/);
    }
    expect(service.callsTo("listJobs")).toEqual([]);
  });

  it("accepts plausible names up to 256 characters", async () => {
    const { app: a, service } = await app();
    for (const sub of ["alice", "a".repeat(256), "CORP\\carol", "dave@example.com", "ünïcødé"]) {
      const jwt = await hs256({ sub, exp: inAnHour() });
      expect((await a.inject({ url: "/jobs", headers: { authorization: `Bearer ${jwt}` } })).statusCode).toBe(
        200,
      );
    }
    expect(service.callsTo("listJobs").map((c) => c.caller?.user)).toEqual([
      "alice",
      "a".repeat(256),
      "CORP\\carol",
      "dave@example.com",
      "ünïcødé",
    ]);
  });

  it("signToken will not sign a token that would be refused", async () => {
    await expect(signToken(SECRET, { user: "*" })).rejects.toThrow(/plausible user name: it contains "\*"/);
    await expect(signToken(SECRET, { user: "a b" })).rejects.toThrow(/whitespace/);
  });
});

describe("issuer and audience", () => {
  const settings = { authIssuer: "https://idp.example", authAudience: "launcher-fleet" };
  const get = (a: TestApp["app"], jwt: string) =>
    a.inject({ url: "/jobs", headers: { authorization: `Bearer ${jwt}` } });

  it("when set, a token must carry both, matching", async () => {
    const { app: a } = await app({ settings });
    const ok = await signToken(SECRET, {
      user: "alice",
      issuer: "https://idp.example",
      audience: "launcher-fleet",
    });
    expect((await get(a, ok)).statusCode).toBe(200);
    // An audience list that includes ours is fine.
    const list = await hs256({
      sub: "alice",
      exp: inAnHour(),
      iss: "https://idp.example",
      aud: ["x", "launcher-fleet"],
    });
    expect((await get(a, list)).statusCode).toBe(200);

    const cases: [Record<string, unknown>, RegExp][] = [
      [
        { aud: "launcher-fleet" },
        /^Invalid token: the "iss" claim is missing; this fleet requires it \(LAUNCHER_AUTH_ISSUER\)$/,
      ],
      [
        { iss: "https://evil.example", aud: "launcher-fleet" },
        /^Invalid token: the "iss" claim does not match this fleet's LAUNCHER_AUTH_ISSUER$/,
      ],
      [
        { iss: "https://idp.example" },
        /^Invalid token: the "aud" claim is missing; this fleet requires it \(LAUNCHER_AUTH_AUDIENCE\)$/,
      ],
      [
        { iss: "https://idp.example", aud: "other" },
        /^Invalid token: the "aud" claim does not match this fleet's LAUNCHER_AUTH_AUDIENCE$/,
      ],
    ];
    for (const [claims, message] of cases) {
      expect401(await get(a, await hs256({ sub: "alice", exp: inAnHour(), ...claims })), message);
    }
  });

  it("only the configured one is checked; unset, any or none passes", async () => {
    const { app: issuerOnly } = await app({ settings: { authIssuer: "https://idp.example" } });
    expect(
      (
        await get(
          issuerOnly,
          await signToken(SECRET, { user: "alice", issuer: "https://idp.example", audience: "whatever" }),
        )
      ).statusCode,
    ).toBe(200);
    expect401(await get(issuerOnly, await signToken(SECRET, { user: "alice" })), /"iss" claim is missing/);
    const { app: neither } = await app();
    expect(
      (await get(neither, await signToken(SECRET, { user: "alice", issuer: "x", audience: "y" }))).statusCode,
    ).toBe(200);
    expect((await get(neither, await signToken(SECRET, { user: "alice" }))).statusCode).toBe(200);
  });
});

describe("signing with a private key", () => {
  it("signToken signs RS256 and ES256 with a PEM private key that a public-key node accepts", async () => {
    const dir = mkdtempSync(join(tmpdir(), "launcher-sign-"));
    for (const [alg, pair] of [
      ["RS256", generateKeyPairSync("rsa", { modulusLength: 2048 })],
      ["ES256", generateKeyPairSync("ec", { namedCurve: "P-256" })],
    ] as const) {
      const pub = join(dir, `${alg}.pub`);
      writeFileSync(pub, pair.publicKey.export({ type: "spki", format: "pem" }));
      const key = signingKeyFromPem(
        pair.privateKey.export({ type: "pkcs8", format: "pem" }) as string,
        "k.pem",
      );
      expect(key.alg).toBe(alg);
      const jwt = await signToken(key, { user: "carol", groups: ["dev"], issuer: "me", audience: "you" });
      expect(JSON.parse(Buffer.from(jwt.split(".")[0]!, "base64url").toString())).toEqual({
        alg,
        typ: "JWT",
      });
      const { app: a, service } = await app({
        settings: { authSecret: undefined, authPublicKeyFile: pub, authIssuer: "me", authAudience: "you" },
      });
      expect((await a.inject({ url: "/jobs", headers: { authorization: `Bearer ${jwt}` } })).statusCode).toBe(
        200,
      );
      expect(service.callsTo("listJobs")[0]?.caller).toEqual({
        user: "carol",
        groups: ["dev"],
        admin: false,
      });
    }
  });

  it("refuses keys it cannot sign with, saying why", () => {
    const ed = generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }) as string;
    expect(() => signingKeyFromPem(ed, "ed.pem")).toThrow(
      "ed.pem: only RSA (RS256) and P-256 EC (ES256) private keys are supported",
    );
    const p384 = generateKeyPairSync("ec", { namedCurve: "P-384" }).privateKey.export({
      type: "pkcs8",
      format: "pem",
    }) as string;
    expect(() => signingKeyFromPem(p384, "p384.pem")).toThrow(/only RSA \(RS256\) and P-256/);
    const encrypted = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({
      type: "pkcs8",
      format: "pem",
      cipher: "aes-256-cbc",
      passphrase: "pw",
    }) as string;
    expect(() => signingKeyFromPem(encrypted, "enc.pem")).toThrow(
      "enc.pem: not a usable PEM private key (it is encrypted; give an unencrypted copy)",
    );
    expect(() => signingKeyFromPem("garbage", "g.pem")).toThrow("g.pem: not a usable PEM private key");
  });
});
