// Waiting for servers to come up: HTTP readiness endpoints and Redis PING.
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

const POLL_MS = 100;

/** One GET; true on a 200. Network errors and timeouts count as "not yet". */
export async function isReady(url: string, timeoutMs = 1_000): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}

export interface WaitOptions {
  timeoutMs: number;
  /** Checked between polls: a reason to give up early (e.g. the process already exited). */
  failure?: () => string | undefined;
}

/** Polls until `check` is true; throws with `what` on timeout or when `failure` says so. */
export async function waitFor(what: string, check: () => Promise<boolean>, opts: WaitOptions): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    if (await check()) return;
    const failed = opts.failure?.();
    if (failed) throw new Error(`${what}: ${failed}`);
    if (Date.now() > deadline) throw new Error(`${what}: not ready after ${opts.timeoutMs} ms`);
    await sleep(POLL_MS);
  }
}

/** True when a Redis server answers PING on host:port. */
export function redisPing(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, host);
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1_000, () => done(false));
    sock.once("connect", () => sock.write("PING\r\n"));
    // NOAUTH: the server answers, but its default user is off (an ACL file was loaded).
    sock.once("data", (d) => done(/^(\+PONG|-NOAUTH)/.test(d.toString())));
    sock.once("error", () => done(false));
  });
}
