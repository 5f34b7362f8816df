// `launcher-fleet plugin` options: the Launcher's command line, the plugin config file, their
// mapping onto node settings, and (through a real process) logging and config reload.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  clusterConfigProblem,
  clusterInfoReloader,
  PLUGIN_DEFAULT_PORT,
  parseConfigFile,
  parsePluginArgs,
  resolvePluginConfig,
  UsageError,
} from "../../src/plugin/command.js";
import { uniquePrefix } from "../helpers/redis.js";
import { as, startPlugin } from "./driver.js";

describe("parsePluginArgs", () => {
  it("reads --name value, --name=value and bare or valued booleans", () => {
    const { options, unknown } = parsePluginArgs([
      "--plugin-name=Fleet",
      "--scratch-path",
      "/var/lib/x",
      "--enable-debug-logging",
      "--unprivileged=0",
      "--job-expiry-hours",
      "12",
      "--redis-url",
      "redis://r:6379",
    ]);
    expect(options).toEqual({
      "plugin-name": "Fleet",
      "scratch-path": "/var/lib/x",
      "enable-debug-logging": "1",
      unprivileged: "0",
      "job-expiry-hours": "12",
      "redis-url": "redis://r:6379",
    });
    expect(unknown).toEqual([]);
    expect(parsePluginArgs(["--enable-debug-logging", "0", "--unprivileged", "true"]).options).toEqual({
      "enable-debug-logging": "0",
      unprivileged: "1",
    });
  });

  it("accepts the Launcher's options it has no use for, and only warns about unknown ones", () => {
    const { options, unknown } = parsePluginArgs([
      "--server-user=rstudio-server",
      "--thread-pool-size",
      "8",
      "--launcher-config-file=/etc/rstudio/launcher.conf",
      "--future-option",
      "v",
      "--future-flag",
      "--port=0",
      "stray",
    ]);
    expect(options).toEqual({ port: "0" });
    expect(unknown).toEqual(["--future-option", "--future-flag", "stray"]);
  });

  it("refuses a known option without its value and a bad boolean", () => {
    expect(() => parsePluginArgs(["--scratch-path"])).toThrow(UsageError);
    expect(() => parsePluginArgs(["--plugin-name", "--port", "0"])).toThrow("--plugin-name needs a value");
    expect(() => parsePluginArgs(["--unprivileged=maybe"])).toThrow(UsageError);
  });

  it("takes every boolean node setting bare or valued, with the node's boolean words", () => {
    expect(parsePluginArgs(["--auth-disabled", "--allow-root-jobs", "off"]).options).toEqual({
      "auth-disabled": "1",
      "allow-root-jobs": "0",
    });
    expect(() => parsePluginArgs(["--auth-disabled=maybe"])).toThrow(
      '--auth-disabled must be one of 1/0/true/false/yes/no/on/off, got "maybe"',
    );
  });
});

describe("parseConfigFile", () => {
  it("reads key=value lines with option or LAUNCHER_* names, comments and blanks", () => {
    const text = [
      "# launcher-fleet plugin",
      "",
      "redis-url = redis://redis.internal:6379",
      "LAUNCHER_KEY_PREFIX=fleet1",
      "LAUNCHER_AUTH_SECRET=s3cret=with=equals=and-long-enough-for-hs256",
      "enable-debug-logging=true",
      "; ignored by us",
      "server-user=rstudio-server",
      "heartbeat-interval-seconds=10",
    ].join("\n");
    expect(parseConfigFile(text, "f.conf")).toEqual({
      "redis-url": "redis://redis.internal:6379",
      "key-prefix": "fleet1",
      "auth-secret": "s3cret=with=equals=and-long-enough-for-hs256",
      "enable-debug-logging": "1",
      "heartbeat-interval-seconds": "10",
    });
  });

  it("names the file and line of a mistake", () => {
    expect(() => parseConfigFile("redis-url=x\nredis-urll=y", "/etc/f.conf")).toThrow(
      '/etc/f.conf:2: unknown option "redis-urll"',
    );
    expect(() => parseConfigFile("no equals sign", "f")).toThrow("f:1: expected key=value");
    expect(() => parseConfigFile("config-file=/x", "f")).toThrow("cannot be set from a config file");
    // LAUNCHER_* keys are the settings table's names, not any name a string transform accepts.
    expect(() => parseConfigFile("LAUNCHER_PLUGIN_NAME=x", "f")).toThrow(
      'f:1: unknown option "LAUNCHER_PLUGIN_NAME"',
    );
    expect(() => parseConfigFile("LAUNCHER_AUTH_DISABLED=maybe", "f")).toThrow(
      /^f:1: auth-disabled must be one of/,
    );
    expect(parseConfigFile("LAUNCHER_AUTH_SECRET_FILE=/s", "f")).toEqual({ "auth-secret-file": "/s" });
  });
});

describe("resolvePluginConfig", () => {
  const files: Record<string, string> = {
    "/etc/rstudio/launcher.fleet.conf":
      "redis-url=redis://from-file:6379\nscratch-path=/from/file\nmax-message-size=65536",
    "/custom.conf":
      "plugin-name=Custom\nnode-connection-timeout-seconds=7\nLAUNCHER_LOG_LEVEL=warn\nenable-debug-logging=1",
  };
  const read = (f: string) => files[f];

  it("maps the Launcher's options onto node settings, command line over config file", () => {
    const c = resolvePluginConfig(
      ["--plugin-name", "Fleet", "--scratch-path", "/from/cli", "--job-expiry-hours=6"],
      {},
      read,
    );
    expect(c.configFile).toBe("/etc/rstudio/launcher.fleet.conf");
    expect(c.settingFlags).toEqual({
      "redis-url": "redis://from-file:6379",
      "scratch-path": "/from/cli",
      "job-expiry-hours": "6",
      "cluster-name": "Fleet",
      port: String(PLUGIN_DEFAULT_PORT),
    });
    expect(c).toMatchObject({
      pluginName: "Fleet",
      maxMessageSize: 65536,
      heartbeatSeconds: 5,
      unprivileged: false,
    });
  });

  it("reads an explicit config file and derives debug logging and the peer timeout", () => {
    const c = resolvePluginConfig(
      ["--config-file", "/custom.conf", "--heartbeat-interval-seconds=0"],
      { LAUNCHER_PORT: "7000" },
      read,
    );
    expect(c.settingFlags).toEqual({
      "log-level": "debug",
      "cluster-name": "Custom",
      "peer-timeout-ms": "7000",
    });
    expect(c).toMatchObject({ pluginName: "Custom", heartbeatSeconds: 0 });
    expect(resolvePluginConfig(["--config-file", "/missing.conf"], {}, read).configFileMissing).toBe(true);
    expect(resolvePluginConfig([], {}, read).configFile).toBeUndefined();
  });

  it("keeps an explicit cluster name and refuses bad numbers", () => {
    expect(
      resolvePluginConfig(["--plugin-name=A", "--cluster-name=B"], {}, read).settingFlags["cluster-name"],
    ).toBe("B");
    expect(() => resolvePluginConfig(["--max-message-size=12"], {}, read)).toThrow("max-message-size");
    expect(() => resolvePluginConfig(["--heartbeat-interval-seconds=-1"], {}, read)).toThrow(UsageError);
  });
});

describe("cluster config reload", () => {
  it("validates the file and keeps the previous info on failure", () => {
    const dir = mkdtempSync(join(tmpdir(), "plugin-cluster-"));
    const file = join(dir, "cluster.json");
    writeFileSync(file, JSON.stringify({ queues: ["a"] }));
    const initial = {
      supportsContainers: false,
      queues: [],
      resourceLimits: [],
      placementConstraints: [],
      config: [],
      resourceProfiles: [],
    };
    const r = clusterInfoReloader(file, initial);
    expect(r.current()).toBe(initial);
    expect(r.reload()).toEqual({ errorType: 0, errorMessage: "" });
    expect(r.current().queues).toEqual(["a"]);
    writeFileSync(file, "{ nope");
    expect(r.reload()).toMatchObject({ errorType: 1 });
    writeFileSync(file, JSON.stringify({ resourceLimits: [{ value: "1" }] }));
    expect(r.reload()).toMatchObject({
      errorType: 2,
      errorMessage: expect.stringContaining("resourceLimits/0"),
    });
    expect(r.current().queues).toEqual(["a"]);
    expect(clusterInfoReloader(undefined, initial).reload()).toEqual({ errorType: 0, errorMessage: "" });
    expect(clusterConfigProblem([])).toBe("expected a JSON object");
    expect(clusterConfigProblem({ queues: [1] })).toBe("queues must be an array of strings");
  });
});

describe("a plugin process configured by a config file", () => {
  it("uses the file's settings, logs to --logging-dir only, and reloads the cluster config", async () => {
    const dir = mkdtempSync(join(tmpdir(), "plugin-conf-"));
    const cluster = join(dir, "cluster.json");
    writeFileSync(cluster, JSON.stringify({ queues: ["short"], defaultQueue: "short" }));
    const conf = join(dir, "launcher.fleet.conf");
    writeFileSync(
      conf,
      [
        `plugin-name=Fleet`,
        `logging-dir=${join(dir, "logs")}`,
        `enable-debug-logging=1`,
        `LAUNCHER_CLUSTER_CONFIG_FILE=${cluster}`,
      ].join("\n"),
    );
    const p = await startPlugin({
      prefix: uniquePrefix("plugin-conf"),
      args: ["--config-file", conf, "--heartbeat-interval-seconds", "1"],
    });
    try {
      // Unsolicited heartbeat responses every --heartbeat-interval-seconds.
      expect(await p.waitFor((m) => m.messageType === 0, { timeoutMs: 3_000 })).toEqual({
        messageType: 0,
        requestId: 0,
        responseId: 0,
      });
      const info = await p.request({ messageType: 9, ...as("alice") });
      expect(info).toMatchObject({ messageType: 8, queues: ["short"], defaultQueue: "short" });
      const submitted = await p.request({ messageType: 2, ...as("alice"), job: { command: "true" } });
      expect(submitted.jobs[0]).toMatchObject({ cluster: "Fleet" });

      writeFileSync(cluster, JSON.stringify({ queues: ["short", "long"] }));
      expect(await p.request({ messageType: 202, ...as("*") })).toMatchObject({
        errorType: 0,
        errorMessage: "",
      });
      expect((await p.request({ messageType: 9, ...as("alice") })).queues).toEqual(["short", "long"]);
      writeFileSync(cluster, "not json");
      expect(await p.request({ messageType: 202, ...as("*") })).toMatchObject({ errorType: 1 });
      expect((await p.request({ messageType: 9, ...as("alice") })).queues).toEqual(["short", "long"]);
    } finally {
      expect((await p.close()).code).toBe(0);
    }
    expect(p.protocolErrors).toEqual([]);
    const log = readFileSync(join(dir, "logs", "Fleet.log"), "utf8");
    expect(log).toContain('"msg":"starting launcher-fleet plugin"');
    expect(log).toContain('"level":20'); // debug
    expect(p.stderr).toContain("logging to");
    expect(p.stderr).not.toContain("starting launcher-fleet plugin");
  });

  it("exits with status 2 and a message on stderr for a bad config file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "plugin-bad-"));
    const conf = join(dir, "bad.conf");
    writeFileSync(conf, "redis-url=x\nwhat=ever\n");
    const p = await startPlugin({
      prefix: uniquePrefix("plugin-bad"),
      args: ["--config-file", conf],
      bootstrap: false,
    });
    const { code } = await p.exited;
    expect(code).toBe(2);
    expect(p.stderr).toContain(`${conf}:2: unknown option "what"`);
    expect(p.messages).toEqual([]);
  });
});
