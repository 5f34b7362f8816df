// Shared setup for HTTP tests: settings, tokens, apps on free ports, stream readers.

import { setTimeout as sleep } from "node:timers/promises";
import type { FastifyInstance } from "fastify";
import { pino } from "pino";
import { Registry } from "prom-client";
import type { Settings } from "../../src/config.js";
import { buildApp, signToken } from "../../src/http/index.js";
import { FakeService } from "./fake-service.js";

export const SECRET = "test-secret-that-is-long-enough-for-hs256";
export const ADMIN_GROUP = "launcher-admins";

export function testSettings(overrides: Partial<Settings> = {}): Settings {
  return {
    redisUrl: "redis://127.0.0.1:1",
    keyPrefix: "test",
    nodeId: "node-a",
    host: "127.0.0.1",
    port: 0,
    advertiseIp: "127.0.0.1",
    authSecret: SECRET,
    authDisabled: false,
    adminGroup: ADMIN_GROUP,
    clusterName: "Local",
    scratchPath: "/tmp/launcher-http-test",
    jobExpiryHours: 24,
    heartbeatMs: 1000,
    offlineAfterMs: 3000,
    lostAfterMs: 30000,
    drainMs: 0,
    logLevel: "silent",
    eventRetention: 1000,
    maxRunningJobs: 0,
    maxRunningJobsPerUser: 0,
    redisWaitReplicas: 0,
    nodeLabels: {},
    queues: [],
    peerTimeoutMs: 500,
    unprivileged: true,
    allowRootJobs: false,
    bodyTimeoutMs: 30_000,
    streamBufferBytes: 4 * 1024 * 1024,
    ...overrides,
  };
}

export const silentLogger = () => pino({ level: "silent" });

export interface TestApp {
  app: FastifyInstance;
  service: FakeService;
  settings: Settings;
  registry: Registry;
}

export async function makeApp(
  opts: {
    service?: FakeService;
    settings?: Partial<Settings>;
    logger?: pino.Logger;
    /** Runs before `ready()`, e.g. to add a spying hook. */
    setup?: (app: FastifyInstance) => void;
  } = {},
): Promise<TestApp> {
  const settings = testSettings(opts.settings);
  const service = opts.service ?? new FakeService(settings.nodeId);
  const registry = new Registry();
  const app = await buildApp({ service, settings, logger: opts.logger ?? silentLogger(), registry });
  opts.setup?.(app);
  await app.ready();
  return { app, service, settings, registry };
}

/** POST /jobs as alice through inject (headers as given, no HTTP parser in the way). */
export async function postJob(t: TestApp, body: unknown, headers: Record<string, string | string[]> = {}) {
  const res = await t.app.inject({
    method: "POST",
    url: "/jobs",
    headers: { ...(await bearer("alice")), ...headers },
    payload: body as Record<string, unknown>,
  });
  return { status: res.statusCode, body: res.json<Record<string, unknown>>() };
}

/** Listens on 127.0.0.1 and a free port; returns the base URL. */
export async function listen(app: FastifyInstance): Promise<string> {
  return app.listen({ host: "127.0.0.1", port: 0 });
}

export function token(user = "alice", groups: string[] = [], ttl: number | string = "1h"): Promise<string> {
  return signToken({ authSecret: SECRET }, { user, groups, ttl });
}

export async function bearer(user = "alice", groups: string[] = []): Promise<{ authorization: string }> {
  return { authorization: `Bearer ${await token(user, groups)}` };
}

export const adminAuth = () => bearer("root", [ADMIN_GROUP]);

/** Parses an NDJSON body into objects. */
export function ndjson(text: string): Record<string, unknown>[] {
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Parses an SSE body into events (`id`, `data`, and comments). */
export function sse(text: string): { id?: string; data?: Record<string, unknown>; comment?: string }[] {
  return text
    .split("\n\n")
    .filter((block) => block.trim() !== "")
    .map((block) => {
      const event: { id?: string; data?: Record<string, unknown>; comment?: string } = {};
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) event.comment = line.slice(1).trim();
        else if (line.startsWith("id: ")) event.id = line.slice(4);
        else if (line.startsWith("data: ")) event.data = JSON.parse(line.slice(6)) as Record<string, unknown>;
      }
      return event;
    });
}

export { sleep };

/** Polls until `check` holds or the timeout passes. */
export async function eventually(check: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await sleep(10);
  }
}
