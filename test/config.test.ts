// Settings: the one table (defaults, parsers, docs), the 32-byte secret minimum, the _FILE forms and
// their precedence, token checks, TLS.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  BOOLEAN_SETTING_FLAGS,
  flagOfEnv,
  loadSettings,
  MIN_SECRET_BYTES,
  SECRET_FLAGS,
  SETTING_ENV_NAMES,
  SETTING_FLAGS,
  SETTING_NAMES,
  SETTINGS,
  type SettingSpec,
  type Settings,
  SettingsError,
  settingDocRows,
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

describe("the settings table", () => {
  const base = { LAUNCHER_AUTH_SECRET: SECRET };

  it("gives every setting one env name and one flag", () => {
    expect(new Set(SETTING_ENV_NAMES).size).toBe(SETTING_ENV_NAMES.length);
    expect(new Set(SETTING_FLAGS).size).toBe(SETTING_FLAGS.length);
    for (const env of SETTING_ENV_NAMES) expect(env).toMatch(/^LAUNCHER_[A-Z_]+$/);
    expect(flagOfEnv("LAUNCHER_REDIS_URL")).toBe("redis-url");
    expect(flagOfEnv("LAUNCHER_AUTH_SECRET_FILE")).toBe("auth-secret-file");
    expect(flagOfEnv("LAUNCHER_NOT_A_SETTING")).toBeUndefined();
    expect([...BOOLEAN_SETTING_FLAGS].sort()).toEqual(["allow-root-jobs", "auth-disabled", "unprivileged"]);
  });

  it("holds the defaults loadSettings uses", () => {
    const s = load(base);
    expect(s).toMatchObject({
      redisUrl: "redis://127.0.0.1:6379",
      keyPrefix: "launcher",
      host: "0.0.0.0",
      port: 5559,
      advertiseIp: "127.0.0.1",
      authDisabled: false,
      adminGroup: "launcher-admins",
      clusterName: "Local",
      jobExpiryHours: 24,
      heartbeatMs: 1000,
      offlineAfterMs: 3000,
      lostAfterMs: 30000,
      drainMs: 3000,
      logLevel: "info",
      eventRetention: 100000,
      maxRunningJobs: 0,
      peerTimeoutMs: 3000,
      unprivileged: false,
      allowRootJobs: false,
      bodyTimeoutMs: 30000,
      streamBufferBytes: 4194304,
    });
    expect(s.nodeId).toMatch(/-5559$/);
    expect(load(base, { port: "7001" }).nodeId).toMatch(/-7001$/);
    expect(s.scratchPath).toBe(join(process.cwd(), ".launcher-scratch"));
    for (const name of SETTING_NAMES.filter((n) => n !== "authSecret")) {
      if ((SETTINGS[name] as SettingSpec<unknown>).default === undefined)
        expect(s[name], name).toBeUndefined();
    }
  });

  it("reads booleans as exactly 1/0, true/false, yes/no, on/off; anything else names the setting", () => {
    for (const [text, value] of [
      ["1", true],
      ["TRUE", true],
      [" yes ", true],
      ["on", true],
      ["0", false],
      ["false", false],
      ["No", false],
      ["off", false],
    ] as const) {
      expect(load({ ...base, LAUNCHER_ALLOW_ROOT_JOBS: text }).allowRootJobs, text).toBe(value);
    }
    // It used to be silently false, so a typo left authentication on (or a node privileged).
    expect(refused({ LAUNCHER_AUTH_DISABLED: "maybe" })).toBe(
      'LAUNCHER_AUTH_DISABLED must be one of 1/0/true/false/yes/no/on/off, got "maybe"',
    );
    expect(refused(base, { unprivileged: "enabled" })).toMatch(/^LAUNCHER_UNPRIVILEGED must be one of/);
  });

  it("refuses malformed numbers, naming the setting", () => {
    expect(refused({ ...base, LAUNCHER_PORT: "80a" })).toBe(
      'LAUNCHER_PORT must be a whole number, got "80a"',
    );
    expect(refused({ ...base, LAUNCHER_HEARTBEAT_MS: "5" })).toBe(
      "LAUNCHER_HEARTBEAT_MS must be at least 10, got 5",
    );
    expect(refused({ ...base, LAUNCHER_JOB_EXPIRY_HOURS: "0" })).toMatch(
      /^LAUNCHER_JOB_EXPIRY_HOURS must be a positive/,
    );
    expect(load({ ...base, LAUNCHER_JOB_EXPIRY_HOURS: "0.5" }).jobExpiryHours).toBe(0.5);
    expect(refused({ ...base, LAUNCHER_REDIS_SENTINELS: "a:1,b" })).toBe(
      'LAUNCHER_REDIS_SENTINELS: "b" is not host:port',
    );
  });
});

/** The rows of the markdown table that follows `marker` in `text`, as trimmed cells (the rule left out). */
function tableAfter(text: string, marker: string): string[][] {
  const from = text.indexOf(marker);
  expect(from, marker).toBeGreaterThanOrEqual(0);
  const lines = text.slice(from).split("\n");
  const first = lines.findIndex((l) => l.startsWith("|"));
  const end = lines.findIndex((l, i) => i > first && !l.startsWith("|"));
  return lines
    .slice(first, end < 0 ? undefined : end)
    .filter((l) => !/^\|[\s|-]+\|$/.test(l))
    .map((l) =>
      l
        .slice(1, -1)
        .split(/(?<!\\)\|/)
        .map((c) => c.trim()),
    );
}

describe("the docs' settings tables", () => {
  const ROOT = join(import.meta.dirname, "..");

  it("the README's is the table's markdown (npm run docs:settings prints it)", () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const rows = tableAfter(readme, "<!-- settings table:");
    expect(rows[0]).toEqual(["name", "flag", "default", "meaning"]);
    expect(rows.slice(1)).toEqual(settingDocRows().map((r) => [...r]));
  });

  it("docs/http-api.md names only settings of the table, with the table's defaults", () => {
    const api = readFileSync(join(ROOT, "docs/http-api.md"), "utf8");
    const rows = tableAfter(api, "## Settings (environment)").slice(1);
    const shown = new Map(settingDocRows().map(([name, , def]) => [name, def]));
    expect(rows.length).toBeGreaterThan(10);
    for (const [names, defaults] of rows) {
      const listed = names!.split(", ");
      for (const name of listed) expect(shown.has(name), name).toBe(true);
      // A row of several settings gives one default for all ("unset") or one each; "see ..." refers on.
      const values = defaults === "unset" ? listed.map(() => "unset") : defaults!.split(", ");
      if (values.length !== listed.length) continue;
      for (const [i, name] of listed.entries()) expect(values[i], name).toBe(shown.get(name));
    }
  });
});
