// Settings: the 32-byte secret minimum, the _FILE forms and their precedence, token checks, TLS.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  loadSettings,
  MIN_SECRET_BYTES,
  SECRET_FLAGS,
  SETTING_FLAGS,
  type Settings,
  SettingsError,
} from "../src/config.js";

const SECRET = "0123456789abcdef0123456789abcdef"; // 32 bytes
const dir = mkdtempSync(join(tmpdir(), "launcher-config-"));
let files = 0;
function file(content: string): string {
  const path = join(dir, `f${files++}`);
  writeFileSync(path, content, { mode: 0o600 });
  return path;
}

/** Settings as a root node would load them (the privilege check is not what these tests are about). */
function load(env: NodeJS.ProcessEnv, flags: Record<string, string> = {}): Settings {
  return loadSettings(env, flags, { advertiseIp: "127.0.0.1", uid: 0 });
}

function refused(env: NodeJS.ProcessEnv, flags: Record<string, string> = {}): string {
  try {
    load(env, flags);
  } catch (err) {
    expect(err).toBeInstanceOf(SettingsError);
    return (err as Error).message;
  }
  throw new Error("the settings were accepted");
}

describe("LAUNCHER_AUTH_SECRET", () => {
  it("needs at least 32 bytes, counted in UTF-8", () => {
    expect(MIN_SECRET_BYTES).toBe(32);
    expect(load({ LAUNCHER_AUTH_SECRET: SECRET }).authSecret).toBe(SECRET);
    expect(refused({ LAUNCHER_AUTH_SECRET: SECRET.slice(1) })).toBe(
      "LAUNCHER_AUTH_SECRET must be at least 32 bytes (got 31); generate one with: openssl rand -base64 48",
    );
    // 16 characters, 32 bytes.
    expect(load({ LAUNCHER_AUTH_SECRET: "é".repeat(16) }).authSecret).toBe("é".repeat(16));
    expect(refused({ LAUNCHER_AUTH_SECRET: "é".repeat(15) })).toMatch(/at least 32 bytes \(got 30\)/);
  });

  it("a short secret is refused even with a public key or with auth disabled", () => {
    const pub = file("not read by loadSettings");
    expect(refused({ LAUNCHER_AUTH_SECRET: "short", LAUNCHER_AUTH_PUBLIC_KEY_FILE: pub })).toMatch(
      /at least 32 bytes \(got 5\)/,
    );
    expect(refused({ LAUNCHER_AUTH_SECRET: "short", LAUNCHER_AUTH_DISABLED: "1" })).toMatch(/got 5/);
  });

  it("with only LAUNCHER_AUTH_PUBLIC_KEY_FILE there is no secret at all", () => {
    const s = load({ LAUNCHER_AUTH_PUBLIC_KEY_FILE: "/etc/launcher/pub.pem" });
    expect(s.authSecret).toBeUndefined();
    expect(s.authPublicKeyFile).toBe("/etc/launcher/pub.pem");
  });

  it("something to verify tokens with is required", () => {
    expect(refused({})).toMatch(/Set LAUNCHER_AUTH_SECRET .* or LAUNCHER_AUTH_PUBLIC_KEY_FILE/);
    expect(load({ LAUNCHER_AUTH_DISABLED: "1" }).authDisabled).toBe(true);
  });
});

describe("LAUNCHER_AUTH_SECRET_FILE and LAUNCHER_REDIS_URL_FILE", () => {
  it("read the value from a file, without its trailing newline", () => {
    expect(load({ LAUNCHER_AUTH_SECRET_FILE: file(`${SECRET}\n`) }).authSecret).toBe(SECRET);
    expect(load({ LAUNCHER_AUTH_SECRET_FILE: file(`${SECRET}\r\n`) }).authSecret).toBe(SECRET);
    expect(load({ LAUNCHER_AUTH_SECRET_FILE: file(SECRET) }).authSecret).toBe(SECRET);
    const s = load({
      LAUNCHER_AUTH_SECRET: SECRET,
      LAUNCHER_REDIS_URL_FILE: file("redis://:pw@redis.internal:6380\n"),
    });
    expect(s.redisUrl).toBe("redis://:pw@redis.internal:6380");
  });

  it("a short secret from the file says where it came from", () => {
    expect(refused({ LAUNCHER_AUTH_SECRET_FILE: file("short\n") })).toBe(
      "LAUNCHER_AUTH_SECRET (from LAUNCHER_AUTH_SECRET_FILE) must be at least 32 bytes (got 5); " +
        "generate one with: openssl rand -base64 48",
    );
  });

  it("an unreadable or empty file is an error naming the variable and the path", () => {
    const missing = join(dir, "missing");
    expect(refused({ LAUNCHER_AUTH_SECRET_FILE: missing })).toBe(
      `LAUNCHER_AUTH_SECRET_FILE: cannot read "${missing}": ENOENT`,
    );
    const empty = file("\n");
    expect(refused({ LAUNCHER_AUTH_SECRET: SECRET, LAUNCHER_REDIS_URL_FILE: empty })).toBe(
      `LAUNCHER_REDIS_URL_FILE: "${empty}" is empty`,
    );
  });

  it("both forms at once are refused; a flag of either form wins over the environment", () => {
    const f = file(SECRET);
    const other = "another-secret-of-more-than-32-bytes!";
    expect(refused({ LAUNCHER_AUTH_SECRET: other, LAUNCHER_AUTH_SECRET_FILE: f })).toBe(
      "LAUNCHER_AUTH_SECRET and LAUNCHER_AUTH_SECRET_FILE are both set: set one",
    );
    expect(refused({}, { "auth-secret": other, "auth-secret-file": f })).toBe(
      "--auth-secret and --auth-secret-file are both given: use one",
    );
    expect(load({ LAUNCHER_AUTH_SECRET: other }, { "auth-secret-file": f }).authSecret).toBe(SECRET);
    expect(load({ LAUNCHER_AUTH_SECRET_FILE: f }, { "auth-secret": other }).authSecret).toBe(other);
  });

  it("the file forms are flags too, and only the direct forms count as secrets on a command line", () => {
    expect(SETTING_FLAGS).toEqual(expect.arrayContaining(["auth-secret-file", "redis-url-file"]));
    expect([...SECRET_FLAGS].sort()).toEqual(["auth-secret", "redis-url"]);
  });
});

describe("token claims and TLS", () => {
  it("reads the issuer and audience to check, when set", () => {
    const none = load({ LAUNCHER_AUTH_SECRET: SECRET });
    expect(none.authIssuer).toBeUndefined();
    expect(none.authAudience).toBeUndefined();
    const s = load({
      LAUNCHER_AUTH_SECRET: SECRET,
      LAUNCHER_AUTH_ISSUER: "https://idp.example",
      LAUNCHER_AUTH_AUDIENCE: "launcher",
    });
    expect({ iss: s.authIssuer, aud: s.authAudience }).toEqual({
      iss: "https://idp.example",
      aud: "launcher",
    });
  });

  it("the certificate and its key go together; the CA file is optional", () => {
    const base = { LAUNCHER_AUTH_SECRET: SECRET };
    const message = "LAUNCHER_TLS_CERT_FILE and LAUNCHER_TLS_KEY_FILE go together: set both or neither";
    expect(refused({ ...base, LAUNCHER_TLS_CERT_FILE: "/c.pem" })).toBe(message);
    expect(refused({ ...base, LAUNCHER_TLS_KEY_FILE: "/k.pem" })).toBe(message);
    const s = load({ ...base, LAUNCHER_TLS_CERT_FILE: "/c.pem", LAUNCHER_TLS_KEY_FILE: "/k.pem" });
    expect({ cert: s.tlsCertFile, key: s.tlsKeyFile, ca: s.tlsCaFile }).toEqual({
      cert: "/c.pem",
      key: "/k.pem",
      ca: undefined,
    });
    expect(load({ ...base }, { "tls-ca-file": "/ca.pem" }).tlsCaFile).toBe("/ca.pem");
  });
});

describe("privileges", () => {
  it("a node that is not root must say it runs every job as itself", () => {
    const env = { LAUNCHER_AUTH_SECRET: SECRET };
    expect(() => loadSettings(env, {}, { advertiseIp: "127.0.0.1", uid: 1000 })).toThrow(
      /not running as root.*LAUNCHER_UNPRIVILEGED=1/,
    );
    const s = loadSettings(
      { ...env, LAUNCHER_UNPRIVILEGED: "1" },
      {},
      { advertiseIp: "127.0.0.1", uid: 1000 },
    );
    expect(s.unprivileged).toBe(true);
  });
});
