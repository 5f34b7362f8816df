// HTTPS between clients, nodes and peers. The fleet shares one TLS setting: a node with
// LAUNCHER_TLS_CERT_FILE/LAUNCHER_TLS_KEY_FILE serves HTTPS and reaches every peer over HTTPS,
// verifying the peer's certificate against LAUNCHER_TLS_CA_FILE (default: the system's CAs), so a
// forwarded bearer token never crosses the network in clear. A node without them speaks plain HTTP
// to clients and peers alike (behind a TLS-terminating proxy, or on a trusted network).
import { readFileSync } from "node:fs";
import type { Settings } from "../config.js";

type TlsSettings = Pick<Settings, "tlsCertFile" | "tlsKeyFile" | "tlsCaFile">;

function read(name: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(`${name}: cannot read "${path}": ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
}

/** The certificate and key the node serves HTTPS with, or undefined for plain HTTP. */
export function serverTls(settings: TlsSettings): { cert: Buffer; key: Buffer } | undefined {
  if (settings.tlsCertFile === undefined || settings.tlsKeyFile === undefined) return undefined;
  return {
    cert: read("LAUNCHER_TLS_CERT_FILE", settings.tlsCertFile),
    key: read("LAUNCHER_TLS_KEY_FILE", settings.tlsKeyFile),
  };
}

/** How this node and its peers are reached: the whole fleet shares the TLS setting. */
export function fleetScheme(settings: TlsSettings): "http" | "https" {
  return settings.tlsCertFile !== undefined ? "https" : "http";
}

/** TLS options for connections to peers: the CA bundle, when one is configured (else the system's). */
export function peerTls(settings: Pick<Settings, "tlsCaFile">): { ca?: Buffer } {
  return settings.tlsCaFile !== undefined ? { ca: read("LAUNCHER_TLS_CA_FILE", settings.tlsCaFile) } : {};
}
