// Bad input never crashes a node, never answers 5xx and never creates a job: a clear 4xx with the
// Launcher's InvalidRequest code and a message naming the field. Plus a property test.
import { connect } from "node:net";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, startTestNode, type TestNode, token, until } from "../helpers/nodes.js";
import { uniquePrefix } from "../helpers/redis.js";
import {
  alive,
  control,
  endAll,
  type JobBody,
  listJobs,
  procState,
  submit,
  TERMINAL,
  waitTerminal,
} from "./helpers.js";

let n: TestNode;
let alice: string;
let admin: string;

beforeAll(async () => {
  n = await startTestNode(uniquePrefix("bad-input"));
  alice = await token("alice");
  admin = await token("ops", { admin: true });
});
afterAll(async () => {
  await endAll(n, admin);
  await n.close();
});

const count = async () => (await listJobs(n, admin, "?user=*")).length;

type ErrorBody = { code: number; name: string; message: string };

async function post(body: unknown, headers?: Record<string, string>) {
  return api<ErrorBody>(n.url, "POST", "/jobs", {
    token: alice,
    body: typeof body === "string" ? body : JSON.stringify(body),
    ...(headers ? { headers } : {}),
  });
}

describe("POST /jobs with bad input", () => {
  const cases: [string, unknown, string | RegExp][] = [
    ["malformed JSON", '{"command": "echo hi"', /json/i],
    ["trailing garbage", '{"command": "echo hi"} x', /json/i],
    ["an array body", "[]", /body/],
    ["a string body", '"echo hi"', /body/],
    ["a null body", "null", /body/],
    ["a number body", "42", /body/],
    ["command not a string", { command: 5 }, "command"],
    ["exe not a string", { exe: ["/bin/true"] }, "exe"],
    ["args not an array", { command: "echo", args: "a b" }, "args"],
    ["args of numbers", { command: "echo", args: [1, 2] }, "args"],
    ["environment of strings", { command: "env", environment: ["A=1"] }, "environment"],
    ["environment without value", { command: "env", environment: [{ name: "A" }] }, "environment"],
    ["tags not strings", { command: "true", tags: [1] }, "tags"],
    ["stdin not a string", { command: "cat", stdin: 42 }, "stdin"],
    ["workingDirectory not a string", { command: "true", workingDirectory: 7 }, "workingDirectory"],
    [
      "exposedPorts with a string port",
      { command: "true", exposedPorts: [{ targetPort: "80" }] },
      "exposedPorts",
    ],
    ["mounts not an array", { command: "true", mounts: "/a:/b" }, "mounts"],
    ["both command and exe", { command: "echo hi", exe: "/bin/echo" }, /command.*exe|exe.*command/],
    ["neither command nor exe", { name: "nothing" }, /command|exe/],
    ["an empty command", { command: "" }, /command|exe/],
    [
      "an nfs mount",
      {
        command: "true",
        mounts: [{ mountPath: "/x", mountSource: { type: "nfs", source: { host: "h", path: "/p" } } }],
      },
      /mounts\/0\/mountSource.*host/,
    ],
    [
      "a relative mount path",
      {
        command: "true",
        mounts: [{ mountPath: "x", mountSource: { type: "host", source: { path: "/tmp" } } }],
      },
      /mounts\/0\/mountPath/,
    ],
    [
      "a relative mount source path",
      {
        command: "true",
        mounts: [{ mountPath: "/x", mountSource: { type: "host", source: { path: "tmp" } } }],
      },
      /mounts\/0\/mountSource\/source\/path/,
    ],
    [
      "a host mount without a path",
      { command: "true", mounts: [{ mountPath: "/x", mountSource: { type: "host", source: {} } }] },
      /mounts\/0\/mountSource/,
    ],
    ["a mount without a source", { command: "true", mounts: [{ mountPath: "/x" }] }, /mounts\/0/],
    ["a relative working directory", { command: "true", workingDirectory: "tmp" }, "workingDirectory"],
    ["a container", { command: "true", container: { image: "ubuntu" } }, "container"],
    ["a 1 MiB + 1 stdin", { command: "cat", stdin: "x".repeat(1024 * 1024 + 1) }, "stdin"],
    ["a stdin over 1 MiB in UTF-8", { command: "cat", stdin: "é".repeat(600_000) }, "stdin"],
    ["10,001 args", { command: "echo", args: Array.from({ length: 10_001 }, (_, i) => `a${i}`) }, "args"],
  ];

  for (const [what, body, message] of cases) {
    it(`${what}: 400 code 2 naming the field, no job`, async () => {
      const before = await count();
      const res = await post(body);
      expect({ status: res.status, code: res.body.code, name: res.body.name }).toEqual({
        status: 400,
        code: 2,
        name: "InvalidRequest",
      });
      if (typeof message === "string") expect(res.body.message).toContain(message);
      else expect(res.body.message).toMatch(message);
      expect(await count()).toBe(before);
    });
  }

  it("a 10 MB body: 413 code 2, no job, and the node carries on", async () => {
    const before = await count();
    const res = await post({ command: "cat", stdin: "x".repeat(10 * 1024 * 1024) });
    expect(res.status).toBe(413);
    expect(res.body).toMatchObject({ code: 2, name: "InvalidRequest" });
    expect(res.body.message).toMatch(/too large/i);
    expect(await count()).toBe(before);
    const ok = await submit(n, alice, { command: "echo still here" });
    expect(await waitTerminal(n, alice, ok.id)).toMatchObject({ status: "Finished", exitCode: 0 });
  });

  it("a body that is not JSON: 4xx code 2", async () => {
    const before = await count();
    const res = await post("command=echo", { "content-type": "text/plain" });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(res.body.code).toBe(2);
    expect(await count()).toBe(before);
  });

  it("10,000 args (the limit) are accepted and passed on", async () => {
    const args = Array.from({ length: 10_000 }, (_, i) => `a${i}`);
    // With `command`, args are shell-quoted and appended to it.
    const job = await submit(n, alice, { command: "echo", args });
    expect(await waitTerminal(n, alice, job.id)).toMatchObject({ status: "Finished", exitCode: 0 });
    const out = await api<string>(n.url, "GET", `/jobs/${job.id}/output?outputType=stdout`, { token: alice });
    const text = String(out.body)
      .split("\n")
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { output?: string }).output ?? "")
      .join("");
    expect(text).toBe(`${args.join(" ")}\n`);
  });

  it("what the server owns is not taken from the body (id, status, pid, exitCode, host, times)", async () => {
    const job = await submit(n, alice, {
      command: "sleep 0.2",
      id: "chosen-by-client",
      status: "Finished",
      pid: 1,
      exitCode: 0,
      host: "elsewhere",
      statusMessage: "fake",
      submissionTime: "2000-01-01T00:00:00Z",
      lastUpdateTime: "2000-01-01T00:00:00Z",
    });
    expect(job.id).not.toBe("chosen-by-client");
    expect(job.status).toBe("Pending");
    expect(job.pid).toBeUndefined();
    expect(job.exitCode).toBeUndefined();
    expect(job.statusMessage).toBeUndefined();
    expect(job.host).not.toBe("elsewhere");
    expect(Date.parse(job.submissionTime!)).toBeGreaterThan(Date.parse("2020-01-01T00:00:00Z"));
    const done = await waitTerminal(n, alice, job.id);
    expect(done).toMatchObject({ status: "Finished", exitCode: 0 });
    expect(done.pid).not.toBe(1);
  });

  it("launch failures the schema cannot see become Failed jobs, not errors", async () => {
    // (An env name with `=` and a NUL in the command are 400s now: test/node/limits.test.ts.)
    const cases = [
      { exe: "/bin/echo", args: ["x".repeat(200_000)] }, // longer than one exec argument may be
    ];
    for (const body of cases) {
      const job = await submit(n, alice, body);
      const done = await waitTerminal(n, alice, job.id);
      expect(done.status).toBe("Failed");
      expect(done.statusMessage).toBeTruthy();
    }
  });

  it("unknown and malformed control requests are 400 code 2", async () => {
    const job = await submit(n, alice, { command: "true" });
    for (const body of [
      '{"operation":"explode"}',
      '{"operation":',
      "[]",
      '{"operation":7}',
      '{"op":"kill"}',
    ]) {
      const res = await api<ErrorBody>(n.url, "POST", `/jobs/${job.id}/control`, { token: alice, body });
      expect({ body, status: res.status, code: res.body.code }).toEqual({ body, status: 400, code: 2 });
    }
    const res = await api<ErrorBody>(n.url, "POST", `/jobs/${job.id}/control`, {
      token: alice,
      body: { operation: "explode" },
    });
    expect(res.body.message).toContain("explode");
  });

  it("odd job ids in paths are 404 code 3, never 5xx (network for * is the Launcher's 400)", async () => {
    for (const id of ["..%2F..%2Fetc%2Fpasswd", "%00", "a%2Fb", "%2A", "%20"]) {
      for (const path of [`/jobs/${id}`, `/jobs/${id}/output`, `/jobs/${id}/network`]) {
        const res = await api<ErrorBody>(n.url, "GET", path, { token: alice });
        const want =
          id === "%2A" && path.endsWith("/network") ? { status: 400, code: 2 } : { status: 404, code: 3 };
        expect({ path, status: res.status, code: res.body.code }).toEqual({ path, ...want });
      }
    }
  });

  it("what fastify or Node reject before any route still gets the API's error body", async () => {
    const expectApiError = (res: { status: number; body: unknown }, status: number) => {
      expect(res.status).toBe(status);
      expect(res.body).toMatchObject({ code: 2, name: "InvalidRequest", message: expect.any(String) });
    };
    expectApiError(await api(n.url, "GET", "/jobs/%E0%A4%A", { token: alice }), 400);
    const longId = await api(n.url, "GET", `/jobs/${"x".repeat(150)}`, { token: alice });
    expect(longId.status).toBeGreaterThanOrEqual(400);
    expect(longId.status).toBeLessThan(500);
    expect(longId.body).toMatchObject({ code: expect.any(Number), name: expect.any(String) });
    expectApiError(await api(n.url, "GET", `/jobs/${"x".repeat(20_000)}`, { token: alice }), 431);
    // A request that is not HTTP at all.
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = connect(n.node.port, "127.0.0.1", () => socket.write("NOT HTTP AT ALL\r\n\r\n"));
      let data = "";
      socket.setEncoding("utf8").on("data", (d: string) => {
        data += d;
      });
      socket.on("close", () => resolve(data)).on("error", reject);
    });
    expect(raw).toMatch(/^HTTP\/1\.1 400 /);
    expect(JSON.parse(raw.slice(raw.indexOf("\r\n\r\n") + 4))).toMatchObject({
      code: 2,
      name: "InvalidRequest",
    });
    expect((await api(n.url, "GET", "/healthz")).status).toBe(200);
  });

  it("the node is still healthy after all of it", async () => {
    expect((await api(n.url, "GET", "/healthz")).status).toBe(200);
    expect((await api(n.url, "GET", "/readyz")).status).toBe(200);
  });
});

describe("property: random bodies and random operations", () => {
  it("never answer 5xx, and leave every job terminal or really running", async () => {
    const safeCommand = fc.constantFrom(
      "true",
      "exit 3",
      "echo hi",
      "sleep 0.05",
      "sleep 0.3",
      "sleep 3",
      "sleep 3",
      "sleep 3",
      "",
    );
    const safeExe = fc.constantFrom("/bin/true", "/bin/false", "/nonexistent/prog", "true", "");
    const anyValue = fc.oneof(
      fc.string(),
      fc.integer(),
      fc.double(),
      fc.boolean(),
      fc.constant(null),
      fc.array(fc.string(), { maxLength: 3 }),
      fc.dictionary(fc.string(), fc.string(), { maxKeys: 2 }),
    );
    // A job whose every field is well-typed (it may still fail to launch, or be refused for mixing
    // command and exe, mounting a non-host source, …).
    const program = fc.oneof(
      { arbitrary: fc.record({ command: safeCommand }), weight: 4 },
      { arbitrary: fc.record({ exe: safeExe }), weight: 2 },
      { arbitrary: fc.record({ command: safeCommand, exe: safeExe }), weight: 1 },
      { arbitrary: fc.constant({}), weight: 1 },
    );
    const wellTyped = fc
      .tuple(
        program,
        fc.record(
          {
            args: fc.array(fc.string({ maxLength: 6 }), { maxLength: 4 }),
            name: fc.string(),
            tags: fc.array(fc.string({ maxLength: 4 }), { maxLength: 3 }),
            environment: fc.array(fc.record({ name: fc.string({ maxLength: 4 }), value: fc.string() }), {
              maxLength: 2,
            }),
            workingDirectory: fc.constantFrom("/tmp", "/", "/nonexistent", "tmp"),
            stdin: fc.string(),
            mounts: fc.array(
              fc.record({
                mountPath: fc.constantFrom("/x", "/x", "x"),
                mountSource: fc.record({
                  type: fc.constantFrom("host", "host", "nfs", "Host"),
                  source: fc.oneof(
                    { arbitrary: fc.record({ path: fc.constantFrom("/tmp", "/tmp", "tmp") }), weight: 3 },
                    { arbitrary: anyValue, weight: 1 },
                  ),
                }),
              }),
              { maxLength: 1 },
            ),
            exposedPorts: fc.array(fc.record({ targetPort: fc.integer() }), { maxLength: 2 }),
            user: fc.constantFrom("alice", "", "bob", "*"),
            id: fc.string(),
            status: fc.constantFrom("Finished", "Running", "bogus"),
          },
          { requiredKeys: [] },
        ),
      )
      .map(([prog, rest]) => ({ ...rest, ...prog }) as Record<string, unknown>);
    // The same with one field given a value of a random type.
    const keys = [
      "command",
      "exe",
      "args",
      "name",
      "tags",
      "environment",
      "workingDirectory",
      "stdin",
      "mounts",
    ];
    const mistyped = fc.tuple(wellTyped, fc.constantFrom(...keys), anyValue).map(([job, key, value]) => ({
      ...job,
      // A random string must never become a command line or a program to run.
      [key]: typeof value === "string" && (key === "command" || key === "exe") ? "/bin/true" : value,
    }));
    // Fully random JSON too; any command/exe it happens to carry is replaced by a safe one.
    const randomJson = fc.jsonValue().map((v) => {
      if (v && typeof v === "object" && !Array.isArray(v)) {
        const o = { ...(v as Record<string, unknown>) };
        if ("command" in o) o.command = "true";
        if ("exe" in o) o.exe = "/bin/true";
        return o;
      }
      return v;
    });
    const body = fc.oneof(
      { arbitrary: wellTyped, weight: 4 },
      { arbitrary: mistyped, weight: 2 },
      { arbitrary: randomJson, weight: 1 },
    );
    const operation = fc.oneof(
      {
        arbitrary: fc.constantFrom("suspend", "resume", "stop", "kill", "cancel", "SUSPEND", "Resume"),
        weight: 4,
      },
      { arbitrary: fc.integer({ min: -2, max: 6 }), weight: 2 },
      { arbitrary: anyValue, weight: 1 },
    );
    const step = fc.record({ body, ops: fc.array(fc.tuple(fc.nat(), operation), { maxLength: 3 }) });

    const created: string[] = [];
    const controlled: number[] = [];
    const before = await count();
    await fc.assert(
      fc.asyncProperty(step, async ({ body, ops }) => {
        const res = await api<JobBody & ErrorBody>(n.url, "POST", "/jobs", {
          token: alice,
          body: JSON.stringify(body),
        });
        expect(res.status, JSON.stringify(res.body)).toBeLessThan(500);
        if (res.status === 201) created.push(res.body.id);
        else expect(res.body.code).toBe(2);
        for (const [pick, op] of ops) {
          if (created.length === 0) break;
          // Mostly one of the latest jobs: those are the ones still running.
          const id = created[created.length - 1 - (pick % Math.min(created.length, 4))]!;
          const r = await control(n, alice, id, op);
          controlled.push(r.status);
          expect(r.status, `${JSON.stringify(op)} → ${JSON.stringify(r.body)}`).toBeLessThan(500);
          expect([200, 400, 409]).toContain(r.status);
        }
      }),
      { numRuns: 150 },
    );
    // Exactly the accepted submissions became jobs (and the run was not vacuous).
    expect(await count()).toBe(before + created.length);
    expect(created.length).toBeGreaterThan(0);
    expect(new Set(controlled)).toContain(409);

    // Every job ends up terminal, or Running/Suspended with a live process in the matching state.
    // (Pending is transient here: nothing limits running jobs on this node.)
    await until(
      async () => {
        const jobs = await listJobs(n, alice, "?fields=status,pid");
        const mine = jobs.filter((j) => created.includes(j.id));
        return mine.every((j) => {
          if (TERMINAL.includes(j.status!)) return true;
          if (j.status === "Running") return j.pid !== undefined && alive(j.pid) && procState(j.pid) !== "T";
          if (j.status === "Suspended") return j.pid !== undefined && procState(j.pid) === "T";
          return false;
        });
      },
      { timeoutMs: 15_000, everyMs: 100 },
    );
    // And the processes of Killed jobs really are gone.
    const killed = (await listJobs(n, alice, "?statuses=Killed&fields=pid")).filter((j) =>
      created.includes(j.id),
    );
    await until(() => killed.every((j) => j.pid === undefined || !alive(j.pid)));
  });
});
