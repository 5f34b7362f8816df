import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { advertiseIp, networkInfo } from "../../src/runner/network.js";
import { parseProcStat } from "../../src/runner/proc.js";
import { buildArgv, shellQuote } from "../../src/runner/shell.js";
import { decodeJobId, encodeJobId, readStatus, removeJobDir } from "../../src/runner/supervisor.js";
import { LaunchError } from "../../src/runner/types.js";
import { UserDirectory } from "../../src/runner/users.js";
import { Fixture } from "./helpers.js";

const fx = new Fixture();
afterEach(() => fx.cleanup());

describe("shell", () => {
  it("single-quotes arguments", () => {
    expect(shellQuote("plain")).toBe("'plain'");
    expect(shellQuote("")).toBe("''");
    expect(shellQuote("it's $HOME")).toBe(`'it'\\''s $HOME'`);
  });

  it("builds argv for commands and executables", () => {
    expect(buildArgv({ command: "echo", args: ["a b", "c"] })).toEqual(["/bin/sh", "-c", "echo 'a b' 'c'"]);
    expect(buildArgv({ command: "ls -l | wc" })).toEqual(["/bin/sh", "-c", "ls -l | wc"]);
    expect(buildArgv({ exe: "/bin/ls", args: ["a b"] })).toEqual(["/bin/ls", "a b"]);
    expect(() => buildArgv({})).toThrow(LaunchError);
    expect(() => buildArgv({ command: "a", exe: "b" })).toThrow(LaunchError);
  });
});

describe("users", () => {
  it("looks users up through the supervisor daemon (NSS), ids, groups, home and shell", async () => {
    const { runner } = fx.runner();
    const root = await runner.lookupUser("root");
    expect(root).toMatchObject({ name: "root", uid: 0, gid: 0, home: "/root" });
    expect(root?.groups).toContain(0);
    expect(await runner.lookupUser("no-such-user-here")).toBeUndefined();
    // Names that could not be a user are not even asked for.
    for (const bad of ["", "a b", "a/b", "a:b", "x".repeat(300), "a\nuser root"]) {
      expect(await runner.lookupUser(bad)).toBeUndefined();
    }
  });

  it("remembers answers, shares concurrent lookups, and asks again after a failure", async () => {
    const asked: string[] = [];
    let fail = true;
    const dir = new UserDirectory(async (name) => {
      asked.push(name);
      if (name === "flaky" && fail) throw new Error("daemon down");
      return name === "ann"
        ? { name, uid: 1000, gid: 1000, groups: [1000], home: "/h", shell: "/bin/sh" }
        : undefined;
    });
    const [a, b] = await Promise.all([dir.get("ann"), dir.get("ann")]);
    expect(a).toEqual(b);
    expect(await dir.get("ann")).toEqual(a);
    expect(await dir.get("nobody-here")).toBeUndefined();
    await expect(dir.get("flaky")).rejects.toThrow("daemon down");
    fail = false;
    expect(await dir.get("flaky")).toBeUndefined();
    expect(asked).toEqual(["ann", "nobody-here", "flaky", "flaky"]);
  });
});

describe("network", () => {
  it("lists routable addresses and the host name", () => {
    const info = networkInfo();
    expect(info.host.length).toBeGreaterThan(0);
    for (const ip of info.ipAddresses) {
      expect(ip).not.toMatch(/^(127\.|169\.254\.|::1$|fe80:)/i);
    }
    const all = Object.values(networkInterfaces()).flatMap((l) => l ?? []);
    const external = all.filter(
      (a) => !a.internal && !a.address.startsWith("169.254.") && !/^fe80/i.test(a.address),
    );
    expect(info.ipAddresses.sort()).toEqual([...new Set(external.map((a) => a.address))].sort());
    expect(advertiseIp()).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
  });
});

describe("proc", () => {
  it("parses stat lines whose command contains spaces and parentheses", () => {
    const rest = Array.from({ length: 50 }, (_, i) => i + 3);
    rest[0] = 0; // placeholder replaced by state below
    const fields = ["S", ...rest.slice(1)].join(" ");
    const stat = parseProcStat(`42 (a) (b c) ${fields}`);
    expect(stat).toMatchObject({
      pid: 42,
      state: "S",
      ppid: 4,
      pgrp: 5,
      utime: 14,
      stime: 15,
      startTime: 22,
      rss: 24,
    });
  });
});

describe("job ids", () => {
  it("encode to safe, reversible directory names", () => {
    for (const id of ["abc-DEF_1", "..", "a/b", "x y%é", "."]) {
      const name = encodeJobId(id);
      expect(name).toMatch(/^[A-Za-z0-9_%-]+$/);
      expect(decodeJobId(name)).toBe(id);
    }
  });
});

describe("removeJobDir", () => {
  it("removes a job dir of plain files", () => {
    const dir = join(fx.tempDir(), "job");
    mkdirSync(dir);
    for (const name of ["spec", "status", "stdin"]) writeFileSync(join(dir, name), name);
    removeJobDir(dir);
    expect(existsSync(dir)).toBe(false);
  });

  it("does nothing for a missing dir and removes whatever else is there", () => {
    const base = fx.tempDir();
    removeJobDir(join(base, "missing"));
    const nested = join(base, "nested");
    mkdirSync(join(nested, "sub", "deeper"), { recursive: true });
    writeFileSync(join(nested, "status"), "{}");
    writeFileSync(join(nested, "sub", "deeper", "x"), "x");
    removeJobDir(nested);
    expect(existsSync(nested)).toBe(false);
    const file = join(base, "a-file");
    writeFileSync(file, "not a dir");
    removeJobDir(file);
    expect(existsSync(file)).toBe(false);
  });
});

describe("readStatus", () => {
  it("is the last whole line the supervisor appended, not one still being written", () => {
    const dir = fx.tempDir();
    const status = join(dir, "status");
    expect(readStatus(dir)).toBeUndefined();
    writeFileSync(status, "");
    expect(readStatus(dir)).toBeUndefined();
    const first = '{"supervisorPid":10,"supervisorStart":5}\n';
    const second = '{"pid":11,"startTime":6,"supervisorPid":10,"supervisorStart":5}\n';
    writeFileSync(status, first);
    expect(readStatus(dir)).toEqual({ supervisorPid: 10, supervisorStart: 5 });
    writeFileSync(status, first + second.slice(0, 20));
    expect(readStatus(dir)).toEqual({ supervisorPid: 10, supervisorStart: 5 });
    writeFileSync(status, first + second);
    expect(readStatus(dir)).toEqual({ pid: 11, startTime: 6, supervisorPid: 10, supervisorStart: 5 });
    // As older supervisors wrote it: one object, replaced whole (here without a newline).
    writeFileSync(status, '{"supervisorPid":10,"exitCode":3}');
    expect(readStatus(dir)).toEqual({ supervisorPid: 10, exitCode: 3 });
    writeFileSync(status, '{"supervisorPid":"not a number"}\n');
    expect(readStatus(dir)).toBeUndefined();
  });
});
