// A private redis-server for a local fleet, persistent (AOF) so that a fleet restarted on the same
// scratch directory finds its jobs again, and `restartRedis()` loses nothing acknowledged.
import { mkdirSync } from "node:fs";
import { type Child, describeExit, spawnLogged, stopChild, tailFile } from "./process.js";
import { redisPing, waitFor } from "./readiness.js";

export interface PrivateRedis {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  readonly pid: number | undefined;
  /** Stops it (SIGTERM: AOF flushed, then exit) and starts it again on the same port and data. */
  restart(signal?: NodeJS.Signals): Promise<void>;
  stop(): Promise<void>;
}

export interface PrivateRedisOptions {
  dir: string;
  port: number;
  logFile: string;
  env: NodeJS.ProcessEnv;
}

const HOST = "127.0.0.1";

function redisArgs(dir: string, port: number): string[] {
  return [
    ...["--port", String(port), "--bind", HOST, "--dir", dir],
    // AOF only (no RDB snapshots), fsync on every write: a SIGKILLed Redis loses nothing that a
    // node acknowledged, which failover tests rely on. A local fleet's write rate is low.
    ...["--appendonly", "yes", "--appendfsync", "always", "--save", ""],
    ...["--protected-mode", "no", "--daemonize", "no", "--loglevel", "notice"],
  ];
}

export async function startPrivateRedis(opts: PrivateRedisOptions): Promise<PrivateRedis> {
  mkdirSync(opts.dir, { recursive: true });
  let child: Child | undefined;
  const launch = async () => {
    const started = spawnLogged("redis-server", redisArgs(opts.dir, opts.port), {
      env: opts.env,
      logFile: opts.logFile,
    });
    child = started;
    // Replaying a large AOF answers -LOADING for a while, hence the generous timeout.
    await waitFor(`redis-server on port ${opts.port}`, () => redisPing(HOST, opts.port), {
      timeoutMs: 30_000,
      failure: () =>
        started.hasExited()
          ? `exited before answering PING; see ${opts.logFile}\n${tailFile(opts.logFile, 10)}`
          : undefined,
    });
  };
  const stop = async (signal: NodeJS.Signals = "SIGTERM") => {
    if (!child) return;
    const exit = await stopChild(child, signal, 10_000);
    if (exit.code !== 0 && signal === "SIGTERM" && exit.signal === null) {
      throw new Error(`redis-server stopped with ${describeExit(exit)}; see ${opts.logFile}`);
    }
  };
  await launch();
  return {
    url: `redis://${HOST}:${opts.port}`,
    port: opts.port,
    dir: opts.dir,
    get pid() {
      return child && !child.hasExited() ? child.pid : undefined;
    },
    restart: async (signal = "SIGTERM") => {
      await stop(signal);
      await launch();
    },
    stop: () => stop(),
  };
}
