// Hostile submissions (issue 16): every list of a job has a cap stated as `maxItems` in its schema
// (the numbers in src/api/limits.ts). Over HTTP the schema check refuses a list over its cap with a
// 400 naming the field; through the Posit plugin the same schema (parseSubmission) does the same.
import { afterEach, describe, expect, it } from "vitest";
import {
  MAX_ARGS,
  MAX_ENVIRONMENT,
  MAX_LIST,
  MAX_METADATA_KEYS,
  MAX_PLACEMENT_CONSTRAINTS,
  MAX_QUEUES,
  MAX_TAGS,
} from "../../src/api/limits.js";
import { parseSubmission } from "../../src/launcher/requests/index.js";
import { makeApp, postJob, type TestApp } from "./helpers.js";

const apps: TestApp[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((t) => t.app.close()));
});
async function started() {
  const t = await makeApp();
  apps.push(t);
  return t;
}

/** Each list of a job, its cap, and an entry that the schema accepts. */
const LISTS: [field: string, max: number, entry: unknown][] = [
  ["args", MAX_ARGS, "a"],
  ["environment", MAX_ENVIRONMENT, { name: "A", value: "1" }],
  ["queues", MAX_QUEUES, "q"],
  ["tags", MAX_TAGS, "t"],
  ["placementConstraints", MAX_PLACEMENT_CONSTRAINTS, { name: "zone", value: "a" }],
  ["exposedPorts", MAX_LIST, { targetPort: 80 }],
  ["mounts", MAX_LIST, { mountPath: "/m", mountSource: { type: "host", source: { path: "/tmp" } } }],
  ["config", MAX_LIST, { name: "c", value: "v" }],
  ["resourceLimits", MAX_LIST, { type: "memory", value: "1" }],
];

describe("every list of a job has a cap in its schema", () => {
  it("the caps are in the submission schema, so the OpenAPI document states them", async () => {
    const t = await started();
    const doc = (await t.app.inject({ method: "GET", url: "/docs/json" })).json<{
      paths: Record<string, { post?: { requestBody: { content: Record<string, { schema: unknown }> } } }>;
    }>();
    const schema = doc.paths["/jobs"]?.post?.requestBody.content["application/json"]?.schema as {
      properties: Record<
        string,
        { maxItems?: number; maxProperties?: number; properties?: Record<string, { maxItems?: number }> }
      >;
    };
    for (const [field, max] of LISTS) expect(schema.properties[field]?.maxItems, field).toBe(max);
    expect(schema.properties.metadata?.maxProperties).toBe(MAX_METADATA_KEYS);
    expect(schema.properties.container?.properties?.supplementalGroupIds?.maxItems).toBe(MAX_LIST);
  });

  it("HTTP: one entry over a cap is a 400 naming the field, from the schema; at the cap it passes the schema", async () => {
    const t = await started();
    for (const [field, max, entry] of LISTS) {
      const over = await postJob(t, { command: "true", [field]: Array(max + 1).fill(entry) });
      expect(over.status, field).toBe(400);
      expect(over.body, field).toMatchObject({
        code: 2,
        name: "InvalidRequest",
        message: `body/${field} must not have more than ${max} items`,
      });
      const at = await postJob(t, { command: "true", [field]: Array(max).fill(entry) });
      expect(String(at.body.message ?? ""), field).not.toMatch(/more than/);
    }
    const metadata = Object.fromEntries(
      Array.from({ length: MAX_METADATA_KEYS + 1 }, (_, i) => [`k${i}`, i]),
    );
    const over = await postJob(t, { command: "true", metadata });
    expect(over).toMatchObject({
      status: 400,
      body: { message: `body/metadata must not have more than ${MAX_METADATA_KEYS} properties` },
    });
    const groups = await postJob(t, {
      command: "true",
      container: { image: "x", supplementalGroupIds: Array(MAX_LIST + 1).fill(1) },
    });
    expect(groups).toMatchObject({
      status: 400,
      body: { message: `body/container/supplementalGroupIds must not have more than ${MAX_LIST} items` },
    });
    // Only the submissions at the caps got through (the mounts one, and the rest, as the fake service takes them).
    expect(t.service.callsTo("submit").length).toBe(LISTS.length);
  });

  it("the plugin's SubmitJob: the same caps, the same words with `job/`", () => {
    for (const [field, max, entry] of LISTS) {
      expect(
        () => parseSubmission({ command: "true", [field]: Array(max + 1).fill(entry) }, "job"),
        field,
      ).toThrow(`job/${field} must not have more than ${max} items`);
      expect(
        () => parseSubmission({ command: "true", [field]: Array(max).fill(entry) }, "job"),
        field,
      ).not.toThrow();
    }
  });
});
