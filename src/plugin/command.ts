// `launcher-fleet plugin`: a fleet node (HTTP API included) fronted by the Launcher Plugin API on
// stdin/stdout, for a Posit Job Launcher that runs launcher-fleet as its plugin on every Launcher
// node. stdout carries protocol frames only; logs go to stderr or to a file in --logging-dir.
// About 500 lines: the Launcher's own options (40 of them, most accepted and ignored), its config
// file, the log destination and start-up, which all belong to starting a plugin; the protocol itself
// is in server.ts, handlers.ts and streams.ts.
//
// Options (docs/posit-launcher.md): the Launcher's standard plugin options, every node setting
// flag (`--redis-url`, …), and `--config-file` (key=value lines, same names, or LAUNCHER_* names).
// Precedence: command line > config file > LAUNCHER_* environment > defaults.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type Logger, pino } from "pino";
import { type ClusterInfo, ConfigReloadErrorType, errorText } from "../api/index.js";
import {
  BOOL_TEXTS,
  BOOLEAN_SETTING_FLAGS,
  boolText,
  flagOfEnv,
  loadSettings,
  SETTING_FLAGS,
  SETTINGS,
  type Settings,
  SettingsError,
  wholeNumber as settingsWholeNumber,
} from "../config.js";
import { limitHeapGrowth } from "../heap.js";
import { loadClusterInfo } from "../launcher/service.js";
import { createLogger } from "../logger.js";
import { type LauncherNode, startNode } from "../node.js";
import { advertiseIp } from "../runner/index.js";
import { DEFAULT_MAX_MESSAGE_SIZE, FrameDecoder, FrameWriter, MAX_FRAME_LENGTH } from "./framing.js";
import { launcherNodes } from "./launcher-nodes.js";
import { OwnerClient } from "./owner-client.js";
import { type PluginDeps, PluginServer, type ReloadResult } from "./server.js";

/** HTTP port of a plugin node when none is configured: the Launcher itself usually has 5559. */
export const PLUGIN_DEFAULT_PORT = 5560;
export const DEFAULT_HEARTBEAT_SECONDS = 5;
export const DEFAULT_RESOURCE_POLL_MS = 3_000;

export const PLUGIN_USAGE = `usage: launcher-fleet plugin [options]

Runs a fleet node behind the Posit Launcher Plugin API on stdin/stdout (logs: stderr or --logging-dir).

Launcher plugin options:
  --plugin-name NAME                the cluster name (becomes the jobs' "cluster", unless --cluster-name)
  --config-file FILE                key=value lines: any option below (without --) or LAUNCHER_* setting
  --scratch-path DIR                job output and runner state (LAUNCHER_SCRATCH_PATH)
  --job-expiry-hours N              terminal jobs are removed after N hours (default 24)
  --heartbeat-interval-seconds N    heartbeat responses every N seconds (default 5, 0 disables)
  --enable-debug-logging[=1|0]      log at debug level
  --logging-dir DIR                 log to DIR/<plugin-name>.log instead of stderr
  --max-message-size BYTES          largest protocol message (default ${DEFAULT_MAX_MESSAGE_SIZE})
  --unprivileged[=1|0]              every job runs as the plugin's own user (LAUNCHER_UNPRIVILEGED=1)
  --node-connection-timeout-seconds N   connect timeout to other nodes (LAUNCHER_PEER_TIMEOUT_MS)
  --resource-poll-ms MS             resource utilisation sampling period (default ${DEFAULT_RESOURCE_POLL_MS})
Accepted and ignored: --server-user --thread-pool-size --launcher-config-file
  --plugin-metrics-interval-seconds --rsandbox-path --save-unspecified-output --verify-ssl-certs
Node settings (same as "launcher-fleet node"; LAUNCHER_* variables work too):
  ${SETTING_FLAGS.map((f) => `--${f}`).join(" ")}
The node's HTTP API listens beside the plugin (default port ${PLUGIN_DEFAULT_PORT}; --port 0 picks one).`;

const VALUE_OPTIONS = new Set([
  "plugin-name",
  "config-file",
  "heartbeat-interval-seconds",
  "logging-dir",
  "max-message-size",
  "node-connection-timeout-seconds",
  "resource-poll-ms",
]);
/** The plugin's own boolean and every boolean node setting: all may be given bare (`--auth-disabled`). */
const BOOLEAN_OPTIONS = new Set(["enable-debug-logging", ...BOOLEAN_SETTING_FLAGS]);
/** Options the Launcher (or a Local plugin config) may pass that mean nothing here. */
const IGNORED_OPTIONS = new Set([
  "server-user",
  "thread-pool-size",
  "launcher-config-file",
  "plugin-metrics-interval-seconds",
  "rsandbox-path",
  "save-unspecified-output",
  "verify-ssl-certs",
  "secure-cookie-key-file",
]);
const SETTING_OPTIONS = new Set(SETTING_FLAGS);

export class UsageError extends Error {}

function isKnown(name: string): boolean {
  return (
    VALUE_OPTIONS.has(name) ||
    BOOLEAN_OPTIONS.has(name) ||
    IGNORED_OPTIONS.has(name) ||
    SETTING_OPTIONS.has(name)
  );
}

function isBoolText(text: string): boolean {
  return boolText(text) !== undefined;
}

/** The node settings' boolean rule (src/config.ts), as a usage error of the plugin's command line. */
export function parseBool(name: string, text: string): boolean {
  const value = boolText(text);
  if (value === undefined) throw new UsageError(`${name} must be one of ${BOOL_TEXTS}, got "${text}"`);
  return value;
}

export interface ParsedArgs {
  /** Option name (without --) → value; booleans as "1"/"0". Ignored options are left out. */
  options: Record<string, string>;
  /** Unknown options and positional arguments, for a warning (they do not stop the plugin). */
  unknown: string[];
  help: boolean;
}

/**
 * Command-line options: `--name value`, `--name=value`; booleans also bare (`--unprivileged`) or
 * with a 1/0/true/false value. Unknown options are collected (the Launcher may pass options a
 * newer version defines) and their value, if any, skipped.
 */
export function parsePluginArgs(argv: readonly string[]): ParsedArgs {
  const options: Record<string, string> = {};
  const unknown: string[] = [];
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "-h" || arg === "--help") {
      help = true;
      continue;
    }
    if (!arg.startsWith("--") || arg === "--") {
      unknown.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    let value = eq >= 0 ? arg.slice(eq + 1) : undefined;
    const next = argv[i + 1];
    if (BOOLEAN_OPTIONS.has(name)) {
      if (value === undefined && next !== undefined && isBoolText(next)) {
        value = next;
        i++;
      }
      options[name] = value === undefined || parseBool(`--${name}`, value) ? "1" : "0";
      continue;
    }
    if (value === undefined) {
      if (next === undefined || next.startsWith("--")) {
        if (isKnown(name)) throw new UsageError(`--${name} needs a value`);
        unknown.push(arg);
        continue;
      }
      value = next;
      i++;
    }
    if (!isKnown(name)) unknown.push(`--${name}`);
    else if (!IGNORED_OPTIONS.has(name)) options[name] = value;
  }
  return { options, unknown, help };
}

/** A setting's variable (`LAUNCHER_REDIS_URL`) → its flag (`redis-url`), from the settings table. */
function optionName(key: string): string {
  return flagOfEnv(key) ?? key;
}

/**
 * A plugin config file: `key=value` lines (spaces around `=` allowed), `#` comments and blank
 * lines. Keys are option names without `--` (`redis-url`, `scratch-path`, `enable-debug-logging`)
 * or LAUNCHER_* setting names. Unknown keys are an error naming the line.
 */
export function parseConfigFile(text: string, file: string): Record<string, string> {
  const out: Record<string, string> = {};
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) return;
    const where = `${file}:${index + 1}`;
    const eq = line.indexOf("=");
    if (eq <= 0) throw new UsageError(`${where}: expected key=value, got "${line}"`);
    const key = optionName(line.slice(0, eq).trim());
    const value = line.slice(eq + 1).trim();
    if (key === "config-file") throw new UsageError(`${where}: config-file cannot be set from a config file`);
    if (!isKnown(key)) throw new UsageError(`${where}: unknown option "${line.slice(0, eq).trim()}"`);
    if (IGNORED_OPTIONS.has(key)) return;
    out[key] = BOOLEAN_OPTIONS.has(key) ? (parseBool(`${where}: ${key}`, value) ? "1" : "0") : value;
  });
  return out;
}

/** The node settings' whole-number rule, as a usage error naming the plugin's option. */
function wholeNumber(name: string, text: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  try {
    return settingsWholeNumber(`--${name}`, text, min, max);
  } catch (err) {
    throw err instanceof SettingsError ? new UsageError(err.message) : err;
  }
}

export interface PluginConfig {
  /** Flags for loadSettings (node settings). */
  settingFlags: Record<string, string>;
  pluginName: string;
  heartbeatSeconds: number;
  maxMessageSize: number;
  loggingDir?: string;
  configFile?: string;
  /** Why the config file was not read, when it was asked for but missing. */
  configFileMissing?: boolean;
  unprivileged: boolean;
  resourcePollMs: number;
  unknown: string[];
}

/** The config file's default path, as the Go SDK computes it (`launcher.<plugin>.conf`). */
function defaultConfigFile(pluginName: string, env: NodeJS.ProcessEnv): string {
  const leaf = `launcher.${pluginName.toLowerCase()}.conf`;
  return join(env.RSTUDIO_CONFIG_DIR || "/etc/rstudio", leaf);
}

/**
 * Resolves the command line and config file into node setting flags plus the plugin's own
 * options. The config file is `--config-file`, else `/etc/rstudio/launcher.<plugin-name>.conf`
 * when `--plugin-name` is given and that file exists.
 */
export function resolvePluginConfig(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  readText: (file: string) => string | undefined = readIfExists,
): PluginConfig & { help: boolean } {
  const cli = parsePluginArgs(argv);
  let configFile = cli.options["config-file"];
  const explicit = configFile !== undefined;
  if (!explicit && cli.options["plugin-name"])
    configFile = defaultConfigFile(cli.options["plugin-name"], env);
  let fromFile: Record<string, string> = {};
  let configFileMissing = false;
  if (configFile) {
    const text = readText(configFile);
    if (text === undefined) configFileMissing = explicit;
    else fromFile = parseConfigFile(text, configFile);
  }
  const merged: Record<string, string> = { ...fromFile, ...cli.options };

  const settingFlags: Record<string, string> = {};
  for (const [name, value] of Object.entries(merged))
    if (SETTING_OPTIONS.has(name)) settingFlags[name] = value;
  const pluginName =
    merged["plugin-name"] ||
    settingFlags["cluster-name"] ||
    env[SETTINGS.clusterName.env] ||
    SETTINGS.clusterName.default;
  if (merged["plugin-name"] && settingFlags["cluster-name"] === undefined)
    settingFlags["cluster-name"] = merged["plugin-name"];
  if (
    merged["enable-debug-logging"] === "1" &&
    !["trace", "debug"].includes(settingFlags["log-level"] ?? "")
  ) {
    settingFlags["log-level"] = "debug";
  }
  const connectSeconds = merged["node-connection-timeout-seconds"];
  if (connectSeconds !== undefined && settingFlags["peer-timeout-ms"] === undefined) {
    const s = wholeNumber("node-connection-timeout-seconds", connectSeconds, 0, 3600);
    if (s > 0) settingFlags["peer-timeout-ms"] = String(s * 1000);
  }
  if (settingFlags.port === undefined && !env[SETTINGS.port.env])
    settingFlags.port = String(PLUGIN_DEFAULT_PORT);

  const heartbeat = merged["heartbeat-interval-seconds"];
  const maxSize = merged["max-message-size"];
  const poll = merged["resource-poll-ms"];
  return {
    help: cli.help,
    settingFlags,
    pluginName,
    heartbeatSeconds:
      heartbeat === undefined
        ? DEFAULT_HEARTBEAT_SECONDS
        : wholeNumber("heartbeat-interval-seconds", heartbeat, 0, 86_400),
    maxMessageSize:
      maxSize === undefined
        ? DEFAULT_MAX_MESSAGE_SIZE
        : wholeNumber("max-message-size", maxSize, 1024, MAX_FRAME_LENGTH),
    ...(merged["logging-dir"] ? { loggingDir: merged["logging-dir"] } : {}),
    ...(configFile ? { configFile } : {}),
    ...(configFileMissing ? { configFileMissing } : {}),
    unprivileged: merged.unprivileged === "1",
    resourcePollMs: poll === undefined ? DEFAULT_RESOURCE_POLL_MS : wholeNumber("resource-poll-ms", poll, 10),
    unknown: cli.unknown,
  };
}

function readIfExists(file: string): string | undefined {
  if (!existsSync(file)) return undefined;
  return readFileSync(file, "utf8");
}

/** Logs to `<dir>/<plugin>.log` when a logging dir is usable, else to stderr (never stdout). */
function pluginLogger(
  settings: Settings,
  config: PluginConfig,
): { logger: Logger; file?: string; fallback?: string } {
  if (config.loggingDir) {
    const file = join(
      config.loggingDir,
      `${config.pluginName.replace(/[^A-Za-z0-9._-]/g, "_") || "plugin"}.log`,
    );
    try {
      mkdirSync(config.loggingDir, { recursive: true });
      closeSync(openSync(file, "a"));
      return {
        logger: createLogger(
          settings.nodeId,
          settings.logLevel,
          pino.destination({ dest: file, sync: false }),
        ),
        file,
      };
    } catch (err) {
      const logger = createLogger(
        settings.nodeId,
        settings.logLevel,
        pino.destination({ fd: 2, sync: true }),
      );
      return { logger, fallback: `cannot log to ${file} (${errorText(err)}); logging to stderr` };
    }
  }
  return {
    logger: createLogger(settings.nodeId, settings.logLevel, pino.destination({ fd: 2, sync: true })),
  };
}

/** Config reload (type 202): re-reads LAUNCHER_CLUSTER_CONFIG_FILE, keeping the old info on error. */
export function clusterInfoReloader(
  file: string | undefined,
  initial: ClusterInfo,
): { current: () => ClusterInfo; reload: () => ReloadResult } {
  let info = initial;
  return {
    current: () => info,
    reload: () => {
      if (!file) return { errorType: ConfigReloadErrorType.None, errorMessage: "" };
      let raw: unknown;
      try {
        raw = JSON.parse(readFileSync(file, "utf8"));
      } catch (err) {
        return { errorType: ConfigReloadErrorType.Load, errorMessage: `${file}: ${errorText(err)}` };
      }
      const problem = clusterConfigProblem(raw);
      if (problem) return { errorType: ConfigReloadErrorType.Validate, errorMessage: `${file}: ${problem}` };
      info = loadClusterInfo(file);
      return { errorType: ConfigReloadErrorType.None, errorMessage: "" };
    },
  };
}

/** What is wrong with a cluster config file's JSON, or undefined when it is usable. */
export function clusterConfigProblem(raw: unknown): string | undefined {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return "expected a JSON object";
  const r = raw as Record<string, unknown>;
  const named = (field: string, key: string) => {
    const v = r[field];
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) return `${field} must be an array`;
    const bad = v.findIndex(
      (x) => typeof x !== "object" || x === null || typeof (x as Record<string, unknown>)[key] !== "string",
    );
    return bad >= 0 ? `${field}/${bad} must be an object with a string "${key}"` : undefined;
  };
  if (r.queues !== undefined && (!Array.isArray(r.queues) || !r.queues.every((q) => typeof q === "string"))) {
    return "queues must be an array of strings";
  }
  if (r.defaultQueue !== undefined && typeof r.defaultQueue !== "string")
    return "defaultQueue must be a string";
  return (
    named("resourceLimits", "type") ??
    named("placementConstraints", "name") ??
    named("config", "name") ??
    named("resourceProfiles", "name")
  );
}

export async function runPlugin(argv: string[]): Promise<number> {
  let config: ReturnType<typeof resolvePluginConfig>;
  let settings: Settings;
  try {
    config = resolvePluginConfig(argv, process.env);
    if (config.help) {
      process.stderr.write(`${PLUGIN_USAGE}\n`);
      return 0;
    }
    // The Launcher's --unprivileged is LAUNCHER_UNPRIVILEGED (a flag, so it wins over the environment).
    const flags = config.unprivileged ? { ...config.settingFlags, unprivileged: "1" } : config.settingFlags;
    settings = loadSettings(process.env, flags, { advertiseIp: advertiseIp() });
  } catch (err) {
    if (err instanceof SettingsError || err instanceof UsageError) {
      process.stderr.write(`launcher-fleet plugin: ${err.message}\n`);
      return 2;
    }
    throw err;
  }

  const { logger, file, fallback } = pluginLogger(settings, config);
  if (fallback) logger.warn(fallback);
  if (file) process.stderr.write(`launcher-fleet plugin: logging to ${file}\n`);
  if (config.unknown.length > 0) logger.warn({ ignored: config.unknown }, "unknown plugin arguments ignored");
  if (config.configFileMissing)
    logger.warn({ configFile: config.configFile }, "config file not found; using defaults");
  logger.info(
    {
      pluginName: config.pluginName,
      configFile: config.configFile,
      maxMessageSize: config.maxMessageSize,
      heartbeatIntervalSeconds: config.heartbeatSeconds,
      keyPrefix: settings.keyPrefix,
    },
    "starting launcher-fleet plugin",
  );

  const writer = new FrameWriter(process.stdout, config.maxMessageSize);
  const decoder = new FrameDecoder(config.maxMessageSize);
  let owners: OwnerClient | undefined;
  limitHeapGrowth();
  const nodeStarted: Promise<LauncherNode> = startNode(settings, {
    logger,
    resourcePollMs: config.resourcePollMs,
    launcherNodes: () => launcherNodes.current.nodes,
  });
  const deps: Promise<PluginDeps> = nodeStarted.then((node) => {
    owners = new OwnerClient(settings, logger);
    const cluster = clusterInfoReloader(
      settings.clusterConfigFile,
      loadClusterInfo(settings.clusterConfigFile),
    );
    logger.info(
      { url: node.url, nodeId: settings.nodeId },
      "plugin node ready; serving the Launcher on stdin/stdout",
    );
    const clusterInfo = () => node.service.clusterInfo(cluster.current());
    return {
      service: node.service,
      owners,
      clusterInfo,
      reloadConfig: cluster.reload,
      streamBufferBytes: settings.streamBufferBytes,
    };
  });
  const server = new PluginServer({
    writer,
    logger,
    adminGroup: settings.adminGroup,
    deps,
    launcherNodes,
  });

  const heartbeat =
    config.heartbeatSeconds > 0
      ? setInterval(() => server.heartbeat(), config.heartbeatSeconds * 1000)
      : undefined;
  heartbeat?.unref();

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stdin = process.stdin;
    const onData = (chunk: Buffer) => {
      for (const event of decoder.push(chunk)) server.handleEvent(event);
    };
    const stop = (why: string, how: "drain" | "close", code = 0) => {
      if (stopping) return;
      stopping = true;
      logger.info({ why }, "plugin stopping");
      clearInterval(heartbeat);
      stdin.off("data", onData);
      server.close();
      stdin.destroy();
      const finish = async (): Promise<number> => {
        let exit = code;
        try {
          const node = await nodeStarted;
          await (how === "drain" ? node.drain() : node.close());
        } catch (err) {
          if (code === 0) exit = 1;
          logger.error({ err: errorText(err) }, "plugin node failed or did not shut down cleanly");
        }
        await owners?.close();
        // Let the last frames reach the Launcher before the process ends.
        await new Promise<void>((r) => (writer.open ? process.stdout.write("", () => r()) : r()));
        logger.flush?.();
        return exit;
      };
      void finish().then((exit) => {
        // Whatever handle might still be open, the plugin must not outlive its Launcher.
        setTimeout(() => process.exit(exit), 3_000).unref();
        resolve(exit);
      });
    };

    stdin.on("data", onData);
    stdin.once("end", () => {
      for (const event of decoder.end()) server.handleEvent(event);
      stop("the Launcher closed stdin", "close");
    });
    stdin.once("error", (err) => stop(`stdin failed: ${err.message}`, "close"));
    process.stdout.on("error", (err) => stop(`stdout failed: ${err.message}`, "close"));
    nodeStarted.catch((err: unknown) => {
      logger.error({ err: errorText(err) }, "the fleet node could not start");
      // Requests already read were answered with the error; give the Launcher a moment to read it.
      setTimeout(() => stop("node startup failed", "close", 1), 200);
    });
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals) => {
      signals += 1;
      if (signals > 1) {
        logger.warn("second signal: exiting now");
        logger.flush?.();
        process.exit(1);
      }
      stop(signal, signal === "SIGTERM" ? "drain" : "close");
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
}
