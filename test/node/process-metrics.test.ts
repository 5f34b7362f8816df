// A node's /metrics carries its process's own figures beside the fleet's: GC pauses by kind with
// millisecond buckets, event-loop delay since the last scrape, CPU and heap. A real node process, so
// the figures are its own (an in-process node would report the test runner's).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ChildNode, startChildNode, testSettings } from "../helpers/nodes.js";
import { uniquePrefix } from "../helpers/redis.js";

let node: ChildNode;

beforeAll(async () => {
  node = await startChildNode(testSettings(uniquePrefix("process-metrics")));
});
afterAll(async () => {
  await node?.stop("SIGKILL");
});

const scrape = async () => (await fetch(`${node.url}/metrics`)).text();
const value = (text: string, series: string) => {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe("process metrics", () => {
  it("counts the node's GC pauses in millisecond buckets, and its event-loop delay", async () => {
    // Work that allocates in the node: its OpenAPI document, served 200 times.
    for (let i = 0; i < 200; i++) {
      const res = await fetch(`${node.url}/docs/json`);
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
    const text = await scrape();
    const minor = value(text, 'nodejs_gc_duration_seconds_count{kind="minor"}');
    expect(minor).toBeGreaterThan(0);
    expect(value(text, 'nodejs_gc_duration_seconds_bucket{le="0.0025",kind="minor"}')).toBeGreaterThanOrEqual(
      0,
    );
    expect(value(text, 'nodejs_gc_duration_seconds_bucket{le="+Inf",kind="minor"}')).toBe(minor);
    expect(value(text, "nodejs_eventloop_lag_p99_seconds")).toBeGreaterThan(0);
    expect(value(text, "process_cpu_seconds_total")).toBeGreaterThan(0);
    expect(value(text, 'nodejs_heap_space_size_used_bytes{space="new"}')).toBeGreaterThan(0);
    // The fleet's own metrics are still there, in the same registry.
    expect(text).toMatch(/^launcher_open_streams\{kind="status"\} 0$/m);
  });
});
