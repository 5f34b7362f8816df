import { describe, expect, it } from "vitest";
import { ApiError, ErrCode } from "../../src/api/errors.js";
import type { Mount, MountSource } from "../../src/api/job.js";
import {
  decodeMountSource,
  hostMountPath,
  isHostMount,
  validateMountSource,
} from "../../src/api/mount-source.js";

describe("decodeMountSource (Go MountSource.UnmarshalJSON (the Launcher's semantics))", () => {
  it.each<[string, unknown, MountSource]>([
    ["host with a path", { type: "host", source: { path: "/d" } }, { type: "host", source: { path: "/d" } }],
    [
      "host drops other keys",
      { type: "host", source: { path: "/d", extra: 1 } },
      { type: "host", source: { path: "/d" } },
    ],
    [
      "host with {} (no required-field check)",
      { type: "host", source: {} },
      { type: "host", source: { path: "" } },
    ],
    [
      "host with null source (Go: no-op)",
      { type: "host", source: null },
      { type: "host", source: { path: "" } },
    ],
    [
      "nfs kept as-is",
      { type: "nfs", source: { host: "h", path: "/p", x: [1] } },
      { type: "nfs", source: { host: "h", path: "/p", x: [1] } },
    ],
    [
      "azureFile kept as-is",
      { type: "azureFile", source: { a: 1 } },
      { type: "azureFile", source: { a: 1 } },
    ],
    ["cephFs kept as-is", { type: "cephFs", source: "raw" }, { type: "cephFs", source: "raw" }],
    ["glusterFs kept as-is", { type: "glusterFs", source: 7 }, { type: "glusterFs", source: 7 }],
    [
      "passthrough kept as-is",
      { type: "passthrough", source: { any: true } },
      { type: "passthrough", source: { any: true } },
    ],
    ["a custom type kept as-is", { type: "myFs", source: ["x"] }, { type: "myFs", source: ["x"] }],
    ["a non-host type with no source → null", { type: "nfs" }, { type: "nfs", source: null }],
    ['no type → "", raw source kept', { source: { path: "/d" } }, { type: "", source: { path: "/d" } }],
  ])("%s", (_label, raw, expected) => {
    expect(decodeMountSource(raw)).toEqual(expected);
  });

  it("keeps a non-host source by reference (unchanged, unvalidated)", () => {
    const source = { host: "h" };
    expect(decodeMountSource({ type: "nfs", source }).source).toBe(source);
  });

  it("re-encodes a non-host source unchanged and a missing one as null", () => {
    const raw = { type: "nfs", source: { path: "/p", host: "h" } };
    expect(JSON.stringify(decodeMountSource(raw))).toBe(JSON.stringify(raw));
    expect(JSON.stringify(decodeMountSource({ type: "x" }))).toBe('{"type":"x","source":null}');
  });

  it.each<[string, unknown]>([
    ["host without a source (Go: unexpected end of JSON input)", { type: "host" }],
    ["host with a string source (Go: type mismatch)", { type: "host", source: "x" }],
    ["host with an array source", { type: "host", source: ["/d"] }],
    ["host with a non-string path", { type: "host", source: { path: 5 } }],
    ["a non-string type", { type: 1, source: {} }],
    ["a non-object", "host"],
    ["null", null],
    ["an array", [{ type: "host" }]],
  ])("rejects %s with InvalidRequest", (_label, raw) => {
    let caught: unknown;
    try {
      decodeMountSource(raw);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ApiError);
    expect((caught as ApiError).code).toBe(ErrCode.InvalidRequest);
    expect((caught as ApiError).message).toMatch(/^Invalid mountSource: /);
  });
});

describe("validateMountSource (C++ schemas)", () => {
  it.each<[string, MountSource, string | undefined]>([
    ["azureFile valid", { type: "azureFile", source: { secretName: "s", shareName: "sh" } }, undefined],
    [
      "azureFile without secret",
      { type: "azureFile", source: { shareName: "sh" } },
      'azureFile mount requires "secretName"',
    ],
    [
      "azureFile without share",
      { type: "azureFile", source: { secretName: "s" } },
      'azureFile mount requires "shareName"',
    ],
    ["cephFs valid (monitors only)", { type: "cephFs", source: { monitors: ["m1"] } }, undefined],
    [
      "cephFs with optional fields",
      {
        type: "cephFs",
        source: { monitors: ["m1", "m2"], path: "/", user: "u", secretFile: "f", secretRef: "r" },
      },
      undefined,
    ],
    [
      "cephFs without monitors",
      { type: "cephFs", source: { path: "/" } },
      'cephFs mount requires "monitors"',
    ],
    [
      "cephFs with empty monitors",
      { type: "cephFs", source: { monitors: [] } },
      'cephFs mount requires at least one entry in "monitors"',
    ],
    [
      "cephFs with non-string monitors",
      { type: "cephFs", source: { monitors: [1] } },
      'cephFs mount requires "monitors"',
    ],
    [
      "cephFs with string monitors",
      { type: "cephFs", source: { monitors: "m1" } },
      'cephFs mount requires "monitors"',
    ],
    ["glusterFs valid", { type: "glusterFs", source: { endpoints: "e", path: "/p" } }, undefined],
    [
      "glusterFs without path",
      { type: "glusterFs", source: { endpoints: "e" } },
      'glusterFs mount requires "path"',
    ],
    [
      "glusterFs without endpoints",
      { type: "glusterFs", source: { path: "/p" } },
      'glusterFs mount requires "endpoints"',
    ],
    ["host valid", { type: "host", source: { path: "/d" } }, undefined],
    ["host without path", { type: "host", source: {} }, 'host mount requires "path"'],
    ["nfs valid", { type: "nfs", source: { host: "h", path: "/p" } }, undefined],
    ["nfs without host", { type: "nfs", source: { path: "/p" } }, 'nfs mount requires "host"'],
    ["nfs without path", { type: "nfs", source: { host: "h" } }, 'nfs mount requires "path"'],
    [
      "nfs with a non-string host",
      { type: "nfs", source: { host: 1, path: "/p" } },
      'nfs mount requires "host"',
    ],
    ["nfs with a null source", { type: "nfs", source: null }, 'nfs mount requires a "source" object'],
    ["nfs with a string source", { type: "nfs", source: "h:/p" }, 'nfs mount requires a "source" object'],
    ["passthrough: anything", { type: "passthrough", source: null }, undefined],
    ["custom type: anything", { type: "myFs", source: 42 }, undefined],
    ["empty type: anything", { type: "", source: undefined }, undefined],
  ])("%s", (_label, ms, expected) => {
    expect(validateMountSource(ms)).toBe(expected);
  });
});

describe("isHostMount / hostMountPath", () => {
  const hostMount: Mount = { mountPath: "/d", mountSource: { type: "host", source: { path: "/s" } } };
  const nfsMount: Mount = {
    mountPath: "/d",
    mountSource: { type: "nfs", source: { host: "h", path: "/p" } },
  };

  it("identifies host mounts by type", () => {
    expect(isHostMount(hostMount)).toBe(true);
    expect(isHostMount(nfsMount)).toBe(false);
    expect(isHostMount({ mountPath: "/d", mountSource: { type: "Host", source: {} } })).toBe(false);
  });

  it("tolerates a mount without mountSource (undecoded input)", () => {
    expect(isHostMount({ mountPath: "/d" } as Mount)).toBe(false);
  });

  it("hostMountPath gives the host path only for a host mount with a HostMount source", () => {
    expect(hostMountPath(hostMount)).toBe("/s");
    expect(hostMountPath(nfsMount)).toBeUndefined();
    expect(hostMountPath({ mountPath: "/d", mountSource: { type: "host", source: "raw" } })).toBeUndefined();
  });
});
