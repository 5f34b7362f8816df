// Node settings: API.md's environment variables, overridable by CLI flags of the same name.
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { resolve } from "node:path";

export interface Settings {
  redisUrl: string;
  redisSentinels?: { host: string; port: number }[];
  redisMasterName?: string;
  keyPrefix: string;
  nodeId: string;
  host: string;
  port: number;
  advertiseIp: string;
  authSecret?: string;
  authPublicKeyFile?: string;
  authDisabled: boolean;
  adminGroup: string;
  clusterName: string;
  scratchPath: string;
  jobExpiryHours: number;
  heartbeatMs: number;
  offlineAfterMs: number;
  lostAfterMs: number;
  drainMs: number;
  logLevel: string;
  /** Status events kept in the fleet-wide stream for `since` resume (XADD MAXLEN ~). */
  eventRetention: number;
  /** Jobs allowed to run at once on this node; more wait as Pending (0 = no limit). */
  maxRunningJobs: number;
  /** JSON file with queues, limits, profiles and config for `GET /cluster-info`. */
  clusterConfigFile?: string;
  /** Time allowed for a forwarded request to reach the owner before 503. */
  peerTimeoutMs: number;
  /** Every job runs as the node's own user (required when the node is not root). */
  unprivileged: boolean;
  /** A privileged node may run jobs of users whose uid is 0. */
  allowRootJobs: boolean;
  /** Checked against a token's `iss` / `aud` claims when set. */
  authIssuer?: string;
  authAudience?: string;
  /** A request body must have arrived within this time (408 otherwise). */
  bodyTimeoutMs: number;
  /** Bytes a stream may hold that its client has not read; past that the stream ends. */
  streamBufferBytes: number;
  /** HTTPS: the node's certificate and key (PEM); peers are then reached over HTTPS too. */
  tlsCertFile?: string;
  tlsKeyFile?: string;
  /** CA bundle (PEM) that peers' certificates are verified against; default: the system's. */
  tlsCaFile?: string;
}

/** Shortest HS256 secret accepted: 256 bits, the hash's own size (RFC 7518 §3.2). */
export const MIN_SECRET_BYTES = 32;

/** Every setting: env name, flag name, and how to read it. */
const SPEC = {
  redisUrl: ["LAUNCHER_REDIS_URL", "redis-url"],
  redisSentinels: ["LAUNCHER_REDIS_SENTINELS", "redis-sentinels"],
  redisMasterName: ["LAUNCHER_REDIS_MASTER_NAME", "redis-master-name"],
  keyPrefix: ["LAUNCHER_KEY_PREFIX", "key-prefix"],
  nodeId: ["LAUNCHER_NODE_ID", "node-id"],
  host: ["LAUNCHER_HOST", "host"],
  port: ["LAUNCHER_PORT", "port"],
  advertiseIp: ["LAUNCHER_ADVERTISE_IP", "advertise-ip"],
  authSecret: ["LAUNCHER_AUTH_SECRET", "auth-secret"],
  authPublicKeyFile: ["LAUNCHER_AUTH_PUBLIC_KEY_FILE", "auth-public-key-file"],
  authDisabled: ["LAUNCHER_AUTH_DISABLED", "auth-disabled"],
  adminGroup: ["LAUNCHER_ADMIN_GROUP", "admin-group"],
  clusterName: ["LAUNCHER_CLUSTER_NAME", "cluster-name"],
  scratchPath: ["LAUNCHER_SCRATCH_PATH", "scratch-path"],
  jobExpiryHours: ["LAUNCHER_JOB_EXPIRY_HOURS", "job-expiry-hours"],
  heartbeatMs: ["LAUNCHER_HEARTBEAT_MS", "heartbeat-ms"],
  offlineAfterMs: ["LAUNCHER_OFFLINE_AFTER_MS", "offline-after-ms"],
  lostAfterMs: ["LAUNCHER_LOST_AFTER_MS", "lost-after-ms"],
  drainMs: ["LAUNCHER_DRAIN_MS", "drain-ms"],
  logLevel: ["LAUNCHER_LOG_LEVEL", "log-level"],
  eventRetention: ["LAUNCHER_EVENT_RETENTION", "event-retention"],
  maxRunningJobs: ["LAUNCHER_MAX_RUNNING_JOBS", "max-running-jobs"],
  clusterConfigFile: ["LAUNCHER_CLUSTER_CONFIG_FILE", "cluster-config-file"],
  peerTimeoutMs: ["LAUNCHER_PEER_TIMEOUT_MS", "peer-timeout-ms"],
  unprivileged: ["LAUNCHER_UNPRIVILEGED", "unprivileged"],
  allowRootJobs: ["LAUNCHER_ALLOW_ROOT_JOBS", "allow-root-jobs"],
  authIssuer: ["LAUNCHER_AUTH_ISSUER", "auth-issuer"],
  authAudience: ["LAUNCHER_AUTH_AUDIENCE", "auth-audience"],
  bodyTimeoutMs: ["LAUNCHER_BODY_TIMEOUT_MS", "body-timeout-ms"],
  streamBufferBytes: ["LAUNCHER_STREAM_BUFFER_BYTES", "stream-buffer-bytes"],
  tlsCertFile: ["LAUNCHER_TLS_CERT_FILE", "tls-cert-file"],
  tlsKeyFile: ["LAUNCHER_TLS_KEY_FILE", "tls-key-file"],
  tlsCaFile: ["LAUNCHER_TLS_CA_FILE", "tls-ca-file"],
} as const satisfies Record<keyof Settings, readonly [string, string]>;

/**
 * Settings that may instead be read from a file (`<ENV>_FILE`, flag `<flag>-file`), so a secret is in
 * no environment, command line or `ps` output.
 */
const FILE_FORMS = {
  authSecret: ["LAUNCHER_AUTH_SECRET_FILE", "auth-secret-file"],
  redisUrl: ["LAUNCHER_REDIS_URL_FILE", "redis-url-file"],
} as const satisfies Partial<Record<keyof Settings, readonly [string, string]>>;

export type SettingName = keyof typeof SPEC;
export const SETTING_FLAGS: readonly string[] = [...Object.values(SPEC), ...Object.values(FILE_FORMS)].map(
  ([, flag]) => flag,
);
/** Every setting's environment name (the `_FILE` forms included): what the docs must name. */
export const SETTING_ENV_NAMES: readonly string[] = [
  ...Object.values(SPEC),
  ...Object.values(FILE_FORMS),
].map(([env]) => env);
/** Flags whose value is a secret: given on a command line, it shows in `ps` (the node warns). */
export const SECRET_FLAGS: readonly string[] = [SPEC.authSecret[1], SPEC.redisUrl[1]];

export class SettingsError extends Error {}

function int(name: string, raw: string, min: number): number {
  if (!/^\d+$/.test(raw.trim())) throw new SettingsError(`${name} must be a whole number, got "${raw}"`);
  const n = Number(raw);
  if (n < min) throw new SettingsError(`${name} must be at least ${min}, got ${n}`);
  return n;
}

function num(name: string, raw: string): number {
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0)
    throw new SettingsError(`${name} must be a positive number, got "${raw}"`);
  return n;
}

function bool(raw: string): boolean {
  return ["1", "true", "yes", "on"].includes(raw.trim().toLowerCase());
}

function sentinels(name: string, raw: string): { host: string; port: number }[] {
  return raw
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((hp) => {
      const m = /^(.+):(\d+)$/.exec(hp);
      if (!m) throw new SettingsError(`${name}: "${hp}" is not host:port`);
      return { host: m[1]!, port: Number(m[2]) };
    });
}

/**
 * Reads settings: flags win over the environment, which wins over defaults.
 * `advertiseIp` default is computed by the caller (it needs the network module).
 */
export function loadSettings(
  env: NodeJS.ProcessEnv,
  flags: Partial<Record<string, string>> = {},
  defaults: { advertiseIp: string; uid?: number } = { advertiseIp: "127.0.0.1" },
): Settings {
  const nonEmpty = (v: string | undefined) => (v === undefined || v === "" ? undefined : v);
  /** Settings read from their `_FILE` form, with the variable that named the file. */
  const fromFile = new Map<SettingName, string>();
  const get = (key: SettingName): string | undefined => {
    const [envName, flag] = SPEC[key];
    const fileForm: readonly [string, string] | undefined = FILE_FORMS[key as keyof typeof FILE_FORMS];
    // A flag (either form) wins over the environment (either form); both forms at once is a mistake.
    const byFlag = flags[flag] !== undefined || (fileForm !== undefined && flags[fileForm[1]] !== undefined);
    const value = nonEmpty(byFlag ? flags[flag] : env[envName]);
    if (fileForm === undefined) return value;
    const file = nonEmpty(byFlag ? flags[fileForm[1]] : env[fileForm[0]]);
    if (file === undefined) return value;
    if (value !== undefined) {
      throw new SettingsError(
        byFlag
          ? `--${flag} and --${fileForm[1]} are both given: use one`
          : `${envName} and ${fileForm[0]} are both set: set one`,
      );
    }
    fromFile.set(key, fileForm[0]);
    return readSettingFile(fileForm[0], file);
  };
  const label = (key: SettingName) => SPEC[key][0];
  const port = int(label("port"), get("port") ?? "5559", 0);
  const sentinelsRaw = get("redisSentinels");
  const settings: Settings = {
    redisUrl: get("redisUrl") ?? "redis://127.0.0.1:6379",
    keyPrefix: get("keyPrefix") ?? "launcher",
    nodeId: get("nodeId") ?? `${hostname()}-${port}`,
    host: get("host") ?? "0.0.0.0",
    port,
    advertiseIp: get("advertiseIp") ?? defaults.advertiseIp,
    authDisabled: bool(get("authDisabled") ?? "0"),
    adminGroup: get("adminGroup") ?? "launcher-admins",
    clusterName: get("clusterName") ?? "Local",
    scratchPath: resolve(get("scratchPath") ?? "./.launcher-scratch"),
    jobExpiryHours: num(label("jobExpiryHours"), get("jobExpiryHours") ?? "24"),
    heartbeatMs: int(label("heartbeatMs"), get("heartbeatMs") ?? "1000", 10),
    offlineAfterMs: int(label("offlineAfterMs"), get("offlineAfterMs") ?? "3000", 10),
    lostAfterMs: int(label("lostAfterMs"), get("lostAfterMs") ?? "30000", 10),
    drainMs: int(label("drainMs"), get("drainMs") ?? "3000", 0),
    logLevel: get("logLevel") ?? "info",
    eventRetention: int(label("eventRetention"), get("eventRetention") ?? "100000", 10),
    maxRunningJobs: int(label("maxRunningJobs"), get("maxRunningJobs") ?? "0", 0),
    peerTimeoutMs: int(label("peerTimeoutMs"), get("peerTimeoutMs") ?? "3000", 10),
    unprivileged: bool(get("unprivileged") ?? "0"),
    allowRootJobs: bool(get("allowRootJobs") ?? "0"),
    bodyTimeoutMs: int(label("bodyTimeoutMs"), get("bodyTimeoutMs") ?? "30000", 100),
    streamBufferBytes: int(label("streamBufferBytes"), get("streamBufferBytes") ?? "4194304", 1024),
  };
  const optional = {
    authSecret: get("authSecret"),
    authPublicKeyFile: get("authPublicKeyFile"),
    redisMasterName: get("redisMasterName"),
    clusterConfigFile: get("clusterConfigFile"),
    redisSentinels: sentinelsRaw ? sentinels(label("redisSentinels"), sentinelsRaw) : undefined,
    authIssuer: get("authIssuer"),
    authAudience: get("authAudience"),
    tlsCertFile: get("tlsCertFile"),
    tlsKeyFile: get("tlsKeyFile"),
    tlsCaFile: get("tlsCaFile"),
  };
  for (const [k, v] of Object.entries(optional)) if (v !== undefined) Object.assign(settings, { [k]: v });
  if (settings.lostAfterMs <= settings.offlineAfterMs) {
    throw new SettingsError("LAUNCHER_LOST_AFTER_MS must be greater than LAUNCHER_OFFLINE_AFTER_MS");
  }
  if (!settings.authDisabled && !settings.authSecret && !settings.authPublicKeyFile) {
    throw new SettingsError(
      "Set LAUNCHER_AUTH_SECRET (HS256) or LAUNCHER_AUTH_PUBLIC_KEY_FILE (RS256/ES256), or LAUNCHER_AUTH_DISABLED=1",
    );
  }
  if (settings.authSecret !== undefined) {
    const file = fromFile.get("authSecret");
    checkAuthSecret(
      settings.authSecret,
      file ? `LAUNCHER_AUTH_SECRET (from ${file})` : "LAUNCHER_AUTH_SECRET",
    );
  }
  if ((settings.tlsCertFile === undefined) !== (settings.tlsKeyFile === undefined)) {
    throw new SettingsError(
      "LAUNCHER_TLS_CERT_FILE and LAUNCHER_TLS_KEY_FILE go together: set both or neither",
    );
  }
  if (!settings.unprivileged && (defaults.uid ?? process.getuid?.()) !== 0) {
    throw new SettingsError(
      "This node is not running as root, so it cannot run jobs as their users: run it as root, or set " +
        "LAUNCHER_UNPRIVILEGED=1 to run every job as the node's own user (one trust domain)",
    );
  }
  if (settings.redisSentinels && !settings.redisMasterName) {
    throw new SettingsError("LAUNCHER_REDIS_SENTINELS needs LAUNCHER_REDIS_MASTER_NAME");
  }
  return settings;
}

/** Refuses an HS256 secret shorter than MIN_SECRET_BYTES; `name` says where it came from. */
export function checkAuthSecret(secret: string, name = "LAUNCHER_AUTH_SECRET"): void {
  const bytes = Buffer.byteLength(secret);
  if (bytes < MIN_SECRET_BYTES) {
    throw new SettingsError(
      `${name} must be at least ${MIN_SECRET_BYTES} bytes (got ${bytes}); ` +
        "generate one with: openssl rand -base64 48",
    );
  }
}

/** A setting's `_FILE` form (`name` is its variable): the file's content without its trailing newline. */
export function readSettingFile(name: string, path: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new SettingsError(`${name}: cannot read "${path}": ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  const value = text.replace(/\r?\n$/, "");
  if (value === "") throw new SettingsError(`${name}: "${path}" is empty`);
  return value;
}
