import { describe, expect, it } from "vitest";
import { ApiError, ErrCode } from "../../src/api/errors.js";
import {
  ALL_STATUSES,
  JobStatus,
  parseStatus,
  parseStatuses,
  TRANSITIONS,
  terminalStatus,
} from "../../src/api/status.js";

describe("JobStatus constants", () => {
  it.each([
    ["Pending", JobStatus.Pending],
    ["Running", JobStatus.Running],
    ["Suspended", JobStatus.Suspended],
    ["Finished", JobStatus.Finished],
    ["Failed", JobStatus.Failed],
    ["Killed", JobStatus.Killed],
    ["Canceled", JobStatus.Canceled],
  ])("%s is the exact wire string", (wire, constant) => {
    expect(constant).toBe(wire);
  });

  it("ALL_STATUSES lists the seven statuses once each", () => {
    expect(ALL_STATUSES).toEqual([
      "Pending",
      "Running",
      "Suspended",
      "Finished",
      "Failed",
      "Killed",
      "Canceled",
    ]);
    expect(Object.isFrozen(ALL_STATUSES)).toBe(true);
  });
});

describe("terminalStatus (Go TerminalStatus, types_test.go)", () => {
  it.each([
    ["Pending", false],
    ["Running", false],
    ["Suspended", false],
    ["Finished", true],
    ["Failed", true],
    ["Killed", true],
    ["Canceled", true],
    ["Unknown", false],
    ["", false],
  ])("%j → %s", (status, terminal) => {
    expect(terminalStatus(status)).toBe(terminal);
  });

  it.each(["finished", "KILLED", " Failed"])("is exact-case: %j is not terminal", (status) => {
    expect(terminalStatus(status)).toBe(false);
  });
});

describe("parseStatus (C++ behaviour: trimmed, case-insensitive)", () => {
  it.each([
    ["Running", JobStatus.Running],
    ["running", JobStatus.Running],
    ["RUNNING", JobStatus.Running],
    ["  pending\t", JobStatus.Pending],
    ["canceled", JobStatus.Canceled],
    ["suspended", JobStatus.Suspended],
  ])("%j → %s", (text, status) => {
    expect(parseStatus(text)).toBe(status);
  });

  it.each(["Completed", "", "   ", "Run", "Cancelled"])("%j is not a status", (text) => {
    expect(parseStatus(text)).toBeUndefined();
  });
});

describe("parseStatuses", () => {
  it("normalises each entry", () => {
    expect(parseStatuses(["running", " Pending "])).toEqual([JobStatus.Running, JobStatus.Pending]);
  });

  it("collapses duplicates and skips blank entries", () => {
    expect(parseStatuses(["Running", "running", "", "  "])).toEqual([JobStatus.Running]);
  });

  it("returns [] for an empty list", () => {
    expect(parseStatuses([])).toEqual([]);
  });

  it("rejects an unknown status with InvalidRequest naming it", () => {
    const call = () => parseStatuses(["Running", "Completed"]);
    expect(call).toThrow(ApiError);
    expect(call).toThrow("Invalid status(es): Completed");
    try {
      call();
    } catch (err) {
      expect((err as ApiError).code).toBe(ErrCode.InvalidRequest);
    }
  });

  it("names every bad status, comma-separated, in input order", () => {
    expect(() => parseStatuses(["Done", "Running", "Completed"])).toThrow(
      "Invalid status(es): Done, Completed",
    );
  });
});

describe("TRANSITIONS (the job lifecycle)", () => {
  const can = (from: JobStatus, to: JobStatus) => TRANSITIONS[from].includes(to);

  it("lets nothing leave a terminal status, and every other status move on", () => {
    for (const s of ALL_STATUSES) expect(TRANSITIONS[s].length === 0, s).toBe(terminalStatus(s));
  });

  it("follows the Launcher: start, suspend/resume, the ends, cancel only while Pending", () => {
    expect(can("Pending", "Running")).toBe(true);
    expect(can("Running", "Suspended") && can("Suspended", "Running")).toBe(true);
    expect(can("Pending", "Canceled")).toBe(true);
    expect(can("Running", "Canceled")).toBe(false);
    expect(can("Pending", "Killed")).toBe(false);
    expect(can("Pending", "Suspended")).toBe(false);
    expect(can("Finished", "Running")).toBe(false);
  });
});
