// Redis connections for a node: one for commands, one for subscriptions, one for blocking reads.
import { Redis, type RedisOptions } from "ioredis";
import type { Logger } from "pino";
import { ApiError, ErrCode } from "../api/index.js";

export interface RedisSettings {
  redisUrl: string;
  redisSentinels?: { host: string; port: number }[];
  redisMasterName?: string;
}

/**
 * Commands fail at once while Redis is away (no offline queue), so requests get a prompt
 * 503 instead of hanging; ioredis keeps reconnecting in the background.
 */
export function connectRedis(settings: RedisSettings, name: string, logger: Logger): Redis {
  const common: RedisOptions = {
    connectionName: name,
    // No CLIENT SETINFO on connect: the fleet's Redis user may send only what the nodes need
    // (ops/redis-acl.sh), and Redis 7.0 has no such subcommand for an ACL to allow.
    disableClientInfo: true,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    commandTimeout: 5_000,
    retryStrategy: (times) => Math.min(50 * 2 ** times, 1_000),
    reconnectOnError: (err) => err.message.startsWith("READONLY"),
  };
  const redis = settings.redisSentinels
    ? new Redis({
        ...common,
        sentinels: settings.redisSentinels,
        name: settings.redisMasterName ?? "mymaster",
        // Leave the old primary as soon as the sentinels switch (+switch-master), not when it is
        // demoted ~10 s later: everything written to it meanwhile is discarded by its resync.
        failoverDetector: true,
        ...credentialsOf(settings.redisUrl),
      })
    : new Redis(settings.redisUrl, common);
  let wasReady = false;
  redis.on("ready", () => {
    if (wasReady) logger.info({ connection: name }, "redis reconnected");
    wasReady = true;
  });
  redis.on("error", (err: Error) => logger.debug({ connection: name, err: err.message }, "redis error"));
  redis.on("end", () => logger.debug({ connection: name }, "redis connection ended"));
  return redis;
}

function credentialsOf(url: string): Pick<RedisOptions, "username" | "password" | "db"> {
  try {
    const u = new URL(url);
    return {
      ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
      ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
      ...(u.pathname.length > 1 ? { db: Number(u.pathname.slice(1)) } : {}),
    };
  } catch {
    return {};
  }
}

/**
 * Where a connection goes, for messages: `redis://user:***@host:port/db` (the password hidden), or
 * the Sentinels and master name.
 */
export function describeRedis(redis: Redis): string {
  const o = redis.options;
  if (o.sentinels?.length) {
    const at = o.sentinels.map((s) => `${s.host ?? "127.0.0.1"}:${s.port ?? 26379}`).join(",");
    return `Redis master "${o.name ?? "mymaster"}" (Sentinels ${at})`;
  }
  const auth = o.username ? `${o.username}${o.password ? ":***" : ""}@` : o.password ? ":***@" : "";
  const db = o.db ? `/${o.db}` : "";
  const where = o.path ? `unix:${o.path}` : `${o.host ?? "127.0.0.1"}:${o.port ?? 6379}`;
  return `Redis at ${o.tls ? "rediss" : "redis"}://${auth}${where}${db}`;
}

/** Connects, retrying until Redis answers or the deadline passes (the error names where, and why). */
export async function waitConnected(redis: Redis, timeoutMs: number): Promise<void> {
  if (redis.status === "ready") return;
  let lastError: string | undefined;
  const onError = (err: Error) => {
    lastError = err.message || (err as NodeJS.ErrnoException).code;
  };
  redis.on("error", onError);
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      redis.off("ready", onReady);
      redis.off("error", onError);
      const why = lastError ? ` (last error: ${lastError})` : "";
      reject(new Error(`${describeRedis(redis)} did not answer within ${timeoutMs} ms${why}`));
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      redis.off("error", onError);
      resolve();
    };
    redis.once("ready", onReady);
  });
  if (redis.status === "wait") redis.connect().catch(() => undefined);
  await ready;
}

/**
 * True when a command failed because Redis is not usable right now (disconnected, restarting,
 * loading its data, failing over, timed out), as opposed to an error of the command itself.
 */
export function isUnavailable(err: unknown): boolean {
  if (!(err instanceof Error) || err instanceof ApiError) return false;
  if (err.name === "ReplyError") return /^(LOADING|READONLY|MASTERDOWN|TRYAGAIN|BUSY)\b/.test(err.message);
  return true;
}

/** Runs one Redis call; an unavailable Redis becomes the client-facing 503 (code 4), fast. */
export async function whileAvailable<T>(call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (err) {
    throw isUnavailable(err) ? redisUnavailable(err) : err;
  }
}

/** Turns a Redis failure into the client-facing error (503, code 4). */
export function redisUnavailable(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const why = err instanceof Error ? err.message : String(err);
  return new ApiError(ErrCode.PluginRestarted, `Redis is unreachable: ${why}`);
}
