// Node settings: docs/http-api.md's environment variables, overridable by CLI flags of the same name.
// SETTINGS below is the one table of them: names, defaults, parsers and docs. The node, the plugin,
// the local fleet and the README's settings table (checked by test/config.test.ts) all read it.
// Longer than 400 lines on purpose: the table is one entry per setting (about 40), and splitting it
// would bring back the second place to look for a setting that this file exists to remove.
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { resolve } from "node:path";

export interface Settings {
  redisUrl: string;
  redisSentinels?: { host: string; port: number }[];
  redisMasterName?: string;
  /** Replicas a submission must reach (Redis WAIT) before it is acknowledged. */
  redisWaitReplicas: number;
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
  /** Jobs allowed to run at once on this node: its slots (0 = no limit). */
  maxRunningJobs: number;
  /** Fleet-wide: a user's jobs placed at once; more wait in the fleet queue (0 = no limit). */
  maxRunningJobsPerUser: number;
  /** What placement constraints match on this node (label name → value). */
  nodeLabels: Record<string, string>;
  /** The queues whose jobs this node runs; empty: those of the cluster config, else `default`. */
  queues: string[];
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

/** Shortest HS256 secret accepted: 256 bits, the hash's own size (RFC 7518 §3.2). Exported only for test/config.test.ts (its only user outside this file). */
export const MIN_SECRET_BYTES = 32;

export class SettingsError extends Error {}

/** Turns a setting's text into its value; `name` (what the user set) goes into the error message. */
export type Parser<T> = (name: string, raw: string) => T;

/** What a default may depend on besides other settings: the caller's view of the host. */
export interface DefaultContext {
  advertiseIp: string;
}

export interface SettingSpec<T> {
  /** Environment variable. */
  readonly env: string;
  /** Flag of `launcher-fleet node` and `launcher-fleet plugin`, without `--`. */
  readonly flag: string;
  /** Text parsed like a given value; a function when it depends on other settings or the host. */
  readonly default?: string | ((read: Readonly<Partial<Settings>>, ctx: DefaultContext) => string);
  readonly parse: Parser<T>;
  /** The docs' default column (markdown), when the default is not simply the text above or unset. */
  readonly shownDefault?: string;
  /** The docs' meaning column: one line of markdown. */
  readonly doc: string;
  /** `<ENV>_FILE` / `<flag>-file`: the value is read from a file, so a secret is in no environment or `ps`. */
  readonly fileForm?: { readonly env: string; readonly flag: string; readonly doc: string };
  /** Given as a flag, the value shows in `ps` (the node warns). */
  readonly secret?: boolean;
}

export type SettingName = keyof Settings;
type SettingsTable = { readonly [K in SettingName]-?: SettingSpec<NonNullable<Settings[K]>> };

// ---- parsers -------------------------------------------------------------------------------

const BOOL_WORDS: ReadonlyMap<string, boolean> = new Map([
  ["1", true],
  ["0", false],
  ["true", true],
  ["false", false],
  ["yes", true],
  ["no", false],
  ["on", true],
  ["off", false],
]);
/** The accepted spellings, for error messages. */
export const BOOL_TEXTS = [...BOOL_WORDS.keys()].join("/");

/** A boolean's text (case and surrounding spaces ignored), or undefined when it is none of BOOL_TEXTS. */
export function boolText(raw: string): boolean | undefined {
  return BOOL_WORDS.get(raw.trim().toLowerCase());
}

/** Exactly the words of BOOL_TEXTS: a typo such as `maybe` must not silently mean false. */
export const bool: Parser<boolean> = (name, raw) => {
  const value = boolText(raw);
  if (value === undefined) throw new SettingsError(`${name} must be one of ${BOOL_TEXTS}, got "${raw}"`);
  return value;
};

/** Digits only (no sign, exponent or fraction), at least `min` and at most `max`. */
export function wholeNumber(name: string, raw: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d+$/.test(raw.trim())) throw new SettingsError(`${name} must be a whole number, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `between ${min} and ${max}`;
    throw new SettingsError(`${name} must be ${range}, got ${n}`);
  }
  return n;
}

const int =
  (min: number): Parser<number> =>
  (name, raw) =>
    wholeNumber(name, raw, min);

const positive: Parser<number> = (name, raw) => {
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0)
    throw new SettingsError(`${name} must be a positive number, got "${raw}"`);
  return n;
};

const text: Parser<string> = (_name, raw) => raw;

/** `gpu=a100,zone=b`: label names and values (a bare `gpu` has the value ""). */
const labels: Parser<Record<string, string>> = (name, raw) => {
  const out: Record<string, string> = {};
  for (const entry of raw
    .split(",")
    .map((e) => e.trim())
    .filter(Boolean)) {
    const eq = entry.indexOf("=");
    const key = (eq < 0 ? entry : entry.slice(0, eq)).trim();
    if (!key) throw new SettingsError(`${name}: "${entry}" has no label name (expected name=value)`);
    out[key] = eq < 0 ? "" : entry.slice(eq + 1).trim();
  }
  return out;
};

/** A comma list of names (empty: none given). */
const names: Parser<string[]> = (_name, raw) => [
  ...new Set(
    raw
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean),
  ),
];

/** A directory the node works in: absolute, so a later chdir cannot move it. */
const path: Parser<string> = (_name, raw) => resolve(raw);

const hostPorts: Parser<{ host: string; port: number }[]> = (name, raw) =>
  raw
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((hp) => {
      const m = /^(.+):(\d+)$/.exec(hp);
      if (!m) throw new SettingsError(`${name}: "${hp}" is not host:port`);
      return { host: m[1]!, port: Number(m[2]) };
    });

// ---- the table -----------------------------------------------------------------------------

/** Every node setting, in the order of the README's table. */
export const SETTINGS = {
  redisUrl: {
    env: "LAUNCHER_REDIS_URL",
    flag: "redis-url",
    default: "redis://127.0.0.1:6379",
    parse: text,
    doc: "Redis (`rediss://` for TLS)",
    fileForm: {
      env: "LAUNCHER_REDIS_URL_FILE",
      flag: "redis-url-file",
      doc: "a file holding `LAUNCHER_REDIS_URL` (and so its password); setting both is an error",
    },
    secret: true,
  },
  redisSentinels: {
    env: "LAUNCHER_REDIS_SENTINELS",
    flag: "redis-sentinels",
    parse: hostPorts,
    doc: "`host:port,host:port`: use Redis Sentinel instead of the URL's host (needs `LAUNCHER_REDIS_MASTER_NAME`)",
  },
  redisMasterName: {
    env: "LAUNCHER_REDIS_MASTER_NAME",
    flag: "redis-master-name",
    parse: text,
    doc: "the master's name at the Sentinels of `LAUNCHER_REDIS_SENTINELS`",
  },
  redisWaitReplicas: {
    env: "LAUNCHER_REDIS_WAIT_REPLICAS",
    flag: "redis-wait-replicas",
    default: "0",
    parse: int(0),
    doc: "replicas that must have a submission before the node acknowledges it (Redis `WAIT`, 2 s), so a failover to a replica cannot lose it; unconfirmed, it is a 503 to repeat with its Idempotency-Key (the job goes on). With Sentinel and a replica, set `1`",
  },
  keyPrefix: {
    env: "LAUNCHER_KEY_PREFIX",
    flag: "key-prefix",
    default: "launcher",
    parse: text,
    doc: "prefix of every Redis key; fleets with different prefixes share a Redis without seeing each other",
  },
  nodeId: {
    env: "LAUNCHER_NODE_ID",
    flag: "node-id",
    default: (read) => `${hostname()}-${read.port}`,
    parse: text,
    shownDefault: "`<hostname>-<port>`",
    doc: "stable identity of the node across restarts",
  },
  host: {
    env: "LAUNCHER_HOST",
    flag: "host",
    default: "0.0.0.0",
    parse: text,
    doc: "listen address",
  },
  port: {
    env: "LAUNCHER_PORT",
    flag: "port",
    default: "5559",
    parse: int(0),
    doc: "listen port (`0` picks a free one); the plugin's default is `5560`",
  },
  advertiseIp: {
    env: "LAUNCHER_ADVERTISE_IP",
    flag: "advertise-ip",
    default: (_read, ctx) => ctx.advertiseIp,
    parse: text,
    shownDefault: "first non-loopback IPv4, else `127.0.0.1`",
    doc: "the `ipv4` peers and load balancers use to reach this node",
  },
  authSecret: {
    env: "LAUNCHER_AUTH_SECRET",
    flag: "auth-secret",
    parse: text,
    doc: "HS256 secret that tokens are signed with, at least 32 bytes (see Authentication)",
    fileForm: {
      env: "LAUNCHER_AUTH_SECRET_FILE",
      flag: "auth-secret-file",
      doc:
        "a file holding `LAUNCHER_AUTH_SECRET` (one trailing newline dropped), so the secret is in no environment or `ps`; " +
        "setting both is an error. Either way the secret must be at least 32 bytes, or the node stops at start (exit 2)",
    },
    secret: true,
  },
  authPublicKeyFile: {
    env: "LAUNCHER_AUTH_PUBLIC_KEY_FILE",
    flag: "auth-public-key-file",
    parse: text,
    doc: "PEM public key that RS256/ES256 tokens are verified with (see Authentication)",
  },
  authDisabled: {
    env: "LAUNCHER_AUTH_DISABLED",
    flag: "auth-disabled",
    default: "0",
    parse: bool,
    doc: "`1`: no token checks, every request acts as admin `*` (logged as a warning at startup)",
  },
  adminGroup: {
    env: "LAUNCHER_ADMIN_GROUP",
    flag: "admin-group",
    default: "launcher-admins",
    parse: text,
    doc: "a user whose token's `groups` contains it is an admin (see Authentication)",
  },
  clusterName: {
    env: "LAUNCHER_CLUSTER_NAME",
    flag: "cluster-name",
    default: "Local",
    parse: text,
    doc: "the `cluster` of jobs run here",
  },
  scratchPath: {
    env: "LAUNCHER_SCRATCH_PATH",
    flag: "scratch-path",
    default: "./.launcher-scratch",
    parse: path,
    doc: "job output files and runner state",
  },
  jobExpiryHours: {
    env: "LAUNCHER_JOB_EXPIRY_HOURS",
    flag: "job-expiry-hours",
    default: "24",
    parse: positive,
    doc: "terminal jobs and their saved output are removed this long after `lastUpdateTime`",
  },
  heartbeatMs: {
    env: "LAUNCHER_HEARTBEAT_MS",
    flag: "heartbeat-ms",
    default: "1000",
    parse: int(10),
    doc: "heartbeat period",
  },
  offlineAfterMs: {
    env: "LAUNCHER_OFFLINE_AFTER_MS",
    flag: "offline-after-ms",
    default: "3000",
    parse: int(10),
    doc: "a node whose last heartbeat is older is not `Online()`",
  },
  lostAfterMs: {
    env: "LAUNCHER_LOST_AFTER_MS",
    flag: "lost-after-ms",
    default: "30000",
    parse: int(10),
    doc: "a node offline this long is lost: its unfinished jobs are settled by a peer (must exceed `LAUNCHER_OFFLINE_AFTER_MS`)",
  },
  drainMs: {
    env: "LAUNCHER_DRAIN_MS",
    flag: "drain-ms",
    default: "3000",
    parse: int(0),
    doc: "on SIGTERM, time spent failing readiness before closing",
  },
  logLevel: {
    env: "LAUNCHER_LOG_LEVEL",
    flag: "log-level",
    default: "info",
    parse: text,
    doc: "pino level",
  },
  eventRetention: {
    env: "LAUNCHER_EVENT_RETENTION",
    flag: "event-retention",
    default: "100000",
    parse: int(10),
    doc: 'status events kept for `?since=` resume (stream `MAXLEN ~`); older positions get `{"resync":true}` and a snapshot',
  },
  maxRunningJobs: {
    env: "LAUNCHER_MAX_RUNNING_JOBS",
    flag: "max-running-jobs",
    default: "0",
    parse: int(0),
    shownDefault: "`0` (no limit)",
    doc: "the node's slots: jobs it runs at once; when no node has a free slot, jobs wait as `Pending` in the fleet queue",
  },
  maxRunningJobsPerUser: {
    env: "LAUNCHER_MAX_RUNNING_JOBS_PER_USER",
    flag: "max-running-jobs-per-user",
    default: "0",
    parse: int(0),
    shownDefault: "`0` (no limit)",
    doc: "fleet-wide: a user's jobs placed at once; the rest wait in the fleet queue while other users' jobs start (set it alike on every node)",
  },
  nodeLabels: {
    env: "LAUNCHER_NODE_LABELS",
    flag: "node-labels",
    default: "",
    parse: labels,
    shownDefault: "none",
    doc: "labels that jobs' `placementConstraints` match (`name=value,…`, e.g. `gpu=a100,zone=b`)",
  },
  queues: {
    env: "LAUNCHER_QUEUES",
    flag: "queues",
    default: "",
    parse: names,
    shownDefault: "the cluster config's `queues`, else `default`",
    doc: "the queues whose jobs this node runs (comma list); a job names its queues in `queues`",
  },
  clusterConfigFile: {
    env: "LAUNCHER_CLUSTER_CONFIG_FILE",
    flag: "cluster-config-file",
    parse: text,
    doc: "JSON with `queues`, `defaultQueue`, `resourceLimits`, `placementConstraints`, `config`, `resourceProfiles` for `GET /cluster-info`",
  },
  peerTimeoutMs: {
    env: "LAUNCHER_PEER_TIMEOUT_MS",
    flag: "peer-timeout-ms",
    default: "3000",
    parse: int(10),
    doc: "time to reach an owner node when forwarding before answering 503",
  },
  unprivileged: {
    env: "LAUNCHER_UNPRIVILEGED",
    flag: "unprivileged",
    default: "0",
    parse: bool,
    doc:
      "`1`: every job runs as the node's own user, whoever submits it (logged as a warning). Required when the node is not " +
      "root (it refuses to start otherwise, exit 2); `npm run fleet`, the Docker image and the plugin's `--unprivileged` set it",
  },
  allowRootJobs: {
    env: "LAUNCHER_ALLOW_ROOT_JOBS",
    flag: "allow-root-jobs",
    default: "0",
    parse: bool,
    doc: "`1`: a root node may run jobs of users whose uid is 0 (otherwise 400)",
  },
  authIssuer: {
    env: "LAUNCHER_AUTH_ISSUER",
    flag: "auth-issuer",
    parse: text,
    doc: "when set, a token's `iss` must be exactly this (401 otherwise)",
  },
  authAudience: {
    env: "LAUNCHER_AUTH_AUDIENCE",
    flag: "auth-audience",
    parse: text,
    doc: "when set, a token's `aud` must be or include this (401 otherwise)",
  },
  bodyTimeoutMs: {
    env: "LAUNCHER_BODY_TIMEOUT_MS",
    flag: "body-timeout-ms",
    default: "30000",
    parse: int(100),
    doc:
      "a request (headers and body) must have arrived within this time; a client still sending gets 408 and the " +
      "connection is closed. Streams are not cut by it",
  },
  streamBufferBytes: {
    env: "LAUNCHER_STREAM_BUFFER_BYTES",
    flag: "stream-buffer-bytes",
    default: "4194304",
    parse: int(1024),
    doc:
      "bytes a stream may hold that its client has not read; past that the stream ends with a final error line " +
      "(code 5, with the `?since=` to resume a status stream from)",
  },
  tlsCertFile: {
    env: "LAUNCHER_TLS_CERT_FILE",
    flag: "tls-cert-file",
    parse: text,
    doc:
      "PEM certificate (chain): with `LAUNCHER_TLS_KEY_FILE`, the node serves HTTPS and reaches its peers over HTTPS. " +
      "The fleet shares this setting: set it on every node or none. The certificate must be valid for the node's " +
      "`LAUNCHER_ADVERTISE_IP` (an IP subject alternative name)",
  },
  tlsKeyFile: {
    env: "LAUNCHER_TLS_KEY_FILE",
    flag: "tls-key-file",
    parse: text,
    doc: "PEM key of `LAUNCHER_TLS_CERT_FILE`; the two go together",
  },
  tlsCaFile: {
    env: "LAUNCHER_TLS_CA_FILE",
    flag: "tls-ca-file",
    parse: text,
    shownDefault: "the system's CAs",
    doc: "PEM bundle that peers' certificates are verified against (it replaces the system's CAs); the CLI uses it for `https` URLs too",
  },
} satisfies SettingsTable;

// Exported only for test/config.test.ts (its only user outside this file).
export const SETTING_NAMES = Object.keys(SETTINGS) as SettingName[];
const SPECS: readonly SettingSpec<unknown>[] = Object.values(SETTINGS);
/** The `_FILE` forms, as env/flag pairs. */
const FILE_FORMS = SPECS.flatMap((s) => (s.fileForm ? [s.fileForm] : []));

/** Every flag a node accepts (the `-file` forms included). */
export const SETTING_FLAGS: readonly string[] = [...SPECS, ...FILE_FORMS].map((s) => s.flag);
/** Every setting's environment name (the `_FILE` forms included): what the docs must name. */
export const SETTING_ENV_NAMES: readonly string[] = [...SPECS, ...FILE_FORMS].map((s) => s.env);
/** Flags whose value is a secret: given on a command line, it shows in `ps` (the node warns). */
export const SECRET_FLAGS: readonly string[] = SPECS.filter((s) => s.secret).map((s) => s.flag);
/** Flags of boolean settings: a command line may give them bare (`--unprivileged`). */
export const BOOLEAN_SETTING_FLAGS: readonly string[] = SPECS.filter((s) => s.parse === bool).map(
  (s) => s.flag,
);

/** A setting's (or `_FILE` form's) flag from its environment name, or undefined when it is none. */
export function flagOfEnv(envName: string): string | undefined {
  return [...SPECS, ...FILE_FORMS].find((s) => s.env === envName)?.flag;
}

// ---- loading -------------------------------------------------------------------------------

type Flags = Partial<Record<string, string>>;
const nonEmpty = (v: string | undefined) => (v === undefined || v === "" ? undefined : v);

/**
 * A setting's text as given, or undefined. A flag (either form) wins over the environment (either
 * form); both forms from the same source is a mistake. `file` names the variable a value was read from.
 */
function givenText(
  spec: SettingSpec<unknown>,
  env: NodeJS.ProcessEnv,
  flags: Flags,
): { value?: string; file?: string } {
  const form = spec.fileForm;
  const byFlag = flags[spec.flag] !== undefined || (form !== undefined && flags[form.flag] !== undefined);
  const value = nonEmpty(byFlag ? flags[spec.flag] : env[spec.env]);
  if (form === undefined) return { value };
  const file = nonEmpty(byFlag ? flags[form.flag] : env[form.env]);
  if (file === undefined) return { value };
  if (value !== undefined) {
    throw new SettingsError(
      byFlag
        ? `--${spec.flag} and --${form.flag} are both given: use one`
        : `${spec.env} and ${form.env} are both set: set one`,
    );
  }
  return { value: readSettingFile(form.env, file), file: form.env };
}

/**
 * Reads settings: flags win over the environment, which wins over the table's defaults.
 * `advertiseIp` default is computed by the caller (it needs the network module).
 */
export function loadSettings(
  env: NodeJS.ProcessEnv,
  flags: Flags = {},
  defaults: DefaultContext & { uid?: number } = { advertiseIp: "127.0.0.1" },
): Settings {
  const read: Partial<Record<SettingName, unknown>> = {};
  /** Settings read from their `_FILE` form, with the variable that named the file. */
  const fromFile = new Map<SettingName, string>();
  const computed: SettingName[] = [];
  for (const name of SETTING_NAMES) {
    const spec: SettingSpec<unknown> = SETTINGS[name];
    const given = givenText(spec, env, flags);
    if (given.file) fromFile.set(name, given.file);
    const raw = given.value ?? (typeof spec.default === "string" ? spec.default : undefined);
    if (raw !== undefined) read[name] = spec.parse(spec.env, raw);
    else if (spec.default !== undefined) computed.push(name);
  }
  // Computed defaults come last: they may depend on any other setting (the node id on the port).
  for (const name of computed) {
    const spec: SettingSpec<unknown> = SETTINGS[name];
    const fn = spec.default as Exclude<SettingSpec<unknown>["default"], string | undefined>;
    read[name] = spec.parse(spec.env, fn(read as Partial<Settings>, defaults));
  }
  const settings = read as Settings;
  checkCombinations(settings, fromFile, defaults.uid ?? process.getuid?.());
  return settings;
}

/** Rules across settings, which no single parser can check. */
function checkCombinations(
  settings: Settings,
  fromFile: Map<SettingName, string>,
  uid: number | undefined,
): void {
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
  if (!settings.unprivileged && uid !== 0) {
    throw new SettingsError(
      "This node is not running as root, so it cannot run jobs as their users: run it as root, or set " +
        "LAUNCHER_UNPRIVILEGED=1 to run every job as the node's own user (one trust domain)",
    );
  }
  if (settings.redisSentinels && !settings.redisMasterName) {
    throw new SettingsError("LAUNCHER_REDIS_SENTINELS needs LAUNCHER_REDIS_MASTER_NAME");
  }
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

// ---- docs ----------------------------------------------------------------------------------

/** One row of the README's settings table: name, flag, default, meaning (markdown cells). */
export type SettingDocRow = readonly [string, string, string, string];

/** The table's rows, each `_FILE` form right after its setting. Exported only for test/config.test.ts (its only user outside this file). */
export function settingDocRows(): SettingDocRow[] {
  return SPECS.flatMap((s): SettingDocRow[] => {
    const row: SettingDocRow = [`\`${s.env}\``, `\`--${s.flag}\``, shownDefault(s), s.doc];
    const f = s.fileForm;
    return f ? [row, [`\`${f.env}\``, `\`--${f.flag}\``, "unset", f.doc]] : [row];
  });
}

function shownDefault(spec: SettingSpec<unknown>): string {
  if (spec.shownDefault !== undefined) return spec.shownDefault;
  return typeof spec.default === "string" ? `\`${spec.default}\`` : "unset";
}

/** The README's settings table as markdown, columns padded (what `npm run docs:settings` prints). */
export function settingsMarkdown(): string {
  const rows: SettingDocRow[] = [["name", "flag", "default", "meaning"], ...settingDocRows()];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  const rule = `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`;
  return [line(rows[0]!), rule, ...rows.slice(1).map(line)].join("\n");
}
