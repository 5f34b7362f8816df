// The deployment files name the same nodes at the same addresses; drift between them would make a
// load balancer or Prometheus look at the wrong hosts.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "../../src/topology/index.js";

const read = (path: string) => readFileSync(join(REPO_ROOT, path), "utf8");
const all = (text: string, re: RegExp) => [...text.matchAll(re)].map((m) => m[1]!).sort();

describe("ops files", () => {
  const composeFiles = ["docker-compose.yml", "docker-compose.sentinel.yml"];
  const nodeIps = all(read("docker-compose.yml"), /LAUNCHER_ADVERTISE_IP: (\S+)/g);

  it("compose nodes advertise their fixed network address", () => {
    expect(nodeIps).toHaveLength(3);
    for (const file of composeFiles) {
      const text = read(file);
      expect(all(text, /LAUNCHER_ADVERTISE_IP: (\S+)/g)).toEqual(nodeIps);
      for (const ip of nodeIps) expect(text).toContain(`ipv4_address: ${ip}`);
    }
  });

  it("HAProxy, nginx and Prometheus point at the compose nodes", () => {
    const targets = nodeIps.map((ip) => `${ip}:5559`);
    expect(all(read("ops/haproxy.cfg"), /^\s*server \S+ (\S+)/gm)).toEqual(targets);
    expect(all(read("ops/nginx.conf"), /^\s*server (\S+) /gm)).toEqual(targets);
    expect(read("ops/prometheus.yml")).toContain(targets.map((t) => `          - ${t}`).join("\n"));
  });

  it("nodes are given longer to stop than they drain", () => {
    const drainMs = Number(/^LAUNCHER_DRAIN_MS=(\d+)$/m.exec(read("ops/fleet.env"))?.[1]);
    for (const file of composeFiles) {
      const grace = /stop_grace_period: (\d+)s/.exec(read(file))?.[1];
      expect(Number(grace) * 1000).toBeGreaterThan(drainMs * 3);
    }
  });

  it("the image runs a node as a non-root user", () => {
    const dockerfile = read("Dockerfile");
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^CMD \["node", "dist\/cli\.js", "node"\]$/m);
    expect(dockerfile).toMatch(/^HEALTHCHECK .*/m);
    expect(dockerfile).toMatch(/^EXPOSE 5559$/m);
  });
});
