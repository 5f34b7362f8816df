// The dispatcher in-process, over the HTTP tests' FakeService: caller mapping, owner routing,
// responseId bookkeeping and stream shapes, without processes or Redis.
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { ConfigReloadErrorType, type JobOutput, JobStatus } from "../../src/api/index.js";
import type { Caller, JobLocation } from "../../src/launcher/port.js";
import { encodeFrame, FrameDecoder, MessageTooLargeError } from "../../src/plugin/framing.js";
import { LauncherNodes } from "../../src/plugin/launcher-nodes.js";
import {
  callerFromRequest,
  filterTime,
  type OwnerForwarder,
  type PluginDeps,
  PluginServer,
  splitOutput,
} from "../../src/plugin/server.js";
import { FakeService, whenAborted } from "../http/fake-service.js";
import type { Message } from "./driver.js";

class CollectingWriter {
  readonly messages: Message[] = [];
  constructor(readonly maxSize = 5 * 1024 * 1024) {}
  write(message: unknown): undefined {
    const frame = encodeFrame(message, this.maxSize);
    this.messages.push(JSON.parse(frame.subarray(4).toString("utf8")) as Message);
    return undefined;
  }
}

interface ForwardCall {
  method: string;
  caller: Caller;
  location: Pick<JobLocation, "owner"> & { baseUrl: string };
  id: string;
  extra?: unknown;
}

function fakeOwners(calls: ForwardCall[]): OwnerForwarder {
  return {
    async control(caller, location, id, operation) {
      calls.push({ method: "control", caller, location, id, extra: operation });
      return { statusMessage: `forwarded to ${location.owner}`, operationComplete: true };
    },
    async network(caller, location, id) {
      calls.push({ method: "network", caller, location, id });
      return { host: "owner-host", ipAddresses: ["10.1.1.1"] };
    },
    async *outputStream(caller, location, id, type: JobOutput) {
      calls.push({ method: "outputStream", caller, location, id, extra: type });
      yield { output: "remote\n", outputType: "stdout" as const };
    },
    async *resourceStream(caller, location, id) {
      calls.push({ method: "resourceStream", caller, location, id });
      yield { cpuPercent: 0, cpuTime: 1, residentMemory: 2, virtualMemory: 3 };
    },
  };
}

function setup(opts: { maxSize?: number; deps?: Partial<PluginDeps> } = {}) {
  const service = new FakeService("node-a");
  const forwards: ForwardCall[] = [];
  const writer = new CollectingWriter(opts.maxSize);
  const launcherNodes = new LauncherNodes();
  const server = new PluginServer({
    writer,
    logger: pino({ level: "silent" }),
    adminGroup: "launcher-admins",
    deps: { service, owners: fakeOwners(forwards), ...opts.deps },
    launcherNodes,
  });
  let next = 0;
  const send = (message: Message) => {
    const requestId = (message.requestId as number | undefined) ?? ++next;
    for (const event of new FrameDecoder().push(encodeFrame({ ...message, requestId })))
      server.handleEvent(event);
    return requestId;
  };
  const answer = async (requestId: number) => {
    for (let i = 0; i < 200; i++) {
      const m = writer.messages.find((x) => x.requestId === requestId);
      if (m) return m;
      await new Promise((r) => setTimeout(r, 5));
    }
    throw new Error(`no answer to ${requestId}`);
  };
  const ask = (message: Message) => answer(send(message));
  return { service, forwards, writer, server, send, ask, launcherNodes };
}

const settle = () => new Promise((r) => setTimeout(r, 30));

describe("callerFromRequest", () => {
  it("maps `*` to an admin caller named `*`, a name to a plain user, and refuses none", () => {
    expect(
      callerFromRequest(
        { messageType: 3, requestId: 1, username: "*", requestUsername: "rstudio-server" },
        "adm",
      ),
    ).toEqual({
      user: "*",
      groups: ["adm"],
      admin: true,
    });
    expect(
      callerFromRequest({ messageType: 3, requestId: 1, username: "alice", requestUsername: "x" }, "adm"),
    ).toEqual({
      user: "alice",
      groups: [],
      admin: false,
    });
    expect(() =>
      callerFromRequest({ messageType: 3, requestId: 1, requestUsername: "alice" }, "adm"),
    ).toThrow("User must not be empty");
    expect(() => callerFromRequest({ messageType: 3, requestId: 1, username: 3 }, "adm")).toThrow(
      "username must be a string",
    );
  });
});

describe("PluginServer", () => {
  it("passes the mapped caller to the service and ignores requestUsername for access", async () => {
    const { service, ask } = setup();
    service.addJob({ id: "j1", user: "alice" });
    service.addJob({ id: "j2", user: "bob" });
    const asAlice = await ask({ messageType: 3, username: "alice", requestUsername: "bob", jobId: "*" });
    expect(asAlice.jobs.map((j: Message) => j.id)).toEqual(["j1"]);
    expect(service.callsTo("listJobs")[0]?.caller).toEqual({ user: "alice", groups: [], admin: false });
    const asAdmin = await ask({
      messageType: 3,
      username: "*",
      requestUsername: "rstudio-server",
      jobId: "*",
    });
    expect(asAdmin.jobs.map((j: Message) => j.id)).toEqual(["j1", "j2"]);
  });

  it("numbers responses from 0, leaving heartbeat and error responses at 0", async () => {
    const { writer, send, ask } = setup();
    expect((await ask({ messageType: 9, username: "alice" })).responseId).toBe(0);
    send({ messageType: 0, requestId: 0 });
    expect((await ask({ messageType: 42, username: "alice" })).responseId).toBe(0);
    expect((await ask({ messageType: 1, version: { major: 3, minor: 5, patch: 0 } })).responseId).toBe(1);
    expect((await ask({ messageType: 202, username: "*" })).responseId).toBe(2);
    expect(writer.messages.find((m) => m.messageType === 0)).toEqual({
      messageType: 0,
      requestId: 0,
      responseId: 0,
    });
  });

  it("turns a response over the size limit into an error without using up a responseId", async () => {
    const { service, ask } = setup({ maxSize: 2048 });
    for (let i = 0; i < 40; i++)
      service.addJob({ id: `job-${String(i).padStart(3, "0")}`, name: "n".repeat(60) });
    const big = await ask({ messageType: 3, username: "*", jobId: "*" });
    expect(big).toMatchObject({
      messageType: -1,
      errorCode: 0,
      errorMessage: expect.stringContaining("exceeds the maximum"),
    });
    expect((await ask({ messageType: 9, username: "*" })).responseId).toBe(0);
  });

  it("routes owner-only requests for a remote job to its owner with the same caller", async () => {
    const { service, forwards, ask, send, writer } = setup();
    service.addJob({ id: "r1", user: "alice" });
    service.locations.set("r1", {
      owner: "node-b",
      local: false,
      online: true,
      draining: false,
      baseUrl: "http://10.0.0.2:5560",
    });
    expect(await ask({ messageType: 5, username: "alice", jobId: "r1", operation: 2 })).toMatchObject({
      messageType: 4,
      statusMessage: "forwarded to node-b",
      operationComplete: true,
    });
    expect(await ask({ messageType: 8, username: "alice", jobId: "r1" })).toMatchObject({
      host: "owner-host",
    });
    const out = send({ messageType: 6, username: "alice", jobId: "r1", outputType: 1 });
    const res = send({ messageType: 7, username: "alice", jobId: "r1" });
    await settle();
    expect(writer.messages.filter((m) => m.requestId === out)).toEqual([
      {
        messageType: 5,
        requestId: out,
        responseId: expect.any(Number),
        seqId: 1,
        output: "remote\n",
        outputType: "stdout",
        complete: false,
      },
      {
        messageType: 5,
        requestId: out,
        responseId: expect.any(Number),
        seqId: 2,
        output: "",
        outputType: "",
        complete: true,
      },
    ]);
    const resMsgs = writer.messages.filter((m) => m.sequences?.[0]?.requestId === res);
    expect(resMsgs).toEqual([
      // Zero values are omitted, as Go's omitempty does.
      {
        messageType: 6,
        requestId: 0,
        responseId: expect.any(Number),
        sequences: [{ requestId: res, seqId: 1 }],
        cpuTime: 1,
        virtualMemory: 3,
        residentMemory: 2,
        complete: false,
      },
      {
        messageType: 6,
        requestId: 0,
        responseId: expect.any(Number),
        sequences: [{ requestId: res, seqId: 2 }],
        complete: true,
      },
    ]);
    expect(forwards.map((f) => [f.method, f.location.owner, f.caller.user])).toEqual([
      ["control", "node-b", "alice"],
      ["network", "node-b", "alice"],
      ["outputStream", "node-b", "alice"],
      ["resourceStream", "node-b", "alice"],
    ]);
    expect(forwards[2]?.extra).toBe(1);
    expect(service.callsTo("control")).toEqual([]);
  });

  it("answers PluginRestarted when the owner is offline or draining", async () => {
    const { service, forwards, ask } = setup();
    service.addJob({ id: "o1", user: "alice" });
    service.locations.set("o1", { owner: "node-b", local: false, online: false, draining: false });
    expect(await ask({ messageType: 5, username: "alice", jobId: "o1", operation: 2 })).toMatchObject({
      errorCode: 4,
      errorMessage: "Job o1 is owned by node node-b, which is offline",
    });
    service.locations.set("o1", {
      owner: "node-b",
      local: false,
      online: true,
      draining: true,
      baseUrl: "http://x:1",
    });
    expect(await ask({ messageType: 8, username: "alice", jobId: "o1" })).toMatchObject({ errorCode: 4 });
    expect(forwards).toEqual([]);
  });

  it("sends status events as multi-stream messages and stops a canceled stream", async () => {
    const { service, writer, send } = setup();
    service.addJob({ id: "s1", user: "alice", name: "named", status: JobStatus.Running });
    let push: ((status: JobStatus) => void) | undefined;
    service.statusImpl = async function* (_caller, id, opts) {
      yield { eventId: "1-0", id, name: "named", status: JobStatus.Running, statusMessage: "up" };
      const queue: JobStatus[] = [];
      let wake: (() => void) | undefined;
      push = (s) => {
        queue.push(s);
        wake?.();
      };
      while (!opts.signal.aborted) {
        if (queue.length === 0)
          await Promise.race([new Promise<void>((r) => (wake = r)), whenAborted(opts.signal)]);
        const s = queue.shift();
        if (s) yield { eventId: "2-0", id, name: "named", status: s };
      }
    };
    const sid = send({ messageType: 4, username: "alice", jobId: "s1" });
    await settle();
    push?.(JobStatus.Suspended);
    await settle();
    const mine = () => writer.messages.filter((m) => m.sequences?.[0]?.requestId === sid);
    expect(mine()).toEqual([
      {
        messageType: 3,
        requestId: 0,
        responseId: expect.any(Number),
        sequences: [{ requestId: sid, seqId: 1 }],
        id: "s1",
        name: "named",
        status: "Running",
        statusMessage: "up",
      },
      {
        messageType: 3,
        requestId: 0,
        responseId: expect.any(Number),
        sequences: [{ requestId: sid, seqId: 2 }],
        id: "s1",
        name: "named",
        status: "Suspended",
      },
    ]);
    const before = writer.messages.length;
    send({ messageType: 4, requestId: sid, username: "alice", jobId: "s1", cancel: true });
    await settle();
    push?.(JobStatus.Running);
    await settle();
    expect(writer.messages).toHaveLength(before);
    expect(service.signals.at(-1)?.aborted).toBe(true);
  });

  it("refuses a second stream on an open request id", async () => {
    const { service, send, writer } = setup();
    service.addJob({ id: "s2", user: "alice" });
    service.statusImpl = async function* (_c, id, opts) {
      yield { eventId: "1-0", id, name: "", status: JobStatus.Running };
      await whenAborted(opts.signal);
    };
    const sid = send({ messageType: 4, username: "alice", jobId: "s2" });
    await settle();
    send({ messageType: 4, requestId: sid, username: "alice", jobId: "s2" });
    await settle();
    expect(writer.messages.find((m) => m.requestId === sid && m.messageType === -1)).toMatchObject({
      errorCode: 2,
    });
  });

  it("records load balancer nodes for listeners", async () => {
    const { ask, launcherNodes } = setup();
    const seen: number[] = [];
    launcherNodes.onChange((s) => seen.push(s.nodes.length));
    await ask({
      messageType: 201,
      username: "*",
      nodes: [{ host: "h", ipv4: "1.2.3.4", port: 5559, lastSeen: "", status: "Online" }],
    });
    expect(launcherNodes.current.nodes).toEqual([
      { host: "h", ipv4: "1.2.3.4", port: "5559", lastSeen: "", status: "Online" },
    ]);
    expect(launcherNodes.online()).toHaveLength(1);
    expect(seen).toEqual([1]);
  });

  it("reports config reload results and failures", async () => {
    const failing = setup({
      deps: {
        reloadConfig: () => ({ errorType: ConfigReloadErrorType.Load, errorMessage: "bad file" }),
      },
    });
    expect(await failing.ask({ messageType: 202, username: "*" })).toMatchObject({
      messageType: 202,
      errorType: 1,
      errorMessage: "bad file",
    });
    const throwing = setup({
      deps: {
        reloadConfig: () => {
          throw new Error("boom");
        },
      },
    });
    expect(await throwing.ask({ messageType: 202, username: "*" })).toMatchObject({
      errorType: -1,
      errorMessage: "boom",
    });
  });

  it("answers every request with an error when the node failed to start", async () => {
    const writer = new CollectingWriter();
    const failed = Promise.reject(new Error("Redis unreachable"));
    const server = new PluginServer({
      writer,
      logger: pino({ level: "silent" }),
      adminGroup: "g",
      deps: failed,
    });
    for (const event of new FrameDecoder().push(
      Buffer.concat([
        encodeFrame({ messageType: 0, requestId: 0 }),
        encodeFrame({ messageType: 1, requestId: 1, version: { major: 3, minor: 5, patch: 0 } }),
      ]),
    )) {
      server.handleEvent(event);
    }
    await settle();
    expect(writer.messages).toEqual([
      { messageType: 0, requestId: 0, responseId: 0 },
      {
        messageType: -1,
        requestId: 1,
        responseId: 0,
        errorCode: 0,
        errorMessage: "launcher-fleet could not start: Redis unreachable",
      },
    ]);
  });

  it("sends nothing after close", async () => {
    const { server, send, writer } = setup();
    server.close();
    send({ messageType: 9, username: "alice" });
    send({ messageType: 0, requestId: 0 });
    await settle();
    expect(writer.messages).toEqual([]);
  });
});

describe("helpers", () => {
  it("splits output so that every message fits, without cutting surrogate pairs", () => {
    const text = `${"a".repeat(500)}😀${"b".repeat(500)}`;
    const pieces = splitOutput(text, 1024);
    expect(pieces.join("")).toBe(text);
    for (const piece of pieces) {
      expect(() =>
        encodeFrame({ messageType: 5, requestId: 1, responseId: 1, seqId: 1, output: piece }, 1024),
      ).not.toThrow(MessageTooLargeError);
      expect(
        piece.charCodeAt(piece.length - 1) >= 0xd800 && piece.charCodeAt(piece.length - 1) <= 0xdbff,
      ).toBe(false);
    }
    expect(splitOutput("short", 1024)).toEqual(["short"]);
  });

  it("accepts filter times in RFC 3339 or zone-less UTC", () => {
    expect(filterTime("2024-05-01T10:00:00", "startTime")).toBe("2024-05-01T10:00:00.000Z");
    expect(filterTime("2024-05-01T12:00:00+02:00", "startTime")).toBe("2024-05-01T10:00:00.000Z");
    expect(() => filterTime("2024-05-01", "endTime")).toThrow("Invalid endTime");
  });
});
