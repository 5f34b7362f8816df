#!/usr/bin/env node
// The launcher-fleet command line: run a node or a local fleet, mint tokens, talk to the API.
import { runClient } from "./cli/client.js";
import { runFleet } from "./cli/fleet.js";
import { runNode } from "./cli/node-command.js";
import { runPlugin } from "./plugin/command.js";
import { runToken } from "./cli/token.js";

const USAGE = `usage: launcher-fleet <command> [options]

commands:
  node                 run a node (settings from LAUNCHER_* variables or --flags of the same names)
  fleet                run a local fleet: redis-server (if none configured), 3 nodes, HAProxy if installed
  token --user U [--group G]... [--ttl 1h]
                       print a JWT signed with LAUNCHER_AUTH_SECRET
  jobs submit|list|get|control|status|output ...
  nodes                list the fleet's nodes
client options: --url (LAUNCHER_URL, default http://127.0.0.1:5559) --token (LAUNCHER_TOKEN)`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "node":
      return runNode(rest);
    case "fleet":
      return runFleet(rest);
    case "plugin":
      return runPlugin(rest);
    case "token":
      return runToken(rest);
    case "jobs":
    case "nodes":
      return runClient(command, rest);
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
