// Node settings: API.md's environment variables, overridable by CLI flags of the same name.
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
}

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
} as const satisfies Record<keyof Settings, readonly [string, string]>;

export type SettingName = keyof typeof SPEC;
export const SETTING_FLAGS: readonly string[] = Object.values(SPEC).map(([, flag]) => flag);

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
  defaults: { advertiseIp: string } = { advertiseIp: "127.0.0.1" },
): Settings {
  const get = (key: SettingName): string | undefined => {
    const [envName, flag] = SPEC[key];
    const v = flags[flag] ?? env[envName];
    return v === undefined || v === "" ? undefined : v;
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
  };
  const optional = {
    authSecret: get("authSecret"),
    authPublicKeyFile: get("authPublicKeyFile"),
    redisMasterName: get("redisMasterName"),
    clusterConfigFile: get("clusterConfigFile"),
    redisSentinels: sentinelsRaw ? sentinels(label("redisSentinels"), sentinelsRaw) : undefined,
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
  if (settings.redisSentinels && !settings.redisMasterName) {
    throw new SettingsError("LAUNCHER_REDIS_SENTINELS needs LAUNCHER_REDIS_MASTER_NAME");
  }
  return settings;
}
