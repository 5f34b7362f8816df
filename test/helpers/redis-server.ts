// Starts and stops real redis-server processes for tests (never a mock).
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const REDIS_INSTALL_HINT = "sudo apt-get update && sudo apt-get install -y redis-server";

export interface RedisServer {
  port: number;
  url: string;
  dir: string;
  /** Stops the server (SIGTERM, then SIGKILL). With persistence on, data is saved first. */
  stop(): Promise<void>;
  /** Starts it again on the same port and directory (for restart tests). */
  restart(): Promise<void>;
}

export function assertRedisInstalled(): void {
  try {
    execFileSync("redis-server", ["--version"], { stdio: "ignore" });
  } catch {
    throw new Error(
      `redis-server is not installed or not on PATH. Install it with:\n  ${REDIS_INSTALL_HINT}`,
    );
  }
}

export async function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const sock = net.connect(port, "127.0.0.1");
      sock.once("connect", () => {
        sock.write("PING\r\n");
      });
      sock.once("data", (d) => {
        sock.destroy();
        // NOAUTH: the server answers, but its default user is off (an ACL file was loaded).
        resolve(/PONG|NOAUTH/.test(d.toString()));
      });
      sock.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not start`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export interface RedisOptions {
  /** Turn on AOF persistence (appendfsync always) so restarts keep every acknowledged write. */
  persistence?: boolean;
  port?: number;
  /** An ACL file to load (`--aclfile`), e.g. the output of ops/redis-acl.sh. */
  aclFile?: string;
}

export async function startRedis(opts: RedisOptions = {}): Promise<RedisServer> {
  assertRedisInstalled();
  const port = opts.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), "launcher-redis-"));
  const args = [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--dir",
    dir,
    "--save",
    "",
    "--appendonly",
    opts.persistence ? "yes" : "no",
    "--appendfsync",
    "always",
    "--protected-mode",
    "no",
    "--loglevel",
    "warning",
    ...(opts.aclFile ? ["--aclfile", opts.aclFile] : []),
  ];
  let proc: ChildProcess | undefined;
  const launch = async () => {
    proc = spawn("redis-server", args, { stdio: "ignore" });
    await waitForPort(port, 10_000);
  };
  await launch();
  const stop = async () => {
    const p = proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((r) => p.once("exit", () => r()));
    p.kill("SIGTERM");
    const t = setTimeout(() => p.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(t);
  };
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    stop: async () => {
      await stop();
    },
    restart: async () => {
      await stop();
      await launch();
    },
  };
}

export function removeRedisDir(server: RedisServer): void {
  rmSync(server.dir, { recursive: true, force: true });
}
