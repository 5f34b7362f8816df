import { describe, expect, it } from "vitest";
import { ApiError, ErrCode } from "../../src/api/errors.js";
import { includes, type JobFilter, parseTime } from "../../src/api/filter.js";
import type { Job } from "../../src/api/job.js";

const T = "2024-03-01T12:00:00Z";
const job = (extra: Partial<Job> = {}): Job => ({ id: "j", status: "Running", submissionTime: T, ...extra });

describe("includes (Go JobFilter.Includes (the Launcher's semantics))", () => {
  it.each<[string, JobFilter, Job, boolean]>([
    ["{} includes anything", {}, job(), true],
    ["{} includes a bare job", {}, { id: "bare" }, true],
    ["statuses [Running, Pending] / Running", { statuses: ["Running", "Pending"] }, job(), true],
    ["statuses [Running] / Pending", { statuses: ["Running"] }, job({ status: "Pending" }), false],
    ["statuses [running] / Running (Go is case-sensitive)", { statuses: ["running"] }, job(), false],
    ["statuses [] passes", { statuses: [] }, job(), true],
    ["tags [a,b] / [a]", { tags: ["a", "b"] }, job({ tags: ["a"] }), false],
    ["tags [a,b] / [b,a,c]", { tags: ["a", "b"] }, job({ tags: ["b", "a", "c"] }), true],
    ["tags [filter job] / [filter, job]", { tags: ["filter job"] }, job({ tags: ["filter", "job"] }), false],
    ["tags [a,a] / [a] (duplicates make no difference)", { tags: ["a", "a"] }, job({ tags: ["a"] }), true],
    ["tags [] passes", { tags: [] }, job(), true],
    ["tags [a] / no tags", { tags: ["a"] }, job(), false],
    ["startTime = submitted (inclusive)", { startTime: T }, job(), true],
    ["endTime = submitted (inclusive)", { endTime: T }, job(), true],
    ["startTime = endTime = submitted", { startTime: T, endTime: T }, job(), true],
    ["submitted strictly before startTime", { startTime: "2024-03-01T12:00:00.001Z" }, job(), false],
    ["submitted strictly after endTime", { endTime: "2024-03-01T11:59:59.999Z" }, job(), false],
    ["startTime set, submissionTime missing (Go panics) → excluded", { startTime: T }, { id: "j" }, false],
    ["endTime set, submissionTime missing → excluded", { endTime: T }, { id: "j" }, false],
    [
      "time bound set, submissionTime unparsable → excluded",
      { startTime: T },
      job({ submissionTime: "?" }),
      false,
    ],
    [
      "no time bound, submissionTime missing → included",
      { statuses: ["Running"] },
      { id: "j", status: "Running" },
      true,
    ],
    ["fields do not affect inclusion", { fields: ["bogus"] }, job(), true],
  ])("%s", (_label, filter, j, expected) => {
    expect(includes(filter, j)).toBe(expected);
  });

  it("compares instants, not strings (offsets and precision)", () => {
    expect(includes({ startTime: "2024-03-01T13:00:00+01:00" }, job())).toBe(true);
    expect(includes({ endTime: "2024-03-01T07:00:00-05:00" }, job())).toBe(true);
    expect(includes({ startTime: "2024-03-01T13:00:00.000000001+01:00" }, job())).toBe(false);
    expect(includes({ endTime: "2024-03-01T11:59:59.999999999Z" }, job())).toBe(false);
  });

  it("a missing job status only matches an empty filter status (Go compares the zero value)", () => {
    expect(includes({ statuses: ["Running"] }, { id: "j" })).toBe(false);
    expect(includes({ statuses: [""] }, { id: "j" })).toBe(true);
  });

  it("runs the checks in Go's order: a failing time bound excludes regardless of the rest", () => {
    expect(includes({ startTime: "2025-01-01T00:00:00Z", statuses: ["Running"], tags: [] }, job())).toBe(
      false,
    );
  });

  it("throws InvalidRequest for an invalid bound (callers should parseTime first)", () => {
    expect(() => includes({ endTime: "yesterday" }, job())).toThrow(
      'Invalid endTime: "yesterday" is not an RFC 3339 time',
    );
  });
});

describe("parseTime", () => {
  it.each([
    ["2024-03-01T12:00:00Z", "2024-03-01T12:00:00.000Z"],
    ["2024-03-01T13:30:00+01:30", "2024-03-01T12:00:00.000Z"],
    ["2024-03-01T12:00:00.5Z", "2024-03-01T12:00:00.500Z"],
    ["2024-03-01T12:00:00.123456789Z", "2024-03-01T12:00:00.123456789Z"],
  ])("%j → %j", (text, iso) => {
    expect(parseTime(text, "startTime")).toBe(iso);
  });

  it.each(["xyz", "", "2024-03-01", "2024-03-01 12:00:00Z", "2024-02-30T00:00:00Z"])(
    "%j is rejected with InvalidRequest naming the field",
    (text) => {
      let caught: unknown;
      try {
        parseTime(text, "startTime");
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(ApiError);
      expect((caught as ApiError).code).toBe(ErrCode.InvalidRequest);
      expect((caught as ApiError).message).toBe(
        `Invalid startTime: ${JSON.stringify(text)} is not an RFC 3339 time`,
      );
    },
  );
});
