// TCP port helpers for starting servers on this machine.
import { readFileSync } from "node:fs";
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

/** Where Linux's default ephemeral range starts (`net.ipv4.ip_local_port_range`). */
const DEFAULT_EPHEMERAL_LOW = 32_768;
const RANGE_FLOOR = 20_000;
/** How far upwards from its random start findFreePortRange searches. */
const SEARCH_SPAN = 2_000;

/**
 * The lowest port the OS hands to outgoing connections (Linux: the first number of
 * /proc/sys/net/ipv4/ip_local_port_range); its default elsewhere.
 */
export function ephemeralPortLow(): number {
  try {
    const low = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 0 ? low : DEFAULT_EPHEMERAL_LOW;
  } catch {
    return DEFAULT_EPHEMERAL_LOW;
  }
}

/**
 * The first port p such that p .. p+count-1 are all free on `host`, searched upwards from a
 * random start between 20000 and the ephemeral range's start less the search span. Below the
 * ephemeral range, because a port checked free there can be taken by any outgoing connection
 * before the server binds it (a bench fleet node once failed to start with EADDRINUSE on 35072).
 * Tests use it to give a fleet consecutive ports.
 */
export async function findFreePortRange(count: number, host = "127.0.0.1"): Promise<number> {
  const width = Math.max(1, ephemeralPortLow() - SEARCH_SPAN - RANGE_FLOOR);
  const start = RANGE_FLOOR + Math.floor(Math.random() * width);
  for (let base = start; base < start + SEARCH_SPAN; base += count) {
    const checks = await Promise.all(Array.from({ length: count }, (_, i) => isPortFree(base + i, host)));
    if (checks.every(Boolean)) return base;
  }
  throw new Error(`no ${count} consecutive free ports found on ${host}`);
}
