import { hostname, networkInterfaces } from "node:os";

export interface NetworkInfo {
  host: string;
  ipAddresses: string[];
}

interface Address {
  address: string;
  family: "IPv4" | "IPv6";
}

function isLoopback(a: Address): boolean {
  return a.family === "IPv4" ? a.address.startsWith("127.") : a.address === "::1";
}

/** 169.254.0.0/16 and fe80::/10: only meaningful on one link, so useless to reach a job. */
function isLinkLocal(a: Address): boolean {
  return a.family === "IPv4" ? a.address.startsWith("169.254.") : /^fe[89ab]/i.test(a.address);
}

function allAddresses(): Address[] {
  const out: Address[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) out.push({ address: a.address, family: a.family });
  }
  return out;
}

/** How long one reading of the host's interfaces is reused (reading them costs ~0.2 ms a call). */
const NETWORK_INFO_TTL_MS = 5_000;
let cached: { at: number; info: NetworkInfo } | undefined;

/** The job's network as the Local plugin reports it: this host and its routable addresses. */
export function networkInfo(now = Date.now()): NetworkInfo {
  if (cached && now - cached.at < NETWORK_INFO_TTL_MS)
    return { ...cached.info, ipAddresses: [...cached.info.ipAddresses] };
  const ips = allAddresses()
    .filter((a) => !isLoopback(a) && !isLinkLocal(a))
    .map((a) => a.address);
  const info = { host: hostname(), ipAddresses: [...new Set(ips)] };
  cached = { at: now, info };
  return { ...info, ipAddresses: [...info.ipAddresses] };
}

/** The IPv4 address peers should use for this node: routable first, then link-local, else loopback. */
export function advertiseIp(): string {
  const v4 = allAddresses().filter((a) => a.family === "IPv4" && !isLoopback(a));
  return (v4.find((a) => !isLinkLocal(a)) ?? v4[0])?.address ?? "127.0.0.1";
}
