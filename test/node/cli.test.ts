// The command line: the API client against a real node, spec errors caught before any request, and
// `node dist/cli.js node` configured by nothing but the essential environment variables.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliResult, runCli, startCliNode } from "../helpers/cli.js";
import {
  api,
  readStream,
  startTestNode,
  TEST_SECRET,
  type TestNode,
  token,
  until,
} from "../helpers/nodes.js";
import { redisUrl, uniquePrefix } from "../helpers/redis.js";
import { freePort } from "../helpers/redis-server.js";
import { endAll, getJob, running, waitTerminal } from "./helpers.js";

const cli = runCli;

/** The JSON a successful command printed (a failure shows its exit code and stderr). */
function json(r: CliResult): unknown {
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
  return JSON.parse(r.stdout);
}

let n: TestNode;
let alice: string;
let admin: string;
let closedUrl: string;

beforeAll(async () => {
  n = await startTestNode(uniquePrefix("cli"));
  alice = await token("alice");
  admin = await token("ops", { admin: true });
  // Nothing listens here: any request would fail with a connection error (exit 1), not exit 2.
  closedUrl = `http://127.0.0.1:${await freePort()}`;
});
afterAll(async () => {
  await endAll(n, admin);
  await n.close();
});

describe.concurrent("spec flags are checked before any request", () => {
  const cases: [string[], string][] = [
    [["--env", "BAD"], 'invalid env spec: "BAD"'],
    [["--env", "A=B=C"], 'invalid env spec: "A=B=C"'],
    [["--mount", "relative:/dst"], 'invalid mount path: "relative"'],
    [["--mount", "/src:dst"], 'invalid mount path: "dst"'],
    [["--mount", "/a:/b:xx"], 'invalid mount spec: "/a:/b:xx"'],
    [["--mount", "/a:/b:ro:extra"], 'invalid mount spec: "/a:/b:ro:extra"'],
    [["--port", "abc"], 'invalid port: "abc"'],
    [["--port", "80:x"], 'invalid port: "x"'],
    [["--port", "1:2:3"], 'invalid port spec: "1:2:3"'],
  ];
  for (const [flags, message] of cases) {
    it(`${flags.join(" ")} → exit 2, "${message}"`, async () => {
      const r = await cli([
        "jobs",
        "submit",
        "--command",
        "true",
        ...flags,
        "--url",
        closedUrl,
        "--token",
        alice,
      ]);
      expect(r.stderr.trim()).toBe(message);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe("");
    });
  }

  it("the same request with good specs does try the server (so the checks above ran first)", async () => {
    const r = await cli([
      "jobs",
      "submit",
      "--command",
      "true",
      "--env",
      "A=1",
      "--mount",
      "/a:/b:ro",
      "--port",
      "8080:80/udp",
      "--url",
      closedUrl,
      "--token",
      alice,
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).not.toMatch(/invalid/);
  });

  it("usage errors exit 2", async () => {
    const neither = await cli(["jobs", "submit", "--url", closedUrl]);
    expect(neither.code).toBe(2);
    expect(neither.stderr).toContain("--command");
    const unknown = await cli(["jobs", "frobnicate", "--url", closedUrl]);
    expect(unknown.code).toBe(2);
  });
});

describe("client commands against a node", () => {
  const base = () => ["--url", n.url, "--token", alice];

  it("submit, get, list, output print JSON when piped", async () => {
    const sub = await cli([
      "jobs",
      "submit",
      "--command",
      'echo "$GREETING from cli"; echo oops >&2',
      "--name",
      "from-cli",
      "--tag",
      "cli",
      "--tag",
      "t2",
      "--env",
      "GREETING=hello",
      ...base(),
    ]);
    expect(sub.stderr).toBe("");
    expect(sub.code).toBe(0);
    const job = json(sub) as {
      id: string;
      status: string;
      user: string;
      tags: string[];
      submissionTime: string;
    };
    expect(job).toMatchObject({ status: "Pending", user: "alice", tags: ["cli", "t2"] });
    expect(await waitTerminal(n, alice, job.id)).toMatchObject({ status: "Finished", exitCode: 0 });

    const get = await cli(["jobs", "get", job.id, ...base()]);
    expect(get.code).toBe(0);
    expect(json(get)).toMatchObject({
      id: job.id,
      name: "from-cli",
      status: "Finished",
      environment: [{ name: "GREETING", value: "hello" }],
    });
    const fields = await cli(["jobs", "get", job.id, "--fields", "status,exitCode", ...base()]);
    expect(json(fields)).toEqual({ id: job.id, status: "Finished", exitCode: 0 });

    const list = await cli([
      "jobs",
      "list",
      "--tag",
      "cli",
      "--tag",
      "t2",
      "--status",
      "finished",
      ...base(),
    ]);
    expect(list.code).toBe(0);
    expect((json(list) as { jobs: { id: string }[] }).jobs.map((j) => j.id)).toEqual([job.id]);
    const none = await cli(["jobs", "list", "--tag", "cli", "--status", "Running", ...base()]);
    expect(json(none)).toEqual({ jobs: [] });
    // Submission-time bounds: --start-time/--end-time, as the API names them (--since/--until too).
    const t = job.submissionTime;
    const later = new Date(Date.parse(t) + 60_000).toISOString();
    const ids = async (...args: string[]) =>
      (
        json(await cli(["jobs", "list", "--tag", "cli", ...args, ...base()])) as { jobs: { id: string }[] }
      ).jobs.map((j) => j.id);
    expect(await ids("--start-time", t, "--end-time", t)).toEqual([job.id]);
    expect(await ids("--start-time", later)).toEqual([]);
    expect(await ids("--since", t, "--until", t)).toEqual([job.id]);

    // Frames with --json; the text itself without (see test/node/cli-unix.test.ts).
    const out = await cli(["jobs", "output", job.id, "--type", "stdout", "--json", ...base()]);
    expect(out.code).toBe(0);
    const lines = out.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { output?: string; complete?: boolean });
    expect(lines.map((l) => l.output ?? "").join("")).toBe("hello from cli\n");
    expect(lines.at(-1)).toMatchObject({ complete: true });
  });

  it("control prints the result; a refused operation exits non-zero with the API's message", async () => {
    const job = await running(n, alice, { command: "sleep 30" });
    const ok = await cli(["jobs", "control", job.id, "kill", ...base()]);
    expect(ok.code).toBe(0);
    expect(json(ok)).toEqual({ statusMessage: expect.any(String), operationComplete: true });
    expect((await getJob(n, alice, job.id)).status).toBe("Killed");

    const refused = await cli(["jobs", "control", job.id, "stop", ...base()]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("Job must be running to stop it");
    expect(refused.stdout).toBe("");
  });

  it("API errors exit non-zero with the message on stderr", async () => {
    const missing = await cli(["jobs", "get", "no-such-job", ...base()]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("Job no-such-job could not be found for user alice");
    const badStatus = await cli(["jobs", "list", "--status", "Completed", ...base()]);
    expect(badStatus.code).toBe(1);
    expect(badStatus.stderr).toContain("Invalid status(es): Completed");
    const noToken = await cli(["jobs", "list", "--url", n.url]);
    expect(noToken.code).toBe(1);
    expect(noToken.stderr).toMatch(/401/);
  });

  it("`token` mints a JWT the node accepts; `nodes` lists the node", async () => {
    const t = await cli(["token", "--user", "carol"], { LAUNCHER_AUTH_SECRET: TEST_SECRET });
    expect(t.code).toBe(0);
    const jwt = t.stdout.trim();
    const sub = await cli([
      "jobs",
      "submit",
      "--exe",
      "/bin/echo",
      "--arg",
      "hi",
      "--url",
      n.url,
      "--token",
      jwt,
    ]);
    expect(sub.code).toBe(0);
    expect(json(sub)).toMatchObject({ user: "carol", exe: "/bin/echo", args: ["hi"] });
    const nodes = await cli(["nodes", "--url", n.url], { LAUNCHER_TOKEN: jwt });
    expect(nodes.code).toBe(0);
    expect((json(nodes) as { nodes: { id: string }[] }).nodes.map((x) => x.id)).toEqual([n.settings.nodeId]);
  });
});

describe("`node dist/cli.js node` from the environment alone", () => {
  it("serves the API with only the Redis URL, secret, port, scratch path, key prefix and mode set", async () => {
    const port = await freePort();
    const node = await startCliNode(port, {
      LAUNCHER_REDIS_URL: redisUrl(),
      LAUNCHER_AUTH_SECRET: TEST_SECRET,
      // The test's users (alice) are not host users: every job runs as the test's own user.
      LAUNCHER_UNPRIVILEGED: "1",
      LAUNCHER_PORT: String(port),
      LAUNCHER_SCRATCH_PATH: mkdtempSync(join(tmpdir(), "cli-node-")),
      LAUNCHER_KEY_PREFIX: uniquePrefix("cli-node"),
    });
    const url = node.url;
    try {
      const created = await api<{ id: string; status: string }>(url, "POST", "/jobs", {
        token: alice,
        body: { command: "echo served" },
      });
      expect(created.status).toBe(201);
      const done = await until(async () => {
        const j = await api<{ status: string; exitCode?: number }>(url, "GET", `/jobs/${created.body.id}`, {
          token: alice,
        });
        return j.body.status === "Finished" ? j.body : undefined;
      });
      expect(done.exitCode).toBe(0);
      const out = await readStream<{ output?: string; complete?: boolean }>(
        url,
        `/jobs/${created.body.id}/output`,
        {
          token: alice,
        },
      );
      expect(out.messages.map((m) => m.output ?? "").join("")).toBe("served\n");
      expect(out.messages.at(-1)).toMatchObject({ complete: true });
      expect((await api(url, "GET", "/jobs")).status).toBe(401);
    } finally {
      await node.stop("SIGINT");
    }
  });
});
