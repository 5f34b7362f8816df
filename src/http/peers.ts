// Talking to peer nodes: keep-alive pools per peer and the 503 a client gets when the owner of a
// job can't be reached. Used by HTTP forwarding and by the plugin's owner client.
import { Pool } from "undici";
import { ApiError, ErrCode, errorText } from "../api/index.js";

/** The client-facing answer when the job's owner can't serve (503, code 4, naming the node). */
export function ownerUnavailable(id: string, owner: string, why: string, cause?: unknown): ApiError {
  return new ApiError(ErrCode.PluginRestarted, `Job ${id} is owned by node ${owner}, which ${why}`, {
    cause,
  });
}

/** Why an upstream request failed, in words an operator can act on. */
export function describeFailure(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  switch (code) {
    case "ECONNREFUSED":
      return "refused the connection";
    case "UND_ERR_CONNECT_TIMEOUT":
      return "did not accept a connection in time";
    case "UND_ERR_HEADERS_TIMEOUT":
      return "did not answer in time";
    default:
      return `could not be reached (${typeof code === "string" ? code : errorText(err)})`;
  }
}

/** One keep-alive pool per peer origin, created on first use. */
export class PeerPools {
  private readonly pools = new Map<string, Pool>();

  constructor(private readonly connectTimeoutMs: number) {}

  get(origin: string): Pool {
    let pool = this.pools.get(origin);
    if (!pool) {
      pool = new Pool(origin, {
        connectTimeout: this.connectTimeoutMs,
        keepAliveTimeout: 30_000,
        pipelining: 1,
      });
      this.pools.set(origin, pool);
    }
    return pool;
  }

  async destroyAll(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.allSettled(pools.map((p) => p.destroy()));
  }
}
