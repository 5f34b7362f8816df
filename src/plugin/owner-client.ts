// Owner-only plugin requests (control, output, resource util, network) for a job another node
// owns: the plugin finds the owner with `service.locate` and calls the owner's HTTP API (docs/http-api.md
// paths) with a short-lived HS256 token minted for the same caller, so the owner applies the very
// same user scoping. An owner that is offline, draining or unreachable is error code 4
// (PluginRestarted), as the HTTP layer answers 503 in that case.
import type { Logger } from "pino";
import {
  ApiError,
  type ControlResult,
  ErrCode,
  errorText,
  isPlausibleUserName,
  type JobOperation,
  JobOutput,
  type NetworkInfo,
  type OutputTypeName,
  type ResourceSample,
} from "../api/index.js";
import type { Settings } from "../config.js";
import { signToken } from "../http/auth.js";
import { FORWARDED_BY_HEADER } from "../http/forward.js";
import { describeFailure, PeerPools } from "../http/peers.js";
import { peerTls } from "../http/tls.js";
import type { Caller, JobLocation } from "../launcher/port.js";
import { ownerUnavailable } from "../launcher/requests/index.js";

/** Lifetime of a token minted for one forwarded request (streams only need it to connect). */
const TOKEN_TTL_S = 300;
/** Allowance for the owner to answer with headers beyond the connect timeout (streams wait 250 ms). */
const HEADERS_SLACK_MS = 5_250;

export type OwnerSettings = Pick<
  Settings,
  | "nodeId"
  | "authSecret"
  | "authDisabled"
  | "adminGroup"
  | "peerTimeoutMs"
  | "authIssuer"
  | "authAudience"
  | "tlsCaFile"
>;

/**
 * The `sub` of a token minted for an admin caller whose user is `*` (the Posit Launcher's "every
 * user"): nodes refuse `*` as a subject, and an admin's own name plays no part in what it may do.
 */
export const ADMIN_FORWARD_SUBJECT = "launcher-admin";

type OutputItem = { output: string; outputType: OutputTypeName };
type ResourceItem = Omit<ResourceSample, "seqId">;

const OUTPUT_QUERY: Record<JobOutput, string> = {
  [JobOutput.Stdout]: "stdout",
  [JobOutput.Stderr]: "stderr",
  [JobOutput.Both]: "both",
};

/** HTTP client for the owners of jobs; one keep-alive pool per peer. */
export class OwnerClient {
  private readonly pools: PeerPools;

  constructor(
    private readonly settings: OwnerSettings,
    private readonly logger: Logger,
  ) {
    this.pools = new PeerPools(settings.peerTimeoutMs, peerTls(settings));
  }

  async control(
    caller: Caller,
    location: OwnerLocation,
    id: string,
    operation: JobOperation,
  ): Promise<ControlResult> {
    return this.json<ControlResult>(caller, location, id, "POST", `/jobs/${encodeURIComponent(id)}/control`, {
      operation,
    });
  }

  async network(caller: Caller, location: OwnerLocation, id: string): Promise<NetworkInfo> {
    return this.json<NetworkInfo>(caller, location, id, "GET", `/jobs/${encodeURIComponent(id)}/network`);
  }

  outputStream(
    caller: Caller,
    location: OwnerLocation,
    id: string,
    type: JobOutput,
    signal: AbortSignal,
  ): AsyncIterable<OutputItem> {
    const path = `/jobs/${encodeURIComponent(id)}/output?outputType=${OUTPUT_QUERY[type]}`;
    return this.stream<OutputItem>(caller, location, id, path, signal, (line) => ({
      output: typeof line.output === "string" ? line.output : "",
      outputType: (line.outputType as OutputTypeName | undefined) ?? "mixed",
    }));
  }

  resourceStream(
    caller: Caller,
    location: OwnerLocation,
    id: string,
    signal: AbortSignal,
  ): AsyncIterable<ResourceItem> {
    const path = `/jobs/${encodeURIComponent(id)}/resource-util`;
    return this.stream<ResourceItem>(caller, location, id, path, signal, (line) => ({
      cpuPercent: num(line.cpuPercent),
      cpuTime: num(line.cpuTime),
      residentMemory: num(line.residentMemory),
      virtualMemory: num(line.virtualMemory),
    }));
  }

  async close(): Promise<void> {
    await this.pools.destroyAll();
  }

  /** Request headers: a token for the caller (unless auth is off fleet-wide) and the loop guard. */
  private async headers(
    caller: Caller,
    id: string,
    owner: string,
    accept: string,
  ): Promise<Record<string, string>> {
    const headers: Record<string, string> = { accept, [FORWARDED_BY_HEADER]: this.settings.nodeId };
    if (this.settings.authSecret) {
      const groups = caller.admin
        ? [...new Set([...caller.groups, this.settings.adminGroup])]
        : caller.groups;
      const { authIssuer: issuer, authAudience: audience } = this.settings;
      const token = await signToken(this.settings.authSecret, {
        user: caller.admin && !isPlausibleUserName(caller.user) ? ADMIN_FORWARD_SUBJECT : caller.user,
        groups,
        ttl: TOKEN_TTL_S,
        ...(issuer !== undefined ? { issuer } : {}),
        ...(audience !== undefined ? { audience } : {}),
      });
      headers.authorization = `Bearer ${token}`;
    } else if (!this.settings.authDisabled) {
      throw new ApiError(
        ErrCode.Unknown,
        `Job ${id} is owned by node ${owner}; forwarding to it needs LAUNCHER_AUTH_SECRET (HS256) to sign a token for the user`,
      );
    }
    return headers;
  }

  private async send(
    caller: Caller,
    location: OwnerLocation,
    id: string,
    method: "GET" | "POST",
    path: string,
    opts: { body?: unknown; signal?: AbortSignal; stream: boolean },
  ) {
    const origin = new URL(location.baseUrl).origin;
    const headers = await this.headers(
      caller,
      id,
      location.owner,
      opts.stream ? "application/x-ndjson" : "application/json",
    );
    if (opts.body !== undefined) headers["content-type"] = "application/json";
    const timeout = this.settings.peerTimeoutMs + HEADERS_SLACK_MS;
    try {
      return await this.pools.get(origin).request({
        method,
        path,
        headers,
        body: opts.body === undefined ? null : JSON.stringify(opts.body),
        headersTimeout: timeout,
        bodyTimeout: opts.stream ? 0 : timeout,
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      this.logger.warn(
        { jobId: id, owner: location.owner, err: errorText(err) },
        "could not reach the job's owner",
      );
      throw ownerUnavailable(id, location.owner, describeFailure(err), err);
    }
  }

  private async json<T>(
    caller: Caller,
    location: OwnerLocation,
    id: string,
    method: "GET" | "POST",
    path: string,
    body?: unknown,
  ): Promise<T> {
    const res = await this.send(caller, location, id, method, path, { body, stream: false });
    let text: string;
    try {
      text = await res.body.text();
    } catch (err) {
      throw ownerUnavailable(id, location.owner, "broke off its answer", err);
    }
    if (res.statusCode !== 200) throw errorFromOwner(res.statusCode, text, id, location.owner);
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      throw new ApiError(ErrCode.Unknown, `Node ${location.owner} answered with invalid JSON for job ${id}`, {
        cause: err,
      });
    }
  }

  /** Reads the owner's NDJSON stream: items until `{"complete":true}`; `{"error":…}` is thrown. */
  private async *stream<T>(
    caller: Caller,
    location: OwnerLocation,
    id: string,
    path: string,
    signal: AbortSignal,
    item: (line: Record<string, unknown>) => T,
  ): AsyncGenerator<T> {
    const res = await this.send(caller, location, id, "GET", path, { signal, stream: true });
    if (res.statusCode !== 200) {
      const text = await res.body.text().catch(() => "");
      throw errorFromOwner(res.statusCode, text, id, location.owner);
    }
    let buffered = "";
    try {
      res.body.setEncoding("utf8");
      for await (const chunk of res.body as AsyncIterable<string>) {
        buffered += chunk;
        let nl = buffered.indexOf("\n");
        while (nl >= 0) {
          const text = buffered.slice(0, nl).trim();
          buffered = buffered.slice(nl + 1);
          nl = buffered.indexOf("\n");
          if (text === "") continue;
          const line = JSON.parse(text) as Record<string, unknown>;
          if (line.error && typeof line.error === "object")
            throw errorFromBody(line.error, id, location.owner);
          if (line.complete === true) return;
          if ("resync" in line) continue;
          yield item(line);
        }
      }
    } catch (err) {
      if (signal.aborted || err instanceof ApiError) throw err;
      throw ownerUnavailable(id, location.owner, "broke off the stream", err);
    } finally {
      if (!res.body.destroyed) res.body.destroy();
    }
    if (signal.aborted) return;
    throw ownerUnavailable(id, location.owner, "closed the stream before it was complete");
  }
}

type OwnerLocation = Pick<JobLocation, "owner"> & { baseUrl: string };

function num(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) ? value : 0;
}

/** The owner's `{"code","name","message"}` error body as an ApiError. */
function errorFromBody(body: unknown, id: string, owner: string): ApiError {
  const { code, message } = body as { code?: unknown; message?: unknown };
  const text = typeof message === "string" ? message : `Node ${owner} failed for job ${id}`;
  return new ApiError(typeof code === "number" && code >= 0 && code <= 10 ? code : ErrCode.Unknown, text);
}

function errorFromOwner(status: number, text: string, id: string, owner: string): ApiError {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (status === 401) {
    const why = (body as { message?: unknown } | undefined)?.message;
    return new ApiError(
      ErrCode.Unknown,
      `Node ${owner} refused the forwarded request for job ${id} (${typeof why === "string" ? why : "401"}); every node must share LAUNCHER_AUTH_SECRET`,
    );
  }
  if (body && typeof body === "object" && "code" in body) return errorFromBody(body, id, owner);
  return ownerUnavailable(id, owner, `answered HTTP ${status}`);
}
