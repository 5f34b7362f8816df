// The deployment files name the same nodes at the same addresses; drift between them would make a
// load balancer or Prometheus look at the wrong hosts.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { NODE_FLAGS, REPO_ROOT } from "../../src/topology/index.js";

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

  it("every way of starting a node passes the nodes' Node.js flags (src/topology/node-command.ts)", () => {
    const flags = NODE_FLAGS.join(" ");
    expect(flags).toMatch(/^--max-semi-space-size=\d+$/);
    expect(read("Dockerfile")).toContain(
      `CMD ["node", ${NODE_FLAGS.map((f) => JSON.stringify(f)).join(", ")}, "dist/cli.js", "node"]`,
    );
    expect(read("ops/systemd/launcher-node.service")).toContain(
      `ExecStart=/usr/bin/node ${flags} dist/cli.js node`,
    );
    expect(JSON.parse(read("package.json")).scripts.start).toBe(`node ${flags} dist/cli.js node`);
    expect(read("README.md")).toContain(`node ${flags} dist/cli.js node`);
    expect(read("docs/posit-launcher.md")).toContain(
      `exec /usr/bin/node ${flags} /opt/launcher-fleet/dist/cli.js plugin`,
    );
  });

  it("nodes are given longer to stop than they drain", () => {
    const drainMs = Number(/^LAUNCHER_DRAIN_MS=(\d+)$/m.exec(read("ops/fleet.env"))?.[1]);
    for (const file of composeFiles) {
      const grace = /stop_grace_period: (\d+)s/.exec(read(file))?.[1];
      expect(Number(grace) * 1000).toBeGreaterThan(drainMs * 3);
    }
  });

  it("compose Redis loads the fleet's ACL (ops/redis-acl.sh) and the nodes log in as its user", () => {
    const env = read(".env.example");
    for (const file of composeFiles) {
      const text = read(file);
      // Each Redis server writes its ACL file at start with the shipped script, and loads it.
      const servers = file.includes("sentinel") ? 2 : 1;
      expect(text.split("./ops/redis-acl.sh:/usr/local/etc/redis/redis-acl.sh:ro")).toHaveLength(servers + 1);
      expect(text).toMatch(/sh \S+\/redis-acl\.sh "\$\$LAUNCHER_KEY_PREFIX" > \S+\/users\.acl &&/);
      expect(text).toMatch(/aclfile/);
      // The nodes: the fleet's user, never the default one (which is off).
      expect(text).toMatch(
        /LAUNCHER_REDIS_URL: redis:\/\/launcher:\$\{REDIS_LAUNCHER_PASSWORD:-\}@172\.30\.59\.10:6379\n/,
      );
      expect(text).not.toMatch(/LAUNCHER_REDIS_URL: redis:\/\/[^l]/);
      // Health checks log in (a bare `redis-cli ping` only gets NOAUTH).
      expect(text).not.toContain('["CMD", "redis-cli", "ping"]');
      expect(text).toContain("redis-cli --user admin ping | grep -q PONG");
      // Every password the file reads is in .env.example.
      for (const [, name] of text.matchAll(/\$\{(REDIS_[A-Z_]+):-\}/g))
        expect(env).toMatch(new RegExp(`^${name}=$`, "m"));
    }
    const sentinel = read("docker-compose.sentinel.yml");
    expect(sentinel).toContain("masteruser replication");
    expect(sentinel).toContain("sentinel auth-user launcher sentinel");
  });

  it("the failover suite runs its Redis servers with the same ACL and its nodes as the fleet's user", () => {
    expect(read("test/helpers/redis-acl.ts")).toContain('join(REPO_ROOT, "ops", "redis-acl.sh")');
    const harness = read("test/failover/harness/redis.ts");
    for (const want of [
      "fleetAcl(opts.keyPrefix)",
      "fleetAcl(opts.keyPrefix, { replication: true, sentinel: true })",
      "`aclfile $",
      '"masteruser replication"',
      "`sentinel auth-user $",
      "LAUNCHER_REDIS_URL_FILE",
    ]) {
      expect(harness).toContain(want);
    }
    expect(harness).not.toContain("LAUNCHER_REDIS_URL:");
  });

  it("the image runs a node as a non-root user", () => {
    const dockerfile = read("Dockerfile");
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^CMD \["node", ("--[^"]+", )*"dist\/cli\.js", "node"\]$/m);
    expect(dockerfile).toMatch(/^HEALTHCHECK .*/m);
    expect(dockerfile).toMatch(/^EXPOSE 5559$/m);
  });
});
