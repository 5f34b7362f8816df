// `launcher-fleet completion bash`: a bash completion script for commands, subcommands and flags
// (from the same table as the help texts). `source <(launcher-fleet completion bash)`, or save it
// under /etc/bash_completion.d/.
import { JOBS, NODES } from "./help.js";

const GLOBAL_FLAGS = ["--url", "--token", "--json", "--table", "--help"];
const COMMANDS = ["node", "fleet", "plugin", "token", "jobs", "nodes", "cluster-info", "completion", "help"];
const TOKEN_FLAGS = ["--user", "--group", "--ttl", "--issuer", "--audience", "--key", "--secret", "--help"];
const FLEET_FLAGS = [
  "--nodes",
  "--port",
  "--lb-port",
  "--redis-url",
  "--scratch-path",
  "--no-haproxy",
  "--help",
];

export function bashCompletion(): string {
  const jobsSubs = [...Object.keys(JOBS)].join(" ");
  const jobsFlags = Object.entries(JOBS)
    .map(([sub, h]) => `      ${sub}) flags="${[...h.flags, ...GLOBAL_FLAGS].join(" ")}" ;;`)
    .join("\n");
  return `# bash completion for launcher-fleet: source <(launcher-fleet completion bash)
_launcher_fleet() {
  local cur prev words cword
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  local cmd="" sub="" i w
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    case "$w" in
      --url|--token) ((i++)); continue ;;
      -*) continue ;;
    esac
    if [[ -z $cmd ]]; then cmd="$w"; elif [[ -z $sub ]]; then sub="$w"; fi
  done
  case "$prev" in
    --url|--token|--command|--exe|--arg|--name|--tag|--env|--port|--stdin|--user|--fields|--start-time|--end-time|--group|--ttl|--issuer|--audience|--secret|--nodes|--lb-port|--redis-url)
      return ;;
    --mount|--workdir|--stdout|--stderr|--key|--scratch-path)
      COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --type) COMPREPLY=($(compgen -W "stdout stderr both" -- "$cur")); return ;;
    --status) COMPREPLY=($(compgen -W "Pending Running Suspended Finished Failed Killed Canceled" -- "$cur")); return ;;
  esac
  local words_list=""
  case "$cmd" in
    "") words_list="${COMMANDS.join(" ")} ${GLOBAL_FLAGS.join(" ")}" ;;
    jobs)
      if [[ -z $sub ]]; then words_list="${jobsSubs} ${GLOBAL_FLAGS.join(" ")}"
      else
        local flags="${GLOBAL_FLAGS.join(" ")}"
        case "$sub" in
${jobsFlags}
        esac
        if [[ $sub == control && $prev != control ]]; then flags="suspend resume stop kill cancel $flags"; fi
        words_list="$flags"
      fi ;;
    nodes)
      if [[ -z $sub ]]; then words_list="${Object.keys(NODES).join(" ")} --watch ${GLOBAL_FLAGS.join(" ")}"
      else words_list="--watch ${GLOBAL_FLAGS.join(" ")}"; fi ;;
    cluster-info) words_list="${GLOBAL_FLAGS.join(" ")}" ;;
    token) words_list="${TOKEN_FLAGS.join(" ")}" ;;
    fleet) words_list="${FLEET_FLAGS.join(" ")}" ;;
    completion) [[ -z $sub ]] && words_list="bash" ;;
    help) [[ -z $sub ]] && words_list="node fleet plugin token jobs nodes cluster-info" ;;
    node|plugin) words_list="--help" ;;
  esac
  COMPREPLY=($(compgen -W "$words_list" -- "$cur"))
}
complete -F _launcher_fleet launcher-fleet
`;
}

export function runCompletion(argv: string[]): number {
  const [shell] = argv;
  if (shell === "--help" || shell === "-h") {
    process.stdout.write(
      "usage: launcher-fleet completion bash\n\nprints a bash completion script: source <(launcher-fleet completion bash)\n",
    );
    return 0;
  }
  if (shell !== "bash") {
    process.stderr.write(`completion: ${shell ? `"${shell}" is not supported` : "name a shell"} (bash)\n`);
    return 2;
  }
  process.stdout.write(bashCompletion());
  return 0;
}
