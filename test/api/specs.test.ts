import { describe, expect, it } from "vitest";
import type { Mount, Port } from "../../src/api/job.js";
import {
  ErrInvalidEnvSpec,
  ErrInvalidMountPath,
  ErrInvalidMountSpec,
  ErrInvalidPort,
  ErrInvalidPortSpec,
  envToString,
  isSpecError,
  mountToString,
  parseEnvSpec,
  parseMountSpec,
  parsePortSpec,
  portToString,
  SpecError,
  type SpecSentinel,
} from "../../src/api/specs.js";

/** Asserts that `fn` throws a SpecError with `sentinel` and the Go `%w: %q` text for `value`. */
function expectSpecError(fn: () => unknown, sentinel: SpecSentinel, value: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(isSpecError(caught, sentinel)).toBe(true);
  expect((caught as SpecError).value).toBe(value);
  expect((caught as SpecError).message).toBe(`${sentinel}: ${JSON.stringify(value)}`);
}

const host = (src: string, dst: string, readOnly = false): Mount => ({
  mountPath: dst,
  ...(readOnly ? { readOnly: true } : {}),
  mountSource: { type: "host", source: { path: src } },
});

describe("sentinels", () => {
  it("have Go's texts", () => {
    expect([
      ErrInvalidMountSpec,
      ErrInvalidMountPath,
      ErrInvalidPortSpec,
      ErrInvalidPort,
      ErrInvalidEnvSpec,
    ]).toEqual([
      "invalid mount spec",
      "invalid mount path",
      "invalid port spec",
      "invalid port",
      "invalid env spec",
    ]);
  });

  it("isSpecError tests the sentinel like errors.Is", () => {
    const err = new SpecError(ErrInvalidPort, "x");
    expect(err).toBeInstanceOf(Error);
    expect(isSpecError(err)).toBe(true);
    expect(isSpecError(err, ErrInvalidPort)).toBe(true);
    expect(isSpecError(err, ErrInvalidPortSpec)).toBe(false);
    expect(isSpecError(new Error('invalid port: "x"'))).toBe(false);
  });
});

describe("parseMountSpec (Go Mount.Set (the Launcher's semantics))", () => {
  it.each([
    ["/mnt/data", host("/mnt/data", "/mnt/data")],
    ["/mnt/data:/home", host("/mnt/data", "/home")],
    ["/mnt/data:/home:ro", host("/mnt/data", "/home", true)],
    ["/mnt/data:/home:rw", host("/mnt/data", "/home")],
    ["/a/../b", host("/a/../b", "/a/../b")],
  ])("%j → host mount", (spec, mount) => {
    expect(parseMountSpec(spec)).toEqual(mount);
  });

  it("omits readOnly for rw", () => {
    expect(Object.hasOwn(parseMountSpec("/a:/b:rw"), "readOnly")).toBe(false);
    expect(parseMountSpec("/a:/b:ro").readOnly).toBe(true);
  });

  it.each<[string, SpecSentinel, string]>([
    ["data", ErrInvalidMountPath, "data"],
    ["", ErrInvalidMountPath, ""],
    ["./x", ErrInvalidMountPath, "./x"],
    ["data:/home:zz", ErrInvalidMountPath, "data"],
    ["/a:rel", ErrInvalidMountPath, "rel"],
    ["/a:", ErrInvalidMountPath, ""],
    ["/a:ro", ErrInvalidMountPath, "ro"],
    ["/a:/b:RO", ErrInvalidMountSpec, "/a:/b:RO"],
    ["/a:/b:", ErrInvalidMountSpec, "/a:/b:"],
    ["/a:/b:x", ErrInvalidMountSpec, "/a:/b:x"],
    ["/a:rel:zz", ErrInvalidMountSpec, "/a:rel:zz"],
    ["/a:rel:ro", ErrInvalidMountPath, "rel"],
    ["/a::ro", ErrInvalidMountPath, ""],
    ["/a:/b:ro:x", ErrInvalidMountSpec, "/a:/b:ro:x"],
    ["rel:/b:ro:x", ErrInvalidMountPath, "rel"],
  ])("%j → %s %j", (spec, sentinel, value) => {
    expectSpecError(() => parseMountSpec(spec), sentinel, value);
  });
});

describe("mountToString (Go Mount.String)", () => {
  it.each([
    ["/x", "/x:/x:rw"],
    ["/mnt/data:/home", "/mnt/data:/home:rw"],
    ["/mnt/data:/home:ro", "/mnt/data:/home:ro"],
  ])("Set(%j) then String() → %j (always three parts)", (spec, text) => {
    expect(mountToString(parseMountSpec(spec))).toBe(text);
  });

  it.each<[string, Mount | undefined]>([
    ["no mount", undefined],
    ["a non-host type", { mountPath: "/d", mountSource: { type: "nfs", source: { host: "h", path: "/p" } } }],
    [
      "a host type with a raw (non-object) source",
      { mountPath: "/d", mountSource: { type: "host", source: "x" } },
    ],
    ["a host type with no path", { mountPath: "/d", mountSource: { type: "host", source: {} } }],
  ])("%s → empty", (_label, mount) => {
    expect(mountToString(mount)).toBe("");
  });
});

describe("parsePortSpec (Go Port.Set (the Launcher's semantics))", () => {
  it.each<[string, Port]>([
    ["80", { targetPort: 80, protocol: "tcp" }],
    ["8080:80", { targetPort: 80, publishedPort: 8080, protocol: "tcp" }],
    ["80:80", { targetPort: 80, protocol: "tcp" }],
    ["8080:80/udp", { targetPort: 80, publishedPort: 8080, protocol: "udp" }],
    ["80/", { targetPort: 80, protocol: "" }],
    ["80/tcp/x", { targetPort: 80, protocol: "tcp/x" }],
    ["-1", { targetPort: -1, protocol: "tcp" }],
    ["99999", { targetPort: 99999, protocol: "tcp" }],
    ["+80", { targetPort: 80, protocol: "tcp" }],
    ["0080", { targetPort: 80, protocol: "tcp" }],
    ["+80:080", { targetPort: 80, protocol: "tcp" }],
    ["80/UDP", { targetPort: 80, protocol: "UDP" }],
  ])("%j → %j", (spec, port) => {
    expect(parsePortSpec(spec)).toEqual(port);
  });

  it("omits publishedPort when equal to the target", () => {
    expect(Object.hasOwn(parsePortSpec("80:80"), "publishedPort")).toBe(false);
  });

  it.each<[string, SpecSentinel, string]>([
    ["1:2:3", ErrInvalidPortSpec, "1:2:3"],
    ["1:2:3/udp", ErrInvalidPortSpec, "1:2:3/udp"],
    ["abc", ErrInvalidPort, "abc"],
    ["", ErrInvalidPort, ""],
    [":80", ErrInvalidPort, ""],
    [" 80", ErrInvalidPort, " 80"],
    ["80:", ErrInvalidPort, ""],
    ["80:x", ErrInvalidPort, "x"],
    ["1_000", ErrInvalidPort, "1_000"],
    ["0x50", ErrInvalidPort, "0x50"],
    ["8e1", ErrInvalidPort, "8e1"],
    ["99999999999999999999", ErrInvalidPort, "99999999999999999999"],
  ])("%j → %s %j", (spec, sentinel, value) => {
    expectSpecError(() => parsePortSpec(spec), sentinel, value);
  });
});

describe("portToString (Go Port.String)", () => {
  it.each<[Port | undefined, string]>([
    [undefined, ""],
    [{ targetPort: 80, protocol: "" }, "80:80/tcp"],
    [{ targetPort: 80, publishedPort: 8080, protocol: "TCP" }, "8080:80/TCP"],
    [{ targetPort: 53, protocol: "udp" }, "53:53/udp"],
  ])("%j → %j", (port, text) => {
    expect(portToString(port)).toBe(text);
  });

  it("round-trips a parsed spec", () => {
    expect(portToString(parsePortSpec("8080:80/udp"))).toBe("8080:80/udp");
    expect(portToString(parsePortSpec("80"))).toBe("80:80/tcp");
  });
});

describe("parseEnvSpec / envToString (Go Env.Set / Env.String)", () => {
  it.each([
    ["A=B", { name: "A", value: "B" }],
    ["A=", { name: "A", value: "" }],
    ["=B", { name: "", value: "B" }],
    ["PATH=/usr/bin:/bin", { name: "PATH", value: "/usr/bin:/bin" }],
  ])("%j → %j", (spec, env) => {
    expect(parseEnvSpec(spec)).toEqual(env);
  });

  it.each(["A", "", "A=B=C", "A==B"])("%j → invalid env spec", (spec) => {
    expectSpecError(() => parseEnvSpec(spec), ErrInvalidEnvSpec, spec);
  });

  it("String is name=value, empty for none", () => {
    expect(envToString({ name: "A", value: "B" })).toBe("A=B");
    expect(envToString({ name: "A", value: "" })).toBe("A=");
    expect(envToString(undefined)).toBe("");
  });
});
