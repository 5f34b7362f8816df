// The fleet's network for the failover suite, built from Linux network namespaces (root and
// iproute2 needed): one namespace per node, all joined by a bridge in a "lan" namespace, like the
// compose network. The host (this process, Redis, HAProxy) is on the bridge as <subnet>.1, node i
// is <subnet>.(10+i). Cutting a node off takes its bridge port down: from then on its packets are
// silently dropped in both directions (no RST, no ICMP), as with a pulled cable, until healed.
import { execFileSync } from "node:child_process";

export interface NodeNet {
  /** The node's namespace: run it with `ip netns exec <ns> ...`. */
  readonly ns: string;
  /** Its address on the bridge (listen and advertise address). */
  readonly ip: string;
}

const PREFIX = "lffo-";

function ip(...args: string[]): string {
  return execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

function tryIp(...args: string[]): void {
  try {
    ip(...args);
  } catch {
    // already gone
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Why this machine cannot build the network (undefined when it can). */
export function netnsUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return "network namespaces need root (run the suite as root)";
  try {
    ip("netns", "list");
    return undefined;
  } catch (err) {
    return `\`ip netns\` does not work here (install iproute2): ${(err as Error).message}`;
  }
}

/** Namespaces left by runs that were killed before cleaning up (their pid is gone). */
function removeStale(): void {
  for (const line of ip("netns", "list").split("\n")) {
    const name = line.trim().split(/\s+/)[0] ?? "";
    const m = new RegExp(`^${PREFIX}(\\d+)-`).exec(name);
    if (m && !alive(Number(m[1]))) tryIp("netns", "del", name);
  }
}

/** A /24 in 10.231.0.0/16 that no address or route of this machine uses yet. */
function freeSubnet(): string {
  const used = ip("-4", "-o", "addr", "show") + ip("-4", "route", "show", "table", "all");
  for (let attempt = 0; attempt < 64; attempt++) {
    const third = Math.floor(Math.random() * 254) + 1;
    const subnet = `10.231.${third}`;
    if (!used.includes(`${subnet}.`)) return subnet;
  }
  throw new Error("no free /24 in 10.231.0.0/16 for the failover network");
}

export class FleetNetwork {
  readonly hostIp: string;
  private readonly lan: string;
  private readonly hostLink: string;
  private readonly nodes: NodeNet[] = [];
  private destroyed = false;
  private readonly onExit = () => this.destroy();

  private constructor(
    private readonly tag: string,
    private readonly subnet: string,
  ) {
    this.lan = `${tag}-lan`;
    this.hostLink = `lf${process.pid}`.slice(0, 15);
    this.hostIp = `${subnet}.1`;
  }

  /** Builds the bridge and the host's link to it, and `nodeCount` node namespaces. */
  static create(nodeCount: number): FleetNetwork {
    const why = netnsUnavailable();
    if (why) throw new Error(why);
    removeStale();
    const net = new FleetNetwork(`${PREFIX}${process.pid}`, freeSubnet());
    process.on("exit", net.onExit);
    try {
      net.build(nodeCount);
    } catch (err) {
      net.destroy();
      throw err;
    }
    return net;
  }

  private build(nodeCount: number): void {
    const lan = this.lan;
    ip("netns", "add", lan);
    ip("-n", lan, "link", "set", "lo", "up");
    ip("-n", lan, "link", "add", "br0", "type", "bridge");
    ip("-n", lan, "link", "set", "br0", "up");
    ip("link", "add", this.hostLink, "type", "veth", "peer", "name", "host", "netns", lan);
    ip("addr", "add", `${this.hostIp}/24`, "dev", this.hostLink);
    ip("link", "set", this.hostLink, "up");
    ip("-n", lan, "link", "set", "host", "master", "br0");
    ip("-n", lan, "link", "set", "host", "up");
    for (let i = 0; i < nodeCount; i++) {
      const ns = `${this.tag}-n${i + 1}`;
      const nodeIp = `${this.subnet}.${11 + i}`;
      ip("netns", "add", ns);
      ip("-n", ns, "link", "set", "lo", "up");
      ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", this.port(i), "netns", lan);
      ip("-n", ns, "addr", "add", `${nodeIp}/24`, "dev", "eth0");
      ip("-n", ns, "link", "set", "eth0", "up");
      ip("-n", lan, "link", "set", this.port(i), "master", "br0");
      ip("-n", lan, "link", "set", this.port(i), "up");
      this.nodes.push({ ns, ip: nodeIp });
    }
  }

  /** The bridge port of node i (in the lan namespace). */
  private port(i: number): string {
    return `n${i + 1}`;
  }

  node(i: number): NodeNet {
    const n = this.nodes[i];
    if (!n) throw new Error(`no node ${i} in the failover network`);
    return n;
  }

  /** Cuts node i off: every packet to or from it is dropped until heal(i). */
  cut(i: number): void {
    this.node(i);
    ip("-n", this.lan, "link", "set", this.port(i), "down");
  }

  heal(i: number): void {
    this.node(i);
    ip("-n", this.lan, "link", "set", this.port(i), "up");
  }

  /** Removes every namespace (and with them the links). Idempotent, synchronous (runs at exit). */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    process.off("exit", this.onExit);
    for (const n of this.nodes) tryIp("netns", "del", n.ns);
    tryIp("netns", "del", this.lan);
    tryIp("link", "del", this.hostLink);
  }
}
