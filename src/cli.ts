#!/usr/bin/env node
// The launcher-fleet command line: run a node or a local fleet, mint tokens, talk to the API.
// Each command loads only its own modules: client commands start without fastify, ioredis and the
// runner (several times faster), which matters for scripts calling the CLI in a loop.

const USAGE = `usage: launcher-fleet <command> [options]

commands:
  node                 run a node (settings from LAUNCHER_* variables or --flags of the same names)
  fleet                run a local fleet: redis-server (if none configured), 3 nodes, HAProxy if installed
  plugin               run a node as a Posit Job Launcher plugin over stdin/stdout
  token --user U [--group G]... [--ttl 1h] [--issuer I] [--audience A] [--key FILE]
                       print a JWT: HS256 with LAUNCHER_AUTH_SECRET (or LAUNCHER_AUTH_SECRET_FILE),
                       or RS256/ES256 with the PEM private key --key FILE
  jobs submit|list|get|control|status|output|wait|network|resources ...
                       submit jobs (--wait follows one to its end), list, inspect and control them
  nodes [list] [-w]    list the fleet's nodes (--watch: and follow their changes)
  nodes drain ID       drain a node (admins)
  cluster-info         queues, placement constraints, resource limits and profiles
  completion bash      print a bash completion script (source <(launcher-fleet completion bash))

global options of the API commands (jobs, nodes, cluster-info), before or after the command:
  --url URL (LAUNCHER_URL, default http://127.0.0.1:5559)   --token JWT (LAUNCHER_TOKEN)
  --json (JSON output; the default when stdout is not a terminal)   --table (tables even when piped)

\`launcher-fleet <command> --help\` (or \`launcher-fleet help <command> [<subcommand>]\`) says more.`;

const CLIENT_COMMANDS = new Set(["jobs", "nodes", "cluster-info"]);
/** Global options of the client commands that take a value: skipped when looking for the command. */
const VALUE_GLOBALS = new Set(["--url", "--token"]);
const HELP = new Set(["--help", "-h"]);

/** The command's position: the first argument that is neither a global option nor its value. */
function commandIndex(argv: string[]): number {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (VALUE_GLOBALS.has(a)) i++;
    else if (a.startsWith("--url=") || a.startsWith("--token=") || a === "--json" || a === "--table")
      continue;
    else return i;
  }
  return -1;
}

async function nodeUsage(): Promise<string> {
  const { SETTINGS } = await import("./config.js");
  const specs = Object.values(SETTINGS) as { env: string; flag: string; doc: string }[];
  const width = Math.max(...specs.map((s) => s.flag.length)) + 2;
  const lines = specs.map((s) => `  --${s.flag.padEnd(width)} ${s.env}: ${s.doc.replaceAll("`", "")}`);
  return (
    "usage: launcher-fleet node [--FLAG VALUE]...\n\n" +
    "Runs one node in the foreground; SIGTERM drains it (a second signal exits at once). Every setting\n" +
    "is a LAUNCHER_* variable or the flag of the same name (a flag wins); secrets also have _FILE forms\n" +
    "(--auth-secret-file, --redis-url-file). docs/http-api.md and the README have the full table.\n\n" +
    `${lines.join("\n")}\n`
  );
}

async function main(argv: string[]): Promise<number> {
  const at = commandIndex(argv);
  const command = at < 0 ? undefined : argv[at];
  // The command's arguments; global options given before it go along (client commands take them anywhere).
  const rest = at < 0 ? argv : [...argv.slice(0, at), ...argv.slice(at + 1)];
  const after = at < 0 ? [] : argv.slice(at + 1);
  const wantsHelp = after.some((a) => HELP.has(a)) && !after.includes("--");
  if (command !== undefined && CLIENT_COMMANDS.has(command)) {
    return (await import("./cli/client.js")).runClient(command as "jobs" | "nodes" | "cluster-info", rest);
  }
  switch (command) {
    case "node":
      if (wantsHelp) {
        process.stdout.write(await nodeUsage());
        return 0;
      }
      return (await import("./cli/node-command.js")).runNode(after);
    case "fleet":
      return (await import("./cli/fleet.js")).runFleet(after);
    case "plugin":
      return (await import("./plugin/command.js")).runPlugin(after);
    case "token":
      return (await import("./cli/token.js")).runToken(after);
    case "completion":
      return (await import("./cli/completion.js")).runCompletion(after);
    case "help": {
      const [topic, ...sub] = after;
      if (topic === undefined) break;
      return main([topic, ...sub, "--help"]);
    }
    case undefined:
    case "--help":
    case "-h":
      break;
    default:
      process.stderr.write(`unknown command "${command}"\n${USAGE}\n`);
      return 2;
  }
  const asked = command !== undefined || argv.some((a) => HELP.has(a));
  (asked ? process.stdout : process.stderr).write(`${USAGE}\n`);
  return asked ? 0 : 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
