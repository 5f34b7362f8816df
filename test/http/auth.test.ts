import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { SignJWT } from "jose";
import { pino } from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import { signToken } from "../../src/http/index.js";
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
