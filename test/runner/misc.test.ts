import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { advertiseIp, networkInfo } from "../../src/runner/network.js";
import { parseProcStat } from "../../src/runner/proc.js";
import { buildArgv, shellQuote } from "../../src/runner/shell.js";
import { decodeJobId, encodeJobId, removeJobDir } from "../../src/runner/supervisor.js";
import { LaunchError } from "../../src/runner/types.js";
import { findInPasswd, lookupUser, runAsFor } from "../../src/runner/users.js";
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
  it("parses passwd entries", () => {
    const passwd =
      "# comment\nroot:x:0:0:root:/root:/bin/bash\nann:x:1000:100:Ann,,,:/home/ann:/bin/sh\nbad:x:y:1:::\n";
    expect(findInPasswd(passwd, "ann")).toEqual({ uid: 1000, gid: 100, home: "/home/ann" });
    expect(findInPasswd(passwd, "bad")).toBeUndefined();
    expect(findInPasswd(passwd, "nobody")).toBeUndefined();
  });

  it("looks users up in a passwd file", () => {
    const file = join(fx.tempDir(), "passwd");
    writeFileSync(file, "ann:x:1000:100::/home/ann:/bin/sh\n");
    expect(lookupUser("ann", file)?.uid).toBe(1000);
    expect(lookupUser("root")?.uid).toBe(0);
    expect(lookupUser("no-such-user-here")).toBeUndefined();
  });

  it("switches users only as root, never to root", () => {
    expect(runAsFor("root")).toBeUndefined();
    expect(runAsFor("no-such-user-here")).toBeUndefined();
    const expected = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : undefined;
    if (lookupUser("nobody")?.uid === 65534) expect(runAsFor("nobody")).toEqual(expected);
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
