// Talking to peer nodes: keep-alive pools per peer and the 503 a client gets when the owner of a
// job can't be reached. Used by HTTP forwarding and by the plugin's owner client.
import { Pool } from "undici";
import { errorText } from "../api/index.js";

/** TLS failures that mean the peer's certificate is not trusted (or not for its address). */
const UNTRUSTED_CERT = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_SIGNATURE_FAILURE",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

/** Why an upstream request failed, in words an operator can act on. */
export function describeFailure(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string" && UNTRUSTED_CERT.has(code)) {
    return `presented a certificate this node does not trust (${code}); check LAUNCHER_TLS_CA_FILE and the certificate's IP addresses`;
  }
  switch (code) {
    case "EPROTO":
    case "ERR_SSL_WRONG_VERSION_NUMBER":
      return `did not speak TLS (${code}); every node of a fleet must share the LAUNCHER_TLS_* setting`;
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

/**
 * One keep-alive pool per peer origin, created on first use. HTTPS origins are verified against
 * `tls.ca` when given (LAUNCHER_TLS_CA_FILE), else against the system's CAs.
 */
export class PeerPools {
  private readonly pools = new Map<string, Pool>();

  constructor(
    private readonly connectTimeoutMs: number,
    private readonly tls: { ca?: Buffer } = {},
  ) {}

  get(origin: string): Pool {
    let pool = this.pools.get(origin);
    if (!pool) {
      pool = new Pool(origin, {
        connectTimeout: this.connectTimeoutMs,
        keepAliveTimeout: 30_000,
        pipelining: 1,
        ...(this.tls.ca !== undefined && origin.startsWith("https:") ? { connect: { ca: this.tls.ca } } : {}),
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
