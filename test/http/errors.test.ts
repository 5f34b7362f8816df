import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiError, ErrCode } from "../../src/api/index.js";
import { BODY_LIMIT_BYTES } from "../../src/http/index.js";
import type { FakeService } from "./fake-service.js";
import { bearer, makeApp } from "./helpers.js";

let app: FastifyInstance;
let service: FakeService;
let auth: { authorization: string };

beforeAll(async () => {
  ({ app, service } = await makeApp());
  auth = await bearer("alice");
});
afterAll(() => app.close());

type ErrorBody = { code: number; name: string; message: string };

async function submit(payload: unknown, headers: Record<string, string> = {}) {
  return app.inject({
    method: "POST",
    url: "/jobs",
    headers: { ...auth, "content-type": "application/json", ...headers },
    payload: typeof payload === "string" ? payload : JSON.stringify(payload),
  });
}

function expectInvalid(res: { statusCode: number; json(): unknown }, status: number, message: RegExp): void {
  expect(res.statusCode).toBe(status);
  const body = res.json() as ErrorBody;
  expect(body.code).toBe(2);
  expect(body.name).toBe("InvalidRequest");
  expect(body.message).toMatch(message);
}

describe("error mapping", () => {
  it("an ApiError keeps its code and gets the HTTP status of docs/http-api.md", async () => {
    const res = await app.inject({ url: "/jobs/missing", headers: auth });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({
      code: 3,
      name: "JobNotFound",
      message: "Job missing could not be found for user alice",
    });
  });

  it.each([
    [ErrCode.PluginRestarted, 503],
    [ErrCode.Timeout, 504],
    [ErrCode.JobNotRunning, 409],
    [ErrCode.RequestNotSupported, 501],
    [ErrCode.JobControlFailure, 500],
  ])("code %i → HTTP %i", async (code, status) => {
    const original = service.getJob;
    service.getJob = async () => {
      throw new ApiError(code, "boom");
    };
    try {
      const res = await app.inject({ url: "/jobs/x", headers: auth });
      expect(res.statusCode).toBe(status);
      expect((res.json() as ErrorBody).code).toBe(code);
    } finally {
      service.getJob = original;
    }
  });

  it("an unknown error is 500 Unknown", async () => {
    const original = service.nodes;
    service.nodes = async () => {
      throw new TypeError("kaput");
    };
    try {
      const res = await app.inject({ url: "/nodes", headers: auth });
      expect(res.statusCode).toBe(500);
      expect(res.json()).toEqual({ code: 0, name: "Unknown", message: "kaput" });
    } finally {
      service.nodes = original;
    }
  });

  it("an unknown route is 404 with the error body", async () => {
    const res = await app.inject({ url: "/nope" });
    expect(res.statusCode).toBe(404);
    expect((res.json() as ErrorBody).name).toBe("InvalidRequest");
  });
});

describe("submission validation", () => {
  it("malformed JSON is 400", async () => {
    expectInvalid(await submit('{"command": "echo'), 400, /JSON/i);
  });

  it("an empty JSON body is 400", async () => {
    expectInvalid(await submit(""), 400, /empty/i);
  });

  it("a body that is not JSON is 415 with the error body", async () => {
    expectInvalid(
      await submit("<job/>", { "content-type": "application/xml" }),
      415,
      /Unsupported Media Type/i,
    );
    expectInvalid(await submit("command=ls", { "content-type": "text/plain" }), 400, /body must be object/);
  });

  it("a non-object body is 400", async () => {
    expectInvalid(await submit([1, 2]), 400, /body must be object/);
  });

  it("wrong types are 400 naming the field, without coercion", async () => {
    expectInvalid(await submit({ command: 5 }), 400, /body\/command must be string/);
    expectInvalid(await submit({ command: "x", args: ["a", 1] }), 400, /body\/args\/1 must be string/);
    expectInvalid(
      await submit({ command: "x", environment: [{ name: "A" }] }),
      400,
      /body\/environment\/0.*value/,
    );
    expectInvalid(await submit({ command: "x", tags: "a" }), 400, /body\/tags must be array/);
    expect(service.callsTo("submit")).toHaveLength(0);
  });

  it("both command and exe, or neither, is 400 naming them", async () => {
    expectInvalid(await submit({ command: "echo", exe: "/bin/echo" }), 400, /command.*exe/);
    expectInvalid(await submit({ name: "x" }), 400, /command or exe/);
    expectInvalid(await submit({ command: "" }), 400, /command or exe/);
  });

  it("only host mounts with absolute paths", async () => {
    const mount = (type: string, path: unknown, mountPath = "/data") => ({
      command: "ls",
      mounts: [{ mountPath, mountSource: { type, source: { path } } }],
    });
    expectInvalid(await submit(mount("nfs", "/x")), 400, /body\/mounts\/0\/mountSource\/type must be "host"/);
    expectInvalid(
      await submit(mount("host", "rel")),
      400,
      /body\/mounts\/0\/mountSource\/source\/path .*absolute/,
    );
    expectInvalid(await submit(mount("host", "/ok", "rel")), 400, /body\/mounts\/0\/mountPath .*absolute/);
    expectInvalid(
      await submit({ command: "ls", mounts: [{ mountPath: "/d", mountSource: { type: "host" } }] }),
      400,
      /mounts\/0\/mountSource/,
    );
    expect(service.callsTo("submit")).toHaveLength(0);
  });

  it("stdin over 1 MiB is 400 naming stdin", async () => {
    expectInvalid(await submit({ command: "cat", stdin: "x".repeat(1024 * 1024 + 1) }), 400, /stdin/);
    // Multi-byte characters count as bytes.
    expectInvalid(await submit({ command: "cat", stdin: "é".repeat(600 * 1024) }), 400, /stdin/);
  });

  it("a body over the limit is 413 with the error body", async () => {
    const res = await submit({ command: "cat", stdin: "x".repeat(BODY_LIMIT_BYTES + 10) });
    expectInvalid(res, 413, /too large/);
  });

  it("absurd list sizes are 400", async () => {
    const args = Array.from({ length: 10_001 }, () => "a");
    expectInvalid(
      await submit({ command: "echo", args }),
      400,
      /body\/args must not have more than 10000 items/,
    );
  });

  it("an unknown field is a 400 naming it, and no job is made; so is the fleet's own `node`", async () => {
    const before = service.callsTo("submit").length;
    for (const [body, message] of [
      [{ command: "true", bogusField: 1 }, "body/bogusField is not a Job field"],
      [{ command: "true", workdir: "/tmp" }, "body/workdir is not a Job field"],
      [{ command: "true", node: "node-b" }, "body/node is the node that runs the job"],
    ] as const) {
      const res = await submit(body);
      expect(res.statusCode).toBe(400);
      expect((res.json() as { message: string }).message).toContain(message);
    }
    expect(service.callsTo("submit")).toHaveLength(before);
  });

  it("a valid job is 201 without a client-chosen id", async () => {
    const res = await submit({
      id: "mine",
      command: "echo hi",
      args: ["a"],
      environment: [{ name: "A", value: "1" }],
      mounts: [
        { mountPath: "/data", readOnly: true, mountSource: { type: "host", source: { path: "/srv" } } },
      ],
      exposedPorts: [{ targetPort: 80 }],
    });
    expect(res.statusCode).toBe(201);
    const job = res.json() as { id: string; status: string; user: string };
    expect(job.id).toMatch(/^job-/);
    expect(job).toMatchObject({ status: "Pending", user: "alice" });
    const sent = service.callsTo("submit").at(-1)?.args[0] as Record<string, unknown>;
    expect(sent.id).toBe("");
    expect(sent.exposedPorts).toEqual([{ targetPort: 80, protocol: "tcp" }]);
    expect(sent.mounts).toEqual([
      { mountPath: "/data", readOnly: true, mountSource: { type: "host", source: { path: "/srv" } } },
    ]);
  });

  it("control: unknown operation is 400; wrong state is 409", async () => {
    service.addJob({ id: "c1", status: "Running" });
    const control = (operation: unknown) =>
      app.inject({ method: "POST", url: "/jobs/c1/control", headers: auth, payload: { operation } });
    expectInvalid(await control("explode"), 400, /Unknown control job operation \(explode\) for job c1/);
    expectInvalid(await control(7), 400, /Unknown control job operation \(7\)/);
    expectInvalid(await control(true), 400, /body\/operation/);
    const wrong = await control("resume");
    expect(wrong.statusCode).toBe(409);
    expect((wrong.json() as ErrorBody).name).toBe("InvalidJobState");
    const ok = await control("stop");
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual({ statusMessage: "Stop by node-a", operationComplete: true });
    expect((await control(3)).json()).toMatchObject({ statusMessage: "Kill by node-a" });
  });
});
