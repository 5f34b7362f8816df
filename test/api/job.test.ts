import { describe, expect, it } from "vitest";
import { isWildcard, JOB_FIELD_NAMES, JOB_ID_WILDCARD, type Job, withFields } from "../../src/api/job.js";

/** A job with every field set, using the seed's JSON names. */
const full: Job = {
  id: "job-1",
  cluster: "Local",
  name: "hello",
  user: "alice",
  group: "staff",
  queues: ["default"],
  workingDirectory: "/home/alice",
  container: { image: "ubuntu", runAsUserId: 1000, runAsGroupId: 1000, supplementalGroupIds: [5] },
  host: "node-a",
  node: "node-a",
  status: "Running",
  statusMessage: "started",
  statusCode: "OK",
  pid: 4242,
  exitCode: 0,
  command: "echo hi",
  exe: "/bin/echo",
  stdoutFile: "/tmp/o",
  stderrFile: "/tmp/e",
  stdin: "input",
  args: ["a"],
  environment: [{ name: "A", value: "1" }],
  placementConstraints: [{ name: "zone", value: "a" }],
  lastUpdateTime: "2024-01-01T00:00:01.000Z",
  submissionTime: "2024-01-01T00:00:00.000Z",
  exposedPorts: [{ targetPort: 80, publishedPort: 8080, protocol: "tcp" }],
  mounts: [{ mountPath: "/data", mountSource: { type: "host", source: { path: "/srv" } } }],
  config: [{ name: "pamProfile", valueType: "string", value: "x" }],
  resourceLimits: [{ type: "memory", value: "512", defaultValue: "256", maxValue: "1024" }],
  tags: ["t1"],
  metadata: { k: "v" },
  resourceProfile: "custom",
};

/** The JSON names of the seed's Job, in declaration order. */
const SEED_JOB_KEYS = [
  "id",
  "cluster",
  "name",
  "user",
  "group",
  "queues",
  "workingDirectory",
  "container",
  "host",
  "status",
  "statusMessage",
  "statusCode",
  "pid",
  "exitCode",
  "command",
  "exe",
  "stdoutFile",
  "stderrFile",
  "stdin",
  "args",
  "environment",
  "placementConstraints",
  "lastUpdateTime",
  "submissionTime",
  "exposedPorts",
  "mounts",
  "config",
  "resourceLimits",
  "tags",
  "metadata",
  "resourceProfile",
];

describe("Job JSON names", () => {
  it("a fully populated job serialises with exactly the seed's keys, plus the fleet's `node`", () => {
    const keys = Object.keys(JSON.parse(JSON.stringify(full)));
    expect(keys.filter((k) => k !== "node")).toEqual(SEED_JOB_KEYS);
    expect(keys).toContain("node");
  });
});

describe("JobID wildcard (types_test.go)", () => {
  it("JOB_ID_WILDCARD is * and is a wildcard", () => {
    expect(JOB_ID_WILDCARD).toBe("*");
    expect(isWildcard(JOB_ID_WILDCARD)).toBe(true);
  });

  it.each(["test-123", "", "**", " *"])("%j is not a wildcard", (id) => {
    expect(isWildcard(id)).toBe(false);
  });
});

describe("JOB_FIELD_NAMES", () => {
  // The Launcher's recognised names, less Go 3.7's initContainers/instanceId (not in the 3.5 seed).
  const reference = [
    "cluster",
    "name",
    "user",
    "group",
    "queues",
    "workingDirectory",
    "container",
    "host",
    "status",
    "statusMessage",
    "statusCode",
    "pid",
    "exitCode",
    "command",
    "exe",
    "stdoutFile",
    "stderrFile",
    "stdin",
    "args",
    "env",
    "placementConstraints",
    "lastUpdateTime",
    "submissionTime",
    "exposedPorts",
    "mounts",
    "config",
    "resourceLimits",
    "tags",
    "metadata",
    "resourceProfile",
  ];

  it("contains every recognised name, plus id, environment and the fleet's node", () => {
    expect([...JOB_FIELD_NAMES].sort()).toEqual([...reference, "id", "environment", "node"].sort());
  });

  it("every name except env selects the JSON key of the same name", () => {
    for (const field of JOB_FIELD_NAMES.filter((f) => f !== "env")) {
      expect(Object.keys(withFields(full, [field])).sort()).toEqual([...new Set(["id", field])].sort());
    }
  });
});

describe("withFields (Go Job.WithFields (the Launcher's semantics))", () => {
  it.each([
    ["undefined", undefined],
    ["[]", []],
  ])("%s returns the job unchanged (same object)", (_label, fields) => {
    expect(withFields(full, fields)).toBe(full);
  });

  it.each([
    [
      ["status", "name"],
      ["id", "status", "name"],
    ],
    [["bogus"], ["id"]],
    [["environment"], ["id", "environment"]],
    [["env"], ["id", "environment"]],
    [["id"], ["id"]],
    [
      ["status", "status", "bogus", "tags"],
      ["id", "status", "tags"],
    ],
    [
      ["env", "environment"],
      ["id", "environment"],
    ],
  ])("%j → keys %j", (fields, keys) => {
    expect(Object.keys(withFields(full, fields)).sort()).toEqual([...keys].sort());
  });

  it("copies values shallowly and returns a new object", () => {
    const selected = withFields(full, ["env", "tags", "exitCode"]);
    expect(selected).not.toBe(full);
    expect(selected).toEqual({ id: "job-1", environment: full.environment, tags: ["t1"], exitCode: 0 });
    expect(selected.environment).toBe(full.environment);
  });

  it("keys the source lacks stay absent", () => {
    const sparse: Job = { id: "j", status: "Pending" };
    const selected = withFields(sparse, ["status", "name", "exitCode"]);
    expect(selected).toEqual({ id: "j", status: "Pending" });
    expect(Object.hasOwn(selected, "name")).toBe(false);
    expect(JSON.stringify(selected)).toBe('{"id":"j","status":"Pending"}');
  });

  it("Go 3.7-only names (initContainers, instanceId) and prototype names are ignored", () => {
    expect(withFields(full, ["initContainers", "instanceId", "toString", "__proto__"])).toEqual({
      id: "job-1",
    });
  });

  it("field names are case-sensitive, as in Go and C++", () => {
    expect(withFields(full, ["Status", "ENV"])).toEqual({ id: "job-1" });
  });
});
