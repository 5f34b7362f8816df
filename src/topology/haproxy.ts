// HAProxy for a local fleet. ops/haproxy.cfg is the one source of the load-balancer settings
// (timeouts, checks, retries, balance); the loopback config is that file with only its addresses
// replaced: the `bind` line of each section, and the `server` lines of the nodes' backend.
import { readFileSync, writeFileSync } from "node:fs";
import { HAPROXY_CFG_PATH } from "./paths.js";
import { type Child, spawnLogged, stopChild, tailFile } from "./process.js";
import { isReady, waitFor } from "./readiness.js";

/** Section names in ops/haproxy.cfg that the renderer rewrites. */
export const FRONTEND_SECTION = "frontend launcher";
export const BACKEND_SECTION = "backend launcher_nodes";
export const STATS_SECTION = "listen stats";

export interface HaproxyServer {
  name: string;
  /** `ip:port` */
  address: string;
}

export interface HaproxyAddresses {
  /** Frontend bind address, e.g. `127.0.0.1:8080`. */
  bind: string;
  /** Stats page bind address; without it the stats section is left out. */
  statsBind?: string;
  servers: HaproxyServer[];
}

/** A section header: an unindented keyword (global, defaults, frontend, backend, listen) and name. */
function sectionOf(line: string): string | undefined {
  if (/^\s/.test(line) || line.trim() === "" || line.startsWith("#")) return undefined;
  return line.trim().split(/\s+/).slice(0, 2).join(" ");
}

const keyword = (line: string) => line.trim().split(/\s+/)[0];

/**
 * Renders `template` (the text of ops/haproxy.cfg) with other addresses. Every other line is kept
 * as written. Throws when a section it must rewrite is missing, so the template and this code
 * cannot drift apart silently.
 */
export function renderHaproxyConfig(template: string, addrs: HaproxyAddresses): string {
  const out: string[] = [];
  const seen = new Set<string>();
  let section = "";
  let serversWritten = false;
  for (const line of template.split("\n")) {
    const header = sectionOf(line);
    if (header !== undefined) {
      section = header;
      seen.add(section);
    }
    if (section === STATS_SECTION && addrs.statsBind === undefined) continue;
    const indent = /^\s*/.exec(line)?.[0] ?? "";
    if (keyword(line) === "bind" && section === FRONTEND_SECTION) {
      out.push(`${indent}bind ${addrs.bind}`);
    } else if (keyword(line) === "bind" && section === STATS_SECTION) {
      out.push(`${indent}bind ${addrs.statsBind}`);
    } else if (keyword(line) === "server" && section === BACKEND_SECTION) {
      // All template servers are replaced by the given ones, at the first server's position.
      if (!serversWritten) out.push(...addrs.servers.map((s) => `${indent}server ${s.name} ${s.address}`));
      serversWritten = true;
    } else {
      out.push(line);
    }
  }
  for (const needed of [FRONTEND_SECTION, BACKEND_SECTION, ...(addrs.statsBind ? [STATS_SECTION] : [])]) {
    if (!seen.has(needed)) throw new Error(`HAProxy template has no "${needed}" section`);
  }
  if (!serversWritten) throw new Error(`HAProxy template has no server lines in "${BACKEND_SECTION}"`);
  return out.join("\n");
}

/** The loopback config: ops/haproxy.cfg with this machine's addresses. */
export function renderLoopbackConfig(addrs: HaproxyAddresses, templatePath = HAPROXY_CFG_PATH): string {
  const header = `# Generated from ${templatePath} by src/topology/haproxy.ts: edit that file, not this one.\n`;
  return header + renderHaproxyConfig(readFileSync(templatePath, "utf8"), addrs);
}

export interface RunningHaproxy {
  readonly url: string;
  readonly statsUrl: string;
  readonly configFile: string;
  readonly pid: number | undefined;
  stop(): Promise<void>;
}

export interface HaproxyOptions {
  binary: string;
  host: string;
  port: number;
  statsPort: number;
  servers: HaproxyServer[];
  configFile: string;
  logFile: string;
  env: NodeJS.ProcessEnv;
}

/** Writes the loopback config, checks it, runs `haproxy -db` and waits until it routes requests. */
export async function startHaproxy(opts: HaproxyOptions): Promise<RunningHaproxy> {
  const config = renderLoopbackConfig({
    bind: `${opts.host}:${opts.port}`,
    statsBind: `${opts.host}:${opts.statsPort}`,
    servers: opts.servers,
  });
  writeFileSync(opts.configFile, config);
  // -db: stay in the foreground (no daemon), so HAProxy is a child we can watch and stop.
  const child: Child = spawnLogged(opts.binary, ["-db", "-f", opts.configFile], {
    env: opts.env,
    logFile: opts.logFile,
  });
  const url = `http://${opts.host}:${opts.port}`;
  await waitFor(`HAProxy on ${url}`, () => isReady(`${url}/readyz`), {
    timeoutMs: 15_000,
    failure: () =>
      child.hasExited() ? `exited; see ${opts.logFile}\n${tailFile(opts.logFile, 10)}` : undefined,
  }).catch(async (err) => {
    await stopChild(child, "SIGKILL", 1_000);
    throw err;
  });
  return {
    url,
    statsUrl: `http://${opts.host}:${opts.statsPort}/`,
    configFile: opts.configFile,
    get pid() {
      return child.hasExited() ? undefined : child.pid;
    },
    // SIGTERM is HAProxy's hard stop: open client connections are closed at once, which is what
    // stopping a whole local fleet wants (the nodes behind it are going away too).
    stop: async () => {
      await stopChild(child, "SIGTERM", 5_000);
    },
  };
}

export interface ServerState {
  name: string;
  /** HAProxy's status column: UP, DOWN, "UP 1/2", "DOWN 1/2", MAINT, no check... */
  status: string;
}

/** Server states of the nodes' backend, from the stats page's CSV export. */
export async function haproxyServerStates(statsUrl: string): Promise<ServerState[]> {
  const res = await fetch(`${statsUrl.replace(/\/$/, "")}/;csv`, { signal: AbortSignal.timeout(2_000) });
  if (!res.ok) throw new Error(`HAProxy stats: HTTP ${res.status}`);
  const [headerLine = "", ...rows] = (await res.text()).trim().split("\n");
  const columns = headerLine.replace(/^# /, "").split(",");
  const col = (name: string) => columns.indexOf(name);
  const backend = BACKEND_SECTION.split(" ")[1];
  return rows
    .map((row) => row.split(","))
    .filter((f) => f[col("pxname")] === backend && !["FRONTEND", "BACKEND"].includes(f[col("svname")] ?? ""))
    .map((f) => ({ name: f[col("svname")] ?? "", status: f[col("status")] ?? "" }));
}
