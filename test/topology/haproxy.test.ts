// The loopback HAProxy config is ops/haproxy.cfg with only addresses replaced.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { HAPROXY_CFG_PATH, renderHaproxyConfig, renderLoopbackConfig } from "../../src/topology/index.js";

const template = readFileSync(HAPROXY_CFG_PATH, "utf8");
const servers = [
  { name: "node-1", address: "127.0.0.2:5559" },
  { name: "node-2", address: "127.0.0.3:5560" },
];
const rendered = renderHaproxyConfig(template, {
  bind: "127.0.0.1:8080",
  statsBind: "127.0.0.1:8404",
  servers,
});

/** Lines that are neither comments, blank, binds nor servers: the settings. */
const settings = (cfg: string) =>
  cfg
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#") && !/^(bind|server)\s/.test(l));

describe("renderHaproxyConfig", () => {
  it("keeps every setting of ops/haproxy.cfg", () => {
    expect(settings(rendered)).toEqual(settings(template));
  });

  it("ships the failover settings the design relies on", () => {
    const lines = settings(template);
    for (const expected of [
      "option httpchk GET /readyz",
      "http-check expect status 200",
      "retries 2",
      "timeout connect 2s",
      "timeout tunnel 1h",
    ]) {
      expect(lines).toContain(expected);
    }
    expect(lines.some((l) => l.startsWith("option redispatch"))).toBe(true);
    expect(lines.find((l) => l.startsWith("default-server"))).toMatch(/inter 500ms .*fall 2 rise 2/);
  });

  it("replaces the binds and the servers, and only those", () => {
    const binds = rendered.split("\n").filter((l) => /^\s*bind\s/.test(l));
    expect(binds.map((l) => l.trim())).toEqual(["bind 127.0.0.1:8080", "bind 127.0.0.1:8404"]);
    const serverLines = rendered.split("\n").filter((l) => /^\s*server\s/.test(l));
    expect(serverLines.map((l) => l.trim())).toEqual([
      "server node-1 127.0.0.2:5559",
      "server node-2 127.0.0.3:5560",
    ]);
  });

  it("leaves the stats section out when no stats address is given", () => {
    const cfg = renderHaproxyConfig(template, { bind: "127.0.0.1:1", servers });
    expect(cfg).not.toMatch(/^listen stats/m);
    expect(cfg).toMatch(/^backend launcher_nodes/m);
  });

  it("refuses a template without the sections it rewrites", () => {
    expect(() => renderHaproxyConfig("defaults\n    mode http\n", { bind: "x:1", servers })).toThrow(
      /frontend launcher/,
    );
    const noServers = template.replace(/^\s*server .*$/gm, "");
    expect(() => renderHaproxyConfig(noServers, { bind: "x:1", servers })).toThrow(/no server lines/);
  });

  it("marks the generated file as generated", () => {
    expect(renderLoopbackConfig({ bind: "127.0.0.1:1", servers })).toMatch(
      /^# Generated from .*ops\/haproxy\.cfg/,
    );
  });
});
