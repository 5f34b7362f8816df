// Wires one node together: Redis connections, registry, job store, status bus, runner,
// job manager, and the HTTP app. `close()` drains and shuts down in order, idempotently.
import { chmodSync, mkdirSync, statSync } from "node:fs";
import { hostname, userInfo } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry as MetricsRegistry } from "prom-client";
import { type Node, NodeStatus } from "./api/index.js";
import { JobStore } from "./cluster/job-store.js";
import { fleetKeys } from "./cluster/keys.js";
import { QueueNotices } from "./cluster/queue-notices.js";
import { connectRedis, waitConnected } from "./cluster/redis.js";
import { Registry } from "./cluster/registry.js";
import { defineScripts } from "./cluster/scripts.js";
import { StatusBus } from "./cluster/status-bus.js";
import type { Settings } from "./config.js";
import { buildApp } from "./http/app.js";
import { fleetScheme } from "./http/tls.js";
import { Dispatcher } from "./launcher/dispatcher.js";
import { JobManager } from "./launcher/job-manager.js";
import { DEFAULT_QUEUE } from "./launcher/placement.js";
import type { LauncherService } from "./launcher/port.js";
import { loadClusterInfo, NodeService } from "./launcher/service.js";
import { createLogger } from "./logger.js";
import { LocalRunner } from "./runner/index.js";

export interface LauncherNode {
  readonly settings: Settings;
  readonly app: FastifyInstance;
  /** The node's service (what HTTP calls); the plugin wire protocol calls it too. */
  readonly service: LauncherService;
  readonly logger: Logger;
  /** `http://<advertised ip>:<port>` (`https://` when the node has LAUNCHER_TLS_CERT_FILE) */
  readonly url: string;
  readonly port: number;
  /** SIGTERM behaviour: Draining for `drainMs`, then close. Jobs keep running. */
  drain(): Promise<void>;
  /** Stops serving and leaves the fleet; running jobs keep running for the next start. */
  close(): Promise<void>;
  /** Settles once the node has closed, whatever closed it (close(), a drain from a signal or the API). */
  readonly closed: Promise<void>;
}

export interface NodeOptions {
  logger?: Logger;
  /** Resource stream sampling period (the Launcher's Local plugin uses 3 s). */
  resourcePollMs?: number;
  /** Seconds between expiry sweeps. */
  expiryIntervalMs?: number;
  /** The Posit Launcher's nodes (plugin message 201), shown by `GET /nodes` as `launcherNodes`. */
  launcherNodes?: () => Node[];
}

export async function startNode(settings: Settings, opts: NodeOptions = {}): Promise<LauncherNode> {
  const logger = opts.logger ?? createLogger(settings.nodeId, settings.logLevel);
  const keys = fleetKeys(settings.keyPrefix);
  const redis = defineScripts(connectRedis(settings, `${settings.nodeId}:cmd`, logger));
  const sub = connectRedis(settings, `${settings.nodeId}:sub`, logger);
  const cleanups: (() => Promise<unknown> | unknown)[] = [];
  const cleanupAll = async () => {
    for (const fn of cleanups.splice(0).reverse()) {
      try {
        await fn();
      } catch (err) {
        logger.warn({ err: (err as Error).message }, "shutdown step failed");
      }
    }
  };
  cleanups.push(
    () => redis.disconnect(),
    () => sub.disconnect(),
  );
  try {
    await Promise.all([waitConnected(redis, 10_000), waitConnected(sub, 10_000)]);

    let draining = false;
    let closing = false;
    let drain: () => Promise<void> = async () => undefined;
    const store = new JobStore(redis, keys, settings.eventRetention);
    const self = {
      nodeId: settings.nodeId,
      host: hostname(),
      ipv4: settings.advertiseIp,
      port: String(settings.port),
      slots: settings.maxRunningJobs,
      labels: settings.nodeLabels,
      queues: servedQueues(settings),
    };
    const stateDir = join(settings.scratchPath, "runner", settings.nodeId);
    mkdirSync(stateDir, { recursive: true });
    // Jobs of other users reach their default output dirs (<scratch>/output/<user>, 0700 each)
    // through the scratch dir: they may pass through it, not list it.
    if (!settings.unprivileged) chmodSync(settings.scratchPath, statSync(settings.scratchPath).mode | 0o111);
    // The runner first; its exits go to the job manager (built below), which is the only one that
    // starts or adopts jobs, so no exit can come before it exists.
    const exits: { to?: JobManager } = {};
    const runner = new LocalRunner({
      stateDir,
      callbacks: { onExit: (id, code, lost) => exits.to?.onExit(id, code, lost) },
      switchUsers: !settings.unprivileged,
    });
    let manager: JobManager | undefined;
    const registry = new Registry({ redis, sub, keys, store, logger }, self, {
      heartbeatMs: settings.heartbeatMs,
      offlineAfterMs: settings.offlineAfterMs,
      lostAfterMs: settings.lostAfterMs,
      runningJobs: () => manager?.runningCount() ?? 0,
      onFenced: async () => manager?.reconcile(),
    });
    manager = new JobManager(
      store,
      registry,
      runner,
      {
        nodeId: settings.nodeId,
        host: self.host,
        clusterName: settings.clusterName,
        scratchPath: settings.scratchPath,
        maxRunningJobs: settings.maxRunningJobs,
        jobExpiryHours: settings.jobExpiryHours,
        unprivileged: settings.unprivileged,
        allowRootJobs: settings.allowRootJobs,
        waitReplicas: settings.redisWaitReplicas,
        maxRunningJobsPerUser: settings.maxRunningJobsPerUser,
        offlineAfterMs: settings.offlineAfterMs,
        defaultQueue: () => service.defaultQueue(),
      },
      logger,
    );
    const jobs = manager;
    exits.to = jobs;
    logPrivilegeMode(logger, settings, runner);
    const bus = new StatusBus(redis, sub, keys, logger);
    const service = new NodeService(store, registry, bus, manager, runner, {
      nodeId: settings.nodeId,
      peerScheme: fleetScheme(settings),
      ...(settings.clusterConfigFile ? { clusterConfigFile: settings.clusterConfigFile } : {}),
      resourcePollMs: opts.resourcePollMs ?? 3_000,
      isDraining: () => draining,
      isClosing: () => closing,
      redisConnected: () => redis.status === "ready",
      ...(opts.launcherNodes ? { launcherNodes: opts.launcherNodes } : {}),
      // POST /nodes/{id}/drain: as SIGTERM does (drain is defined below, once the node is up).
      startDrain: () => {
        void drain().catch((err: Error) => logger.error({ err: err.message }, "drain failed"));
      },
    });

    const metrics = new MetricsRegistry();
    const app = await buildApp({ service, settings, logger, registry: metrics });
    addNodeMetrics(metrics, registry, bus, store);
    const queueMetrics = addQueueMetrics(metrics, store, settings.nodeId);
    jobs.onStart = (_id, via) => queueMetrics.placed.inc({ node: settings.nodeId, via });
    const dispatcher = new Dispatcher(
      store,
      registry,
      new QueueNotices(sub, keys),
      jobs,
      {
        nodeId: settings.nodeId,
        perUserCap: settings.maxRunningJobsPerUser,
        offlineAfterMs: settings.offlineAfterMs,
        sweepMs: settings.heartbeatMs,
      },
      logger,
      (seconds) => queueMetrics.wait.observe(seconds),
    );
    jobs.onSlotFreed = () => dispatcher.wake();
    cleanups.push(() => closeApp(app, APP_CLOSE_GRACE_MS));
    await app.listen({ host: settings.host, port: settings.port });
    const address = app.server.address();
    const port = typeof address === "object" && address ? address.port : settings.port;
    self.port = String(port);

    await bus.start();
    cleanups.push(() => bus.close());
    await registry.start();
    cleanups.push(() => registry.close(draining ? NodeStatus.Draining : NodeStatus.Offline));
    cleanups.push(() => runner.close());
    cleanups.push(() => jobs.close());
    await jobs.adoptAll();
    await dispatcher.start();
    cleanups.push(() => dispatcher.close());
    jobs.startExpiry(opts.expiryIntervalMs);
    const url = `${fleetScheme(settings)}://${settings.advertiseIp}:${port}`;
    logger.info({ url, epoch: registry.epoch }, "node started");

    let closing_: Promise<void> | undefined;
    let markClosed: () => void = () => undefined;
    const closed = new Promise<void>((r) => {
      markClosed = r;
    });
    const close = () => {
      closing = true;
      closing_ ??= cleanupAll().then(() => {
        logger.info("node stopped");
        markClosed();
      });
      return closing_;
    };
    let draining_: Promise<void> | undefined;
    drain = () => {
      draining_ ??= (async () => {
        draining = true;
        logger.info({ drainMs: settings.drainMs }, "draining: failing readiness before closing");
        await registry.setStatus(NodeStatus.Draining).catch(() => undefined);
        // Jobs peers placed here that never started go back to the fleet queue, to start elsewhere.
        await dispatcher
          .release()
          .catch((err: Error) => logger.warn({ err: err.message }, "could not release jobs"));
        await new Promise((r) => setTimeout(r, settings.drainMs));
        await close();
      })();
      return draining_;
    };
    return { settings, app, service, logger, port, url, close, closed, drain };
  } catch (err) {
    await cleanupAll();
    throw err;
  }
}

/** Says at start whom jobs run as, and warns where that isolates nothing. */
function logPrivilegeMode(logger: Logger, settings: Settings, runner: LocalRunner): void {
  if (settings.unprivileged) {
    const me = userInfo().username;
    logger.warn(
      `LAUNCHER_UNPRIVILEGED=1: every job runs as this node's user (${me}), whoever submits it; jobs and ` +
        "node are one trust domain (a job can read the node's files and signal its processes)",
    );
    return;
  }
  logger.info(
    { allowRootJobs: settings.allowRootJobs },
    "privileged mode: each job runs with its own user's uid, gid and groups",
  );
  if (runner.helperMissing) {
    logger.warn(
      { why: runner.helperMissing },
      "no launch helper: jobs of other users start by forking the supervisor (slower)",
    );
  }
}

/** LAUNCHER_QUEUES, else the queues of the cluster config (LAUNCHER_CLUSTER_CONFIG_FILE), else `default`. */
function servedQueues(settings: Settings): string[] {
  if (settings.queues.length > 0) return settings.queues;
  const configured = loadClusterInfo(settings.clusterConfigFile).queues;
  return configured.length > 0 ? configured : [DEFAULT_QUEUE];
}

/** How long app.close() may wait for connections to finish before they are cut. */
const APP_CLOSE_GRACE_MS = 1_000;

/**
 * app.close(), bounded: Node's server.close() only closes idle keep-alive connections, so a client
 * that opened a connection and never sent a request on it (undici opens a spare one after an
 * aborted fetch; browsers preconnect) or a request that never ends would hold shutdown until
 * the server's headers timeout (60 s). Open streams were already ended by the preClose hook.
 */
async function closeApp(app: FastifyInstance, graceMs: number): Promise<void> {
  const timer = setTimeout(() => app.server.closeAllConnections(), graceMs);
  try {
    await app.close();
  } finally {
    clearTimeout(timer);
  }
}

/** The fleet queue's metrics: its depth (read from Redis at each scrape), waits and placements. */
function addQueueMetrics(metrics: MetricsRegistry, store: JobStore, nodeId: string) {
  new Gauge({
    name: "launcher_queue_depth",
    help: "Jobs waiting in the fleet queue, by queue",
    labelNames: ["queue"],
    registers: [metrics],
    async collect() {
      const depth = await store.queueDepth().catch(() => undefined);
      if (!depth) return;
      this.reset();
      for (const [queue, n] of depth) this.set({ queue }, n);
    },
  });
  const placed = new Counter({
    name: "launcher_jobs_placed_total",
    help: "Jobs this node started: placed on it at submission (direct) or claimed from the fleet queue (queue)",
    labelNames: ["node", "via"],
    registers: [metrics],
  });
  for (const via of ["direct", "queue"]) placed.inc({ node: nodeId, via }, 0);
  const wait = new Histogram({
    name: "launcher_queue_wait_seconds",
    help: "How long jobs this node claimed waited in the fleet queue",
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 1800, 7200],
    registers: [metrics],
  });
  return { placed, wait };
}

/**
 * A node's GC pauses that matter are a few milliseconds long (a young-generation collection at
 * thousands of status events a second), so the buckets are fine between 1 and 10 ms, where
 * prom-client's default jumps from 1 ms straight to 10.
 */
const GC_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

function addNodeMetrics(metrics: MetricsRegistry, registry: Registry, bus: StatusBus, store: JobStore): void {
  // The process's own: CPU, memory, heap spaces, GC pauses by kind (nodejs_gc_duration_seconds) and
  // event-loop delay since the last scrape (nodejs_eventloop_lag_*). What every status stream and
  // forwarded request waits behind; the figures are the process's, shared by nodes in one process.
  collectDefaultMetrics({ register: metrics, gcDurationBuckets: GC_BUCKETS });
  new Gauge({
    name: "launcher_redis_latency_ms",
    help: "Round trip of the last heartbeat to Redis",
    registers: [metrics],
    collect() {
      this.set(registry.latencyMs);
    },
  });
  new Gauge({
    name: "launcher_fleet_nodes",
    help: "Nodes known to the fleet, by Online() verdict",
    labelNames: ["online"],
    registers: [metrics],
    async collect() {
      const nodes = await registry.listNodes().catch(() => registry.nodes());
      this.set({ online: "true" }, nodes.filter((n) => n.online).length);
      this.set({ online: "false" }, nodes.filter((n) => !n.online).length);
    },
  });
  new Gauge({
    name: "launcher_status_events_delivered",
    help: "Status events this node has received from the fleet's status bus",
    registers: [metrics],
    collect() {
      this.set(bus.delivered);
    },
  });
  new Gauge({
    name: "launcher_jobs",
    help: "Jobs in the fleet by status",
    labelNames: ["status"],
    registers: [metrics],
    async collect() {
      const counts = new Map<string, number>();
      // Summaries in batches: a scrape never holds every job's spec.
      for await (const batch of store.readBatches(await store.listIds({}), { summary: true })) {
        for (const { job } of batch) counts.set(job.status ?? "", (counts.get(job.status ?? "") ?? 0) + 1);
      }
      this.reset();
      for (const [status, n] of counts) this.set({ status }, n);
    },
  });
}
