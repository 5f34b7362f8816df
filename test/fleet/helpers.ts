import { readdirSync, readFileSync } from "node:fs";
import net from "node:net";
import { Redis } from "ioredis";
import type { Settings } from "../../src/config.js";
import { api, type ChildNode, startTestNode, type TestNode, token, until } from "../helpers/nodes.js";
import { alive, killGroup } from "../helpers/procs.js";
import * as nodeJobs from "../node/helpers.js";

export type Json = Record<string, unknown>;

export interface StatusMsg {
  seqId: number;
  eventId: string;
  id: string;
  status: string;
  statusMessage?: string;
  resync?: true;
  error?: { code: number; name: string; message: string };
}

/**
 * Liveness timings for tests that are not about liveness: on a loaded machine a heartbeat can be
 * late by more than FAST's 500 ms, and a peer must not look offline to a forwarding node then.
 */
export const RELAXED = { offlineAfterMs: 5_000, lostAfterMs: 20_000 } as const;

/** Starts `n` in-process nodes on one prefix (in parallel) and waits until each sees all of them Online. */
export async function startFleet(
  prefix: string,
  n: number,
  overrides: Partial<Settings> = {},
): Promise<TestNode[]> {
  const started = await Promise.allSettled(Array.from({ length: n }, () => startTestNode(prefix, overrides)));
  const nodes = started.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  const failed = started.find((r) => r.status === "rejected");
  if (failed) {
    await closeAll(nodes);
    throw failed.reason;
  }
  await waitAllOnline(
    nodes.map((x) => x.url),
    nodes.map((x) => x.settings.nodeId),
  );
  return nodes;
}

/** Waits until every url's GET /nodes lists every id as online. */
export async function waitAllOnline(urls: string[], ids: string[], timeoutMs = 10_000): Promise<void> {
  await until(
    async () => {
      for (const url of urls) {
        const views = await nodesOf(url);
        for (const id of ids) if (!views.find((v) => v.id === id)?.online) return false;
      }
      return true;
    },
    { timeoutMs },
  );
}

export interface NodeViewBody {
  id: string;
  host: string;
  ipv4: string;
  port: string;
  lastSeen: string;
  status: string;
  online: boolean;
  runningJobs: number;
}

let observer: Promise<string> | undefined;

/** GET /nodes (any valid token may read it); [] when the node does not answer 200. */
export async function nodesOf(url: string): Promise<NodeViewBody[]> {
  observer ??= token("fleet-observer");
  const r = await api<{ nodes: NodeViewBody[] }>(url, "GET", "/nodes", { token: await observer });
  if (r.status !== 200) return [];
  return r.body.nodes;
}

export async function nodeView(url: string, id: string): Promise<NodeViewBody | undefined> {
  return (await nodesOf(url)).find((v) => v.id === id);
}

/** Submits through `url`; the new job's id. */
export async function submit(url: string, token: string, body: Json): Promise<string> {
  return (await nodeJobs.submit({ url }, token, body)).id;
}

export function getJob(url: string, token: string, id: string): Promise<Json> {
  return nodeJobs.getJob({ url }, token, id);
}

/** Waits until the job (read through `url`) has `status`; returns the job. */
export function waitStatus(url: string, token: string, id: string, status: string, timeoutMs = 10_000) {
  return nodeJobs.waitStatus({ url }, token, id, status, timeoutMs);
}

export function control(url: string, token: string, id: string, operation: string) {
  return nodeJobs.control({ url }, token, id, operation);
}

export { setTimeout as sleep } from "node:timers/promises";

export { alive, killGroup, procState } from "../helpers/procs.js";

/** A plain connection for inspecting Redis and dropping other clients. */
export function adminRedis(url: string): Redis {
  const redis = new Redis(url, {
    connectionName: "fleet-test-admin",
    maxRetriesPerRequest: 1,
    retryStrategy: () => 100,
  });
  redis.on("error", () => undefined);
  return redis;
}

/** Every status event of the fleet stream (ground truth), oldest first. */
export async function streamEvents(redis: Redis, prefix: string): Promise<(Json & { eventId: string })[]> {
  const entries = (await redis.xrange(`${prefix}:events`, "-", "+")) as [string, string[]][];
  return entries.map(([eventId, fields]) => ({ ...(JSON.parse(fields[1]!) as Json), eventId }));
}

async function subscriberIds(redis: Redis, nodeIds: string[]): Promise<string[]> {
  const list = (await redis.call("CLIENT", "LIST", "TYPE", "pubsub")) as string;
  const ids: string[] = [];
  for (const line of list.split("\n")) {
    const id = /(?:^| )id=(\d+)/.exec(line)?.[1];
    const name = /(?:^| )name=(\S*)/.exec(line)?.[1];
    if (id && name && nodeIds.some((n) => name === `${n}:sub`)) ids.push(id);
  }
  return ids;
}

/**
 * Drops the subscriber connections of the given nodes (connection name `<nodeId>:sub`), once
 * each is connected (again): returns how many were dropped (= nodeIds.length).
 */
export async function killSubscribers(redis: Redis, nodeIds: string[]): Promise<number> {
  const ids = await until(async () => {
    const found = await subscriberIds(redis, nodeIds);
    return found.length === nodeIds.length ? found : undefined;
  });
  let killed = 0;
  for (const id of ids) killed += Number(await redis.call("CLIENT", "KILL", "ID", id));
  return killed;
}

/**
 * A TCP proxy in front of Redis: `cut()` destroys every proxied connection and refuses new ones
 * (accepted, then closed at once), `heal()` lets them through again.
 */
export class TcpProxy {
  private readonly sockets = new Set<net.Socket>();
  private refusing = false;

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number): Promise<TcpProxy> {
    let proxy: TcpProxy | undefined;
    const server = net.createServer((client) => proxy!.accept(client, targetPort));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const addr = server.address();
    proxy = new TcpProxy(server, typeof addr === "object" && addr ? addr.port : 0);
    return proxy;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  private accept(client: net.Socket, targetPort: number): void {
    if (this.refusing) {
      client.destroy();
      return;
    }
    const upstream = net.connect(targetPort, "127.0.0.1");
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on("error", () => undefined);
      s.on("close", () => {
        this.sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }

  cut(): void {
    this.refusing = true;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  heal(): void {
    this.refusing = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** Child-process nodes: the shared helper (extra env, boot deadline for a busy machine, output kept). */
export { startChildNode as spawnNode } from "../helpers/nodes.js";
export type SpawnedNode = ChildNode;

/** Stops a child node if it still runs (SIGKILL: these are crash tests). */
export async function killChild(child: ChildNode | undefined): Promise<void> {
  if (!child) return;
  await child.stop("SIGKILL");
}

export async function closeAll(nodes: (TestNode | undefined)[] | undefined): Promise<void> {
  await Promise.allSettled((nodes ?? []).map((n) => n?.close()));
}

/**
 * A fleet test's afterAll: prints its measured figures (for the report), then kills its child
 * nodes and the process groups of its jobs, closes its in-process nodes and its admin Redis client.
 */
export async function tearDown(what: {
  figures?: [title: string, figures: Record<string, number>];
  children?: (ChildNode | undefined)[];
  pids?: number[];
  nodes?: (TestNode | undefined)[][];
  redis?: Redis;
}): Promise<void> {
  if (what.figures) console.log(`${what.figures[0]} figures (ms):`, JSON.stringify(what.figures[1]));
  for (const c of what.children ?? []) await killChild(c);
  for (const pid of what.pids ?? []) killGroup(pid);
  for (const nodes of what.nodes ?? []) await closeAll(nodes);
  what.redis?.disconnect();
}

/** A status (or any NDJSON) stream read in the background until stop(). */
export interface Collector<T> {
  messages: T[];
  opened: Promise<number>;
  /** Closes the connection; resolves with everything received. */
  stop(): Promise<T[]>;
}

export function collect<T = StatusMsg>(base: string, path: string, tok: string): Collector<T> {
  const ctrl = new AbortController();
  const messages: T[] = [];
  let opened!: (status: number) => void;
  const openedP = new Promise<number>((r) => {
    opened = r;
  });
  const done = (async () => {
    try {
      const res = await fetch(new URL(path, base), {
        headers: { authorization: `Bearer ${tok}` },
        signal: ctrl.signal,
      });
      opened(res.status);
      if (!res.body) return;
      let buf = "";
      for await (const chunk of res.body.pipeThrough(new TextDecoderStream())) {
        buf += chunk;
        for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line) messages.push(JSON.parse(line) as T);
        }
      }
    } catch (err) {
      opened(0);
      if (!ctrl.signal.aborted) throw err;
    }
  })();
  return {
    messages,
    opened: openedP,
    stop: async () => {
      ctrl.abort();
      await done.catch(() => undefined);
      return messages;
    },
  };
}

/** Adds what `p` resolves to to `into` (for cleanup) as soon as it is there, even if a sibling fails. */
export function track<T>(p: Promise<T>, into: T[]): Promise<T> {
  return p.then((v) => {
    into.push(v);
    return v;
  });
}

/**
 * The live processes whose command line contains `marker` (a job's `/bin/sh -c "…; : <marker>"`),
 * without a marked process's marked children (a shell's fork has its command line until it execs).
 * Every pid counted was still alive after the whole /proc scan, so they were all alive at once: a
 * process that ended while the scan went on (and one that started after it) is not counted.
 */
export function markedProcesses(marker: string): number[] {
  const parents = new Map<number, number>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (!readFileSync(`/proc/${name}/cmdline`, "utf8").includes(marker)) continue;
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (fields[0] !== "Z" && fields[0] !== "X") parents.set(Number(name), Number(fields[1]));
    } catch {
      // exited meanwhile
    }
  }
  return [...parents].filter(([pid, ppid]) => !parents.has(ppid) && alive(pid)).map(([pid]) => pid);
}
