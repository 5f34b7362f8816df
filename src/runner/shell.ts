import { LaunchError, type LaunchSpec } from "./types.js";

/** POSIX single-quote escaping: the shell takes everything literally, `'` becomes `'\''`. */
export function shellQuote(arg: string): string {
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

/**
 * The argv the supervisor execs, following the Local plugin: a `command` is shell script (left
 * unquoted) with the args quoted and appended; an `exe` is executed directly with the args as-is.
 */
export function buildArgv(spec: Pick<LaunchSpec, "command" | "exe" | "args">): string[] {
  const args = spec.args ?? [];
  const hasCommand = spec.command !== undefined && spec.command !== "";
  const hasExe = spec.exe !== undefined && spec.exe !== "";
  if (hasCommand === hasExe) {
    throw new LaunchError("exactly one of command and exe must be given");
  }
  if (hasCommand) {
    return ["/bin/sh", "-c", [spec.command, ...args.map(shellQuote)].join(" ")];
  }
  return [spec.exe as string, ...args];
}
