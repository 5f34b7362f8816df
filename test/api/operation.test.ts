import { describe, expect, it } from "vitest";
import { ApiError, ErrCode } from "../../src/api/errors.js";
import {
  invalidStateMessage,
  JobOperation,
  operationString,
  parseOperation,
  validForStatus,
} from "../../src/api/operation.js";
import { JobStatus } from "../../src/api/status.js";

describe("JobOperation (the Launcher's semantics)", () => {
  it("has Go's iota values", () => {
    expect([
      JobOperation.Suspend,
      JobOperation.Resume,
      JobOperation.Stop,
      JobOperation.Kill,
      JobOperation.Cancel,
    ]).toEqual([0, 1, 2, 3, 4]);
  });

  it.each([
    [JobOperation.Cancel, JobStatus.Pending],
    [JobOperation.Kill, JobStatus.Running],
    [JobOperation.Stop, JobStatus.Running],
    [JobOperation.Suspend, JobStatus.Running],
    [JobOperation.Resume, JobStatus.Suspended],
  ])("ValidForStatus(%i) → %s", (op, status) => {
    expect(validForStatus(op)).toBe(status);
  });

  it.each([
    [JobOperation.Cancel, "Cancel"],
    [JobOperation.Kill, "Kill"],
    [JobOperation.Stop, "Stop"],
    [JobOperation.Suspend, "Suspend"],
    [JobOperation.Resume, "Resume"],
  ])("String(%i) → %s", (op, text) => {
    expect(operationString(op)).toBe(text);
  });

  it.each([-1, 5, 99, 2.5])("unknown value %s: String → Cancel, ValidForStatus → Pending", (op) => {
    expect(operationString(op)).toBe("Cancel");
    expect(validForStatus(op)).toBe(JobStatus.Pending);
  });

  it.each([
    [JobOperation.Suspend, "Job must be running to suspend it"],
    [JobOperation.Resume, "Job must be suspended to resume it"],
    [JobOperation.Stop, "Job must be running to stop it"],
    [JobOperation.Kill, "Job must be running to kill it"],
    [JobOperation.Cancel, "Job must be pending to cancel it"],
  ])("invalidStateMessage(%i) → %j", (op, message) => {
    expect(invalidStateMessage(op)).toBe(message);
  });
});

describe("parseOperation", () => {
  it.each<[unknown, JobOperation]>([
    [0, JobOperation.Suspend],
    [1, JobOperation.Resume],
    [2, JobOperation.Stop],
    [3, JobOperation.Kill],
    [4, JobOperation.Cancel],
    ["suspend", JobOperation.Suspend],
    ["resume", JobOperation.Resume],
    ["Stop", JobOperation.Stop],
    ["KILL", JobOperation.Kill],
    ["cancel", JobOperation.Cancel],
  ])("%j → %i", (input, op) => {
    expect(parseOperation(input, "job-1")).toBe(op);
  });

  it.each<[unknown, string]>([
    [5, "5"],
    [-1, "-1"],
    [1.5, "1.5"],
    ["jump", "jump"],
    ["", ""],
    ["2", "2"],
    [" stop", " stop"],
    [null, "<nil>"],
    [undefined, "<nil>"],
    [true, "true"],
  ])("%j is rejected: InvalidRequest with the Go runtime's text", (input, shown) => {
    let caught: unknown;
    try {
      parseOperation(input, "job-7");
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ApiError);
    expect((caught as ApiError).code).toBe(ErrCode.InvalidRequest);
    expect((caught as ApiError).message).toBe(`Unknown control job operation (${shown}) for job job-7`);
  });
});
