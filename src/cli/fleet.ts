// `launcher-fleet fleet`: a working local fleet for newcomers. Starts Redis (unless one is
// configured), N nodes and HAProxy (when installed) as child processes, prints how to use them,
// and on Ctrl-C or SIGTERM stops everything in order (nodes drain; their jobs keep running and are
// re-adopted by the next `npm run fleet` on the same scratch directory).
import { parseArgs } from "node:util";
import { readSettingFile, SETTINGS, type SettingSpec } from "../config.js";
import { type LocalFleet, NODE_SETTING_VARS, startLocalFleet } from "../topology/index.js";
import { redactUrl } from "../topology/local-fleet.js";

const USAGE = `usage: launcher-fleet fleet [--nodes 3] [--port 5559] [--lb-port 8080] [--redis-url URL]
                             [--scratch-path DIR] [--no-haproxy]
Node settings (LAUNCHER_KEY_PREFIX, LAUNCHER_LOG_LEVEL, ...) set in the environment apply to every node.`;

/**
 * Settings the fleet sets per node or takes as options, so they are not passed through as-is (nor
 * their `_FILE` forms, which a node refuses beside the direct form the fleet sets).
 */
const NOT_PASSED_THROUGH = new Set(
  [
    SETTINGS.nodeId,
    SETTINGS.port,
    SETTINGS.host,
    SETTINGS.advertiseIp,
    SETTINGS.redisUrl,
    SETTINGS.authSecret,
    SETTINGS.scratchPath,
  ].flatMap((s: SettingSpec<unknown>) => [s.env, ...(s.fileForm ? [s.fileForm.env] : [])]),
);

/** A setting from this shell's environment, or from the file its `_FILE` form names. */
function fromEnv(env: NodeJS.ProcessEnv, spec: SettingSpec<unknown>): string | undefined {
  const file = spec.fileForm ? env[spec.fileForm.env] : undefined;
  if (file) {
    if (env[spec.env]) throw new UsageError(`${spec.env} and ${spec.fileForm!.env} are both set: set one`);
    return readSettingFile(spec.fileForm!.env, file);
  }
  return env[spec.env] || undefined;
}

function positiveInt(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 65_535)
    throw new UsageError(`--${name} must be a whole number, got "${raw}"`);
  return n;
}

class UsageError extends Error {}

/** Node settings from this shell's environment, for every node. */
function passedThroughEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of NODE_SETTING_VARS) {
    const value = env[name];
    if (value !== undefined && value !== "" && !NOT_PASSED_THROUGH.has(name)) out[name] = value;
  }
  return out;
}

function parse(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      nodes: { type: "string" },
      port: { type: "string" },
      "lb-port": { type: "string" },
      "redis-url": { type: "string" },
      "scratch-path": { type: "string" },
      "no-haproxy": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  const env = process.env;
  return {
    help: values.help === true,
    nodes: positiveInt("nodes", values.nodes, 3),
    basePort: positiveInt("port", values.port, 5559),
    lbPort: positiveInt("lb-port", values["lb-port"], 8080),
    redisUrl: values["redis-url"] ?? fromEnv(env, SETTINGS.redisUrl),
    secret: fromEnv(env, SETTINGS.authSecret),
    scratchPath: values["scratch-path"] ?? fromEnv(env, SETTINGS.scratchPath),
    haproxy: values["no-haproxy"] ? false : undefined,
  };
}

/** Shell-quotes a value for the copy-paste examples. */
const sh = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", "'\\''")}'`);

async function describe(fleet: LocalFleet): Promise<string> {
  const token = await fleet.adminToken("12h");
  const url = fleet.lbUrl ?? fleet.nodes[0]!.url;
  const other = fleet.nodes[fleet.nodes.length - 1]!.url;
  const lines = [
    "",
    "launcher-fleet is running:",
    ...fleet.nodes.map((n) => `  ${n.id.padEnd(8)} ${n.url}   log: ${n.logFile}`),
    fleet.lbUrl
      ? `  HAProxy  ${fleet.lbUrl}   stats: ${fleet.lbStatsUrl}`
      : "  HAProxy  not running (not installed)",
    `  Redis    ${redactUrl(fleet.redisUrl)}`,
    `  scratch  ${fleet.scratchPath}`,
    "",
    "Every job runs as your own user (LAUNCHER_UNPRIVILEGED=1: a single-user development fleet; a",
    "multi-user host runs its nodes as root so each job runs as its user; see docs/security.md).",
    "",
    fleet.secretFile
      ? `secret: ${fleet.secretFile.path} (mode 0600; ${fleet.secretFile.created ? "new" : "the same as at the last start"}: tokens stay valid across restarts)`
      : "secret: LAUNCHER_AUTH_SECRET from the environment",
    fleet.secretFile
      ? `  a token for someone else: LAUNCHER_AUTH_SECRET_FILE=${sh(fleet.secretFile.path)} node dist/cli.js token --user NAME`
      : "  a token for someone else: node dist/cli.js token --user NAME",
    `admin token (12 h): ${token}`,
    "",
    `Web console: ${url}/ui/#token=${token}`,
    `API reference (Swagger): ${url}/docs`,
    "",
    "Try:",
    `  LAUNCHER_URL=${url} LAUNCHER_TOKEN=${token} node dist/cli.js jobs submit --command ${sh("echo hello")}`,
    `  LAUNCHER_URL=${url} LAUNCHER_TOKEN=${token} node dist/cli.js jobs submit --wait --command ${sh("echo hello")}`,
    `  LAUNCHER_URL=${other} LAUNCHER_TOKEN=${token} node dist/cli.js jobs list`,
    `  LAUNCHER_URL=${url} LAUNCHER_TOKEN=${token} node dist/cli.js nodes`,
    `  curl -H ${sh(`Authorization: Bearer ${token}`)} ${url}/nodes`,
    "",
    "The fleet restarts a crashed node (after 1 s, then longer) and its Redis if it dies, and says so here.",
    "Ctrl-C stops the fleet (nodes drain; running jobs are picked up again by the next start).",
    "",
  ];
  return lines.join("\n");
}

/** Resolves with the first of SIGINT / SIGTERM. */
function nextSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals) => {
      process.off("SIGINT", on);
      process.off("SIGTERM", on);
      resolve(sig);
    };
    process.on("SIGINT", on);
    process.on("SIGTERM", on);
  });
}

export async function runFleet(argv: string[]): Promise<number> {
  let opts: ReturnType<typeof parse>;
  try {
    opts = parse(argv);
  } catch (err) {
    process.stderr.write(`fleet: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (opts.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  // The terminal's Ctrl-C also ends a pipe reader (`npm run fleet | tee log`): a closed output
  // must not crash us before the children are stopped.
  for (const out of [process.stdout, process.stderr]) out.on("error", () => undefined);
  const log = (line: string) => process.stderr.write(`[fleet] ${line}\n`);
  // Listen before starting, so a Ctrl-C during startup also stops what was started.
  const signal = nextSignal();
  const { help: _help, ...fleetOpts } = opts;
  const starting = startLocalFleet({
    ...fleetOpts,
    env: passedThroughEnv(process.env),
    log,
    supervise: true,
    persistSecret: true,
  });
  const first = await Promise.race([starting.then((fleet) => ({ fleet })), signal.then((sig) => ({ sig }))]);
  const fleet = "fleet" in first ? first.fleet : await starting;
  if ("sig" in first) {
    log(`${first.sig} during startup: stopping`);
  } else {
    process.stdout.write(await describe(fleet));
    log(`${await signal}: stopping the fleet`);
  }
  // A second Ctrl-C exits at once; the exit hook of startLocalFleet still signals every child.
  const again = () => {
    log("second signal: exiting now");
    process.exit(130);
  };
  process.once("SIGINT", again);
  process.once("SIGTERM", again);
  await fleet.stop();
  process.off("SIGINT", again);
  process.off("SIGTERM", again);
  log("stopped");
  return 0;
}
