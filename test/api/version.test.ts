import { describe, expect, it } from "vitest";
import { APIVersion, type Version, versionCompatible, versionString } from "../../src/api/version.js";

describe("APIVersion", () => {
  it("is 3.5.0 and frozen", () => {
    expect(APIVersion).toEqual({ major: 3, minor: 5, patch: 0 });
    expect(Object.isFrozen(APIVersion)).toBe(true);
  });

  it("serialises with the seed's JSON names, omitting empty build/revision", () => {
    expect(JSON.stringify(APIVersion)).toBe('{"major":3,"minor":5,"patch":0}');
  });
});

describe("versionCompatible (major only)", () => {
  it.each<[Version, boolean]>([
    [{ major: 3, minor: 5, patch: 0 }, true],
    [{ major: 3, minor: 0, patch: 0 }, true],
    [{ major: 3, minor: 8, patch: 2, build: 7, revision: "abc" }, true],
    [{ major: 2, minor: 5, patch: 0 }, false],
    [{ major: 4, minor: 0, patch: 0 }, false],
  ])("%j → %s", (v, ok) => {
    expect(versionCompatible(v)).toBe(ok);
  });
});

describe("versionString", () => {
  it.each<[Version, string]>([
    [{ major: 3, minor: 5, patch: 0 }, "3.5.0"],
    [{ major: 3, minor: 5, patch: 1, build: 12 }, "3.5.1.12"],
    [{ major: 3, minor: 5, patch: 1, build: 12, revision: "abc123" }, "3.5.1.12-abc123"],
    [{ major: 3, minor: 5, patch: 1, build: 0, revision: "" }, "3.5.1"],
  ])("%j → %j", (v, text) => {
    expect(versionString(v)).toBe(text);
  });
});
