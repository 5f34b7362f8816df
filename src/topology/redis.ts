// A private redis-server on loopback: for a local fleet, persistent (AOF) so that a fleet restarted
// on the same scratch directory finds its jobs again and `restartRedis()` loses nothing
// acknowledged; the tests' and benchmarks' servers are started here too (memory only, or with an
// ACL file).
import { mkdirSync } from "node:fs";
import { join } from "node:path";
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
  /** Where redis-server's output goes; default `<dir>/redis-server.log`. */
  logFile?: string;
  env?: NodeJS.ProcessEnv;
  /** AOF with an fsync per write (default), or memory only (`false`). */
  persistence?: boolean;
  /** An ACL file to load (`--aclfile`), e.g. the output of ops/redis-acl.sh. */
  aclFile?: string;
}

const HOST = "127.0.0.1";

function redisArgs(opts: PrivateRedisOptions): string[] {
  // AOF only (no RDB snapshots), fsync on every write: a SIGKILLed Redis loses nothing that a
  // node acknowledged, which failover tests rely on. A local fleet's write rate is low.
  const persistence =
    opts.persistence === false ? ["--appendonly", "no"] : ["--appendonly", "yes", "--appendfsync", "always"];
  return [
    ...["--port", String(opts.port), "--bind", HOST, "--dir", opts.dir, "--save", ""],
    ...persistence,
    ...["--protected-mode", "no", "--daemonize", "no", "--loglevel", "notice"],
    ...(opts.aclFile ? ["--aclfile", opts.aclFile] : []),
  ];
}

export async function startPrivateRedis(opts: PrivateRedisOptions): Promise<PrivateRedis> {
  mkdirSync(opts.dir, { recursive: true });
  const logFile = opts.logFile ?? join(opts.dir, "redis-server.log");
  let child: Child | undefined;
  const launch = async () => {
    const started = spawnLogged("redis-server", redisArgs(opts), { env: opts.env ?? process.env, logFile });
    child = started;
    // Replaying a large AOF answers -LOADING for a while, hence the generous timeout.
    await waitFor(`redis-server on port ${opts.port}`, () => redisPing(HOST, opts.port), {
      timeoutMs: 30_000,
      failure: () =>
        started.hasExited()
          ? `exited before answering PING; see ${logFile}\n${tailFile(logFile, 10)}`
          : undefined,
    });
  };
  const stop = async (signal: NodeJS.Signals = "SIGTERM") => {
    if (!child) return;
    const exit = await stopChild(child, signal, 10_000);
    if (exit.code !== 0 && signal === "SIGTERM" && exit.signal === null) {
      throw new Error(`redis-server stopped with ${describeExit(exit)}; see ${logFile}`);
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
