import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, readStream, startTestNode, type TestNode, token, until } from "../helpers/nodes.js";
import { uniquePrefix } from "../helpers/redis.js";

let n: TestNode;
let alice: string;
beforeAll(async () => {
  n = await startTestNode(uniquePrefix("life"));
  alice = await token("alice");
});
afterAll(() => n.close());

describe("a job's life on one node", () => {
  it("runs a command to Finished with its real exit code and output", async () => {
    const created = await api(n.url, "POST", "/jobs", {
      token: alice,
      body: { command: "echo out; echo err >&2; exit 3", name: "t" },
    });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    expect(created.body).toMatchObject({ status: "Pending", user: "alice", host: expect.any(String) });
    const statuses = await readStream<{ status: string }>(n.url, `/jobs/${id}/status`, { token: alice });
    expect(statuses.ended).toBe(true);
    expect(statuses.messages.at(-1)?.status).toBe("Finished");
    const job = await api(n.url, "GET", `/jobs/${id}`, { token: alice });
    expect(job.body).toMatchObject({ id, status: "Finished", exitCode: 3 });
    const out = await readStream<{ output?: string; complete?: boolean }>(n.url, `/jobs/${id}/output`, {
      token: alice,
    });
    expect(
      out.messages
        .filter((m) => m.output)
        .map((m) => m.output)
        .join(""),
    ).toContain("out\n");
    expect(out.messages.at(-1)).toMatchObject({ complete: true });
  });

  it("stops a running job: Finished 143", async () => {
    const { body } = await api(n.url, "POST", "/jobs", {
      token: alice,
      body: { command: "sleep 20 && echo Done" },
    });
    const id = body.id as string;
    await until(
      async () => (await api(n.url, "GET", `/jobs/${id}`, { token: alice })).body.status === "Running",
    );
    const r = await api(n.url, "POST", `/jobs/${id}/control`, { token: alice, body: { operation: "stop" } });
    expect(r.status).toBe(200);
    const done = await until(async () => {
      const j = await api(n.url, "GET", `/jobs/${id}`, { token: alice });
      return j.body.status === "Finished" ? j.body : undefined;
    });
    expect(done.exitCode).toBe(143);
  });
});
