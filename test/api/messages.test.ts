import { describe, expect, expectTypeOf, it } from "vitest";
import type { ErrorBody } from "../../src/api/errors.js";
import type {
  ClusterInfo,
  ControlResult,
  NetworkInfo,
  OutputChunk,
  ResourceSample,
  StatusEvent,
  StreamComplete,
  StreamError,
} from "../../src/api/messages.js";
import { JobOutput, outputString } from "../../src/api/output.js";
import { JobStatus } from "../../src/api/status.js";

describe("message shapes (docs/http-api.md)", () => {
  it("StatusEvent carries the docs/http-api.md keys and a JobStatus", () => {
    const event: StatusEvent = {
      seqId: 1,
      eventId: "1700000000000-0",
      id: "job-1",
      name: "hello",
      status: JobStatus.Running,
      lastUpdateTime: "2024-03-01T12:00:00.000Z",
    };
    expect(Object.keys(event)).toEqual(["seqId", "eventId", "id", "name", "status", "lastUpdateTime"]);
    expectTypeOf<StatusEvent["status"]>().toEqualTypeOf<JobStatus>();
  });

  it("OutputChunk.outputType is the JobOutput string form", () => {
    const chunk: OutputChunk = { seqId: 2, output: "hi\n", outputType: outputString(JobOutput.Both) };
    expect(chunk.outputType).toBe("mixed");
    expectTypeOf<OutputChunk["outputType"]>().toEqualTypeOf<"stdout" | "stderr" | "mixed">();
  });

  it("the remaining shapes have the documented fields", () => {
    expectTypeOf<ResourceSample>().toHaveProperty("residentMemory").toEqualTypeOf<number>();
    expectTypeOf<NetworkInfo["ipAddresses"]>().toEqualTypeOf<string[]>();
    expectTypeOf<ClusterInfo["supportsContainers"]>().toEqualTypeOf<boolean>();
    expectTypeOf<ControlResult>().toEqualTypeOf<{ statusMessage: string; operationComplete: boolean }>();
    expectTypeOf<StreamComplete["complete"]>().toEqualTypeOf<true>();
    expectTypeOf<StreamError["error"]>().toEqualTypeOf<ErrorBody>();
    const info: ClusterInfo = {
      supportsContainers: false,
      queues: [],
      resourceLimits: [],
      placementConstraints: [],
      config: [{ name: "pamProfile" }],
      resourceProfiles: [],
    };
    expect(JSON.parse(JSON.stringify(info))).toEqual(info);
  });
});
