// Usage texts of the client commands: `--help` anywhere prints the one for the (sub)command given,
// and the bash completion is derived from the same table.

export const GLOBAL_OPTIONS = `global options (before or after the command):
  --url URL     a node or the load balancer (LAUNCHER_URL, default http://127.0.0.1:5559)
  --token JWT   the bearer token (LAUNCHER_TOKEN); \`launcher-fleet token\` mints one
  --json        JSON output (the default when stdout is not a terminal)
  --table       tables and text even when stdout is not a terminal
  -h, --help    help for the command`;

export interface SubcommandHelp {
  usage: string;
  about: string;
  /** Flags, for completion. */
  flags: string[];
}

export const JOBS: Record<string, SubcommandHelp> = {
  submit: {
    usage:
      "jobs submit (--command CMD | --exe PATH) [--arg A]... [--name N] [--tag T]... [--env NAME=VALUE]...\n" +
      "            [--mount SRC[:DST[:ro|rw]]]... [--port PUBLISHED[:TARGET][/PROTO]]... [--stdin TEXT]\n" +
      "            [--workdir DIR] [--stdout FILE] [--stderr FILE] [--user U] [--wait]",
    about:
      "submit a job; prints it (its id first). --wait follows it to its end like `docker run`: its output\n" +
      "goes to stdout and stderr as it comes, and the exit status is the job's (Finished: its exit code;\n" +
      "Failed: its exit code, else 1; Killed: 137; Canceled: 1; the reason is printed on stderr). With\n" +
      "--wait --json, the final job is printed instead of the output.",
    flags: [
      "--command",
      "--exe",
      "--arg",
      "--name",
      "--tag",
      "--env",
      "--mount",
      "--port",
      "--stdin",
      "--workdir",
      "--stdout",
      "--stderr",
      "--user",
      "--wait",
    ],
  },
  list: {
    usage:
      "jobs list [--tag T]... [--status S]... [--start-time TIME] [--end-time TIME] [--fields F,...] [--user U]",
    about:
      "list jobs (every tag must match; any status). --user is for admins: a user or '*'.\n" +
      "--since and --until are older names of --start-time and --end-time.",
    flags: ["--tag", "--status", "--start-time", "--end-time", "--fields", "--user"],
  },
  get: { usage: "jobs get ID [--fields F,...]", about: "show one job", flags: ["--fields"] },
  control: {
    usage: "jobs control ID suspend|resume|stop|kill|cancel",
    about: "suspend, resume, stop (SIGTERM), kill (SIGKILL) or cancel (not yet running) a job",
    flags: [],
  },
  status: {
    usage: "jobs status [ID]",
    about: "follow status changes of one job (until its end), or of every job you can see (no ID, or '*')",
    flags: [],
  },
  output: {
    usage: "jobs output ID [--type stdout|stderr|both]",
    about:
      "print a job's output from the start, following it while the job runs: the job's stdout on stdout,\n" +
      "its stderr on stderr. --json prints the stream's frames ({seqId, output, outputType}) instead.",
    flags: ["--type"],
  },
  wait: {
    usage: "jobs wait ID",
    about: "wait for a job to end; prints it, and exits with the job's exit status (as `jobs submit --wait`)",
    flags: [],
  },
  network: {
    usage: "jobs network ID",
    about: "the host and IP addresses of the node running a job",
    flags: [],
  },
  resources: {
    usage: "jobs resources ID",
    about:
      "follow a running job's resource use (CPU %, CPU time, resident and virtual memory) until it ends\n" +
      "(also `jobs resource`)",
    flags: [],
  },
};

export const NODES: Record<string, SubcommandHelp> = {
  list: {
    usage: "nodes [list] [--watch]",
    about:
      "list the fleet's nodes: status, address, running jobs and slots, last heartbeat. --watch (-w)\n" +
      "follows: the list, then a line for each change (piped: the stream's JSON lines)",
    flags: ["--watch"],
  },
  drain: {
    usage: "nodes drain ID",
    about:
      "ask node ID to drain (admins only): it stops taking jobs, gives its queued work back and exits\n" +
      "after LAUNCHER_DRAIN_MS; its running jobs keep running",
    flags: [],
  },
};

export const CLUSTER_INFO: SubcommandHelp = {
  usage: "cluster-info",
  about: "the fleet's queues, placement constraints, resource limits and profiles, config options",
  flags: [],
};

function block(h: SubcommandHelp): string {
  return `usage: launcher-fleet ${h.usage}\n\n${h.about}\n\n${GLOBAL_OPTIONS}\n`;
}

function group(name: string, subs: Record<string, SubcommandHelp>): string {
  const lines = Object.values(subs).map((h) => `  launcher-fleet ${h.usage.split("\n")[0]}`);
  return `usage: launcher-fleet ${name} <subcommand> ...\n\n${lines.join("\n")}\n\n\`launcher-fleet ${name} <subcommand> --help\` says more.\n\n${GLOBAL_OPTIONS}\n`;
}

/** The help text for `command [sub]`, or undefined for an unknown subcommand. */
export function helpFor(command: string, sub?: string): string | undefined {
  if (command === "cluster-info") return block(CLUSTER_INFO);
  const subs = command === "jobs" ? JOBS : command === "nodes" ? NODES : undefined;
  if (!subs) return undefined;
  if (sub === undefined) return group(command, subs);
  const h = subs[sub === "resource" || sub === "resource-util" ? "resources" : sub];
  return h ? block(h) : undefined;
}
