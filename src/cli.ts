#!/usr/bin/env node
// The launcher-fleet command line: run a node or a local fleet, mint tokens, talk to the API.
// Each command loads only its own modules: client commands start without fastify, ioredis and the
// runner (several times faster), which matters for scripts calling the CLI in a loop.

const USAGE = `usage: launcher-fleet <command> [options]

commands:
  node                 run a node (settings from LAUNCHER_* variables or --flags of the same names)
  fleet                run a local fleet: redis-server (if none configured), 3 nodes, HAProxy if installed
  plugin               run a node as a Posit Job Launcher plugin over stdin/stdout (--help for its options)
  token --user U [--group G]... [--ttl 1h] [--issuer I] [--audience A] [--key FILE]
                       print a JWT: HS256 with LAUNCHER_AUTH_SECRET (or LAUNCHER_AUTH_SECRET_FILE),
                       or RS256/ES256 with the PEM private key --key FILE
  jobs submit|list|get|control|status|output ...
                       (list: --tag T... --status S... --start-time T --end-time T --fields F,... --user U)
  nodes                list the fleet's nodes
client options: --url (LAUNCHER_URL, default http://127.0.0.1:5559) --token (LAUNCHER_TOKEN)`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "node":
      return (await import("./cli/node-command.js")).runNode(rest);
    case "fleet":
      return (await import("./cli/fleet.js")).runFleet(rest);
    case "plugin":
      return (await import("./plugin/command.js")).runPlugin(rest);
    case "token":
      return (await import("./cli/token.js")).runToken(rest);
    case "jobs":
    case "nodes":
      return (await import("./cli/client.js")).runClient(command, rest);
    case undefined:
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(`${USAGE}\n`);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`unknown command "${command}"\n${USAGE}\n`);
      return 2;
  }
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
