// TCP port helpers for starting servers on this machine.
import net from "node:net";

/** True when `port` can be bound on `host` right now. */
export function isPortFree(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once("error", () => resolve(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** A port the OS considers free on `host` (it may be taken again before it is used). */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen({ port: 0, host }, () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * The first port p such that p .. p+count-1 are all free on `host`, searched upwards from a
 * random start in 20000-40000 (below Linux's ephemeral range, so outgoing connections rarely
 * collide). Tests use it to give a fleet consecutive ports.
 */
export async function findFreePortRange(count: number, host = "127.0.0.1"): Promise<number> {
  const start = 20_000 + Math.floor(Math.random() * 20_000);
  for (let base = start; base < start + 2_000; base += count) {
    const checks = await Promise.all(Array.from({ length: count }, (_, i) => isPortFree(base + i, host)));
    if (checks.every(Boolean)) return base;
  }
  throw new Error(`no ${count} consecutive free ports found on ${host}`);
}
