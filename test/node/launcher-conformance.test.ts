// Answers a Launcher client relies on, the same over HTTP as through the plugin (the shared layer
// gives them): `name` in every status event, `*` refused where one job is needed, the default
// resource profile.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, readStream, startTestNode, type TestNode, token } from "../helpers/nodes.js";
import { uniquePrefix } from "../helpers/redis.js";
import { endAll, submit, waitTerminal } from "./helpers.js";

let n: TestNode;
let alice: string;
let admin: string;
beforeAll(async () => {
  n = await startTestNode(uniquePrefix("conformance"));
  alice = await token("alice");
  admin = await token("ops", { admin: true });
});
afterAll(async () => {
  await endAll(n, admin);
  await n.close();
});

describe("a Launcher client's expectations over HTTP", () => {
  it('status events carry name, as "" for a job without one (snapshot, live and resumed)', async () => {
    const job = await submit(n, alice, { command: "sleep 0.3" });
    const live = await readStream<Record<string, unknown>>(n.url, `/jobs/${job.id}/status`, {
      token: alice,
      until: (m) => m.status === "Finished",
    });
    expect(live.messages.length).toBeGreaterThanOrEqual(2);
    for (const m of live.messages) expect(m).toHaveProperty("name", "");
    const resumed = await readStream<Record<string, unknown>>(
      n.url,
      `/jobs/${job.id}/status?since=${String(live.messages[0]!.eventId).replace(/-\d+$/, "-0")}`,
      { token: alice, until: (m) => m.status === "Finished" },
    );
    for (const m of resumed.messages) expect(m).toHaveProperty("name", "");
    const named = await submit(n, alice, { command: "true", name: "build" });
    await waitTerminal(n, alice, named.id);
    const snap = await readStream<Record<string, unknown>>(n.url, `/jobs/${named.id}/status`, {
      token: alice,
    });
    expect(snap.messages[0]).toMatchObject({ name: "build", status: "Finished" });
  });

  it("refuses * for control and network with the SDKs' InvalidRequest", async () => {
    const control = await api(n.url, "POST", "/jobs/*/control", {
      token: alice,
      body: { operation: "kill" },
    });
    expect(control).toEqual({
      status: 400,
      body: {
        code: 2,
        name: "InvalidRequest",
        message: "Cannot control all jobs simultaneously. Please specify a single Job ID.",
      },
    });
    const network = await api(n.url, "GET", "/jobs/*/network", { token: alice });
    expect(network).toEqual({
      status: 400,
      body: {
        code: 2,
        name: "InvalidRequest",
        message: "Cannot retrieve network information for all jobs. Please specify a single Job ID.",
      },
    });
  });

  it("gives a job without a resource profile the Launcher's default, custom", async () => {
    const job = await submit(n, alice, { command: "true" });
    expect(job.resourceProfile).toBe("custom");
    const chosen = await submit(n, alice, { command: "true", resourceProfile: "small" });
    expect(chosen.resourceProfile).toBe("small");
  });
});
