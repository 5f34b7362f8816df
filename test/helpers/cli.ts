// The built CLI as a child process (`node dist/cli.js …`), without blocking the test process (an
// in-process node may be serving the CLI's requests).
import { spawn } from "node:child_process";
import { until } from "./nodes.js";

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node dist/cli.js …` with only PATH and `env`; killed after `timeoutMs`. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 20_000): Promise<CliResult> {
  return runProgram(process.execPath, ["dist/cli.js", ...args], env, timeoutMs);
}

/** Runs a program with only PATH and `env`, collecting its output; killed after `timeoutMs`. */
export function runProgram(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 20_000,
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: { PATH: process.env.PATH, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export interface CliNode {
  url: string;
  /** Sends `signal` and waits for the process to exit. */
  stop(signal: NodeJS.Signals): Promise<void>;
}

/**
 * Starts `node dist/cli.js node` on 127.0.0.1:`port` with only PATH and `env`, and waits (20 s)
 * for `/readyz` to answer 200; an early exit fails with the node's stderr.
 */
export async function startCliNode(port: number, env: NodeJS.ProcessEnv): Promise<CliNode> {
  const child = spawn(process.execPath, ["dist/cli.js", "node"], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    stderr += d;
  });
  const url = `http://127.0.0.1:${port}`;
  const stop = async (signal: NodeJS.Signals) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill(signal);
    await exited;
  };
  try {
    await until(
      async () => {
        if (child.exitCode !== null) throw new Error(`node exited with ${child.exitCode}: ${stderr}`);
        return (await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200;
      },
      { timeoutMs: 20_000, everyMs: 100 },
    );
  } catch (err) {
    await stop("SIGKILL");
    throw err;
  }
  return { url, stop };
}
