// Output streams of real jobs: replay, follow, complete after the last byte, stdout/stderr/both/mixed,
// SSE framing, disconnects and many streams at once.
import { mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fleetKeys } from "../../src/cluster/keys.js";
import { api, readStream, startTestNode, type TestNode, token, until } from "../helpers/nodes.js";
import { redisClient, uniquePrefix } from "../helpers/redis.js";
import { control, endAll, getJob, running, submit, waitTerminal } from "./helpers.js";

type Msg = { seqId: number; output?: string; outputType?: string; complete?: boolean; error?: unknown };

let n: TestNode;
let alice: string;
let admin: string;
const tmp = mkdtempSync(join(tmpdir(), "node-output-"));

beforeAll(async () => {
  n = await startTestNode(uniquePrefix("output"));
  alice = await token("alice");
  admin = await token("ops", { admin: true });
});
afterAll(async () => {
  await endAll(n, admin);
  await n.close();
});

const output = (id: string, type?: string | number) =>
  readStream<Msg>(n.url, `/jobs/${id}/output${type === undefined ? "" : `?outputType=${type}`}`, {
    token: alice,
  });

function text(messages: Msg[], type?: string): string {
  return messages
    .filter((m) => m.output !== undefined && (type === undefined || m.outputType === type))
    .map((m) => m.output)
    .join("");
}

/** Every stream: seqIds 1…n, output chunks only, then exactly one final complete. */
function expectWellFormed(messages: Msg[]): void {
  expect(messages.map((m) => m.seqId)).toEqual(messages.map((_, i) => i + 1));
  expect(messages.at(-1)).toEqual({ seqId: messages.length, complete: true });
  for (const m of messages.slice(0, -1)) {
    expect(Object.keys(m).sort()).toEqual(["output", "outputType", "seqId"]);
    expect(m.output).not.toBe("");
  }
}

describe("replay of a finished job", () => {
  let id: string;
  beforeAll(async () => {
    const job = await submit(n, alice, { command: "echo out1; echo err1 >&2; echo out2; echo err2 >&2" });
    id = job.id;
    expect(await waitTerminal(n, alice, id)).toMatchObject({ status: "Finished", exitCode: 0 });
  });

  it("stdout only (by name and as 0)", async () => {
    for (const type of ["stdout", 0]) {
      const { status, messages } = await output(id, type);
      expect(status).toBe(200);
      expectWellFormed(messages);
      expect(text(messages)).toBe("out1\nout2\n");
      expect(new Set(messages.slice(0, -1).map((m) => m.outputType))).toEqual(new Set(["stdout"]));
    }
  });

  it("stderr only (by name and as 1)", async () => {
    for (const type of ["stderr", 1]) {
      const { messages } = await output(id, type);
      expectWellFormed(messages);
      expect(text(messages)).toBe("err1\nerr2\n");
      expect(new Set(messages.slice(0, -1).map((m) => m.outputType))).toEqual(new Set(["stderr"]));
    }
  });

  it("both (default, `both` and 2): each stream complete and labelled", async () => {
    for (const type of [undefined, "both", 2]) {
      const { messages } = await output(id, type);
      expectWellFormed(messages);
      expect(text(messages, "stdout")).toBe("out1\nout2\n");
      expect(text(messages, "stderr")).toBe("err1\nerr2\n");
      expect(text(messages).length).toBe("out1\nout2\nerr1\nerr2\n".length);
    }
  });

  it("an unknown outputType is 400 code 2 naming outputType", async () => {
    const res = await api(n.url, "GET", `/jobs/${id}/output?outputType=everything`, { token: alice });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 2 });
    expect((res.body as { message: string }).message).toContain("outputType");
  });

  it("output of a job that does not exist is 404 code 3", async () => {
    const res = await api(n.url, "GET", "/jobs/nope/output", { token: alice });
    expect(res).toMatchObject({ status: 404, body: { code: 3 } });
  });
});

describe("combined output file", () => {
  it("one file for stdout and stderr is streamed as `mixed`, in write order", async () => {
    const file = join(tmp, "combined.log");
    const job = await submit(n, alice, {
      command: "echo out1; echo err1 >&2; echo out2; echo err2 >&2",
      stdoutFile: file,
      stderrFile: file,
    });
    await waitTerminal(n, alice, job.id);
    for (const type of [undefined, "both"]) {
      const { messages } = await output(job.id, type);
      expectWellFormed(messages);
      expect(text(messages)).toBe("out1\nerr1\nout2\nerr2\n");
      expect(new Set(messages.slice(0, -1).map((m) => m.outputType))).toEqual(new Set(["mixed"]));
    }
  });
});

describe("relative output paths", () => {
  it("are relative to the working directory, and streamed from the file the job wrote", async () => {
    const wd = mkdtempSync(join(tmpdir(), "node-output-wd-"));
    mkdirSync(join(wd, "logs")); // the node creates no directory for a job
    const job = await submit(n, alice, {
      command: "echo to-out; echo to-err >&2",
      workingDirectory: wd,
      stdoutFile: "out.log",
      stderrFile: "./logs/err.log",
    });
    expect(job.stdoutFile).toBe(join(wd, "out.log"));
    expect(job.stderrFile).toBe(join(wd, "logs", "err.log"));
    await waitTerminal(n, alice, job.id);
    expect(readFileSync(join(wd, "out.log"), "utf8")).toBe("to-out\n");
    const { messages } = await output(job.id);
    expectWellFormed(messages);
    expect(text(messages, "stdout")).toBe("to-out\n");
    expect(text(messages, "stderr")).toBe("to-err\n");
  });

  it("the same file named two ways is one combined file", async () => {
    const wd = mkdtempSync(join(tmpdir(), "node-output-wd-"));
    const job = await submit(n, alice, {
      command: "echo a; echo b >&2",
      workingDirectory: wd,
      stdoutFile: "all.log",
      stderrFile: join(wd, "all.log"),
    });
    await waitTerminal(n, alice, job.id);
    const { messages } = await output(job.id);
    expectWellFormed(messages);
    expect(text(messages, "mixed")).toBe("a\nb\n");
  });
});

describe("following a running job", () => {
  it("streams lines as they are printed, all present and in order, then complete after the last byte", async () => {
    const job = await submit(n, alice, {
      command: 'for i in 1 2 3 4 5 6; do echo "line $i"; sleep 0.15; done; printf "last-no-newline"',
    });
    // Opened while the job is Pending or just started: the stream follows it to the end.
    const { messages, ended } = await readStream<Msg>(n.url, `/jobs/${job.id}/output?outputType=stdout`, {
      token: alice,
    });
    expect(ended).toBe(true);
    expectWellFormed(messages);
    expect(text(messages)).toBe("line 1\nline 2\nline 3\nline 4\nline 5\nline 6\nlast-no-newline");
    // Followed, not replayed at the end: output arrived in more than one piece.
    expect(messages.filter((m) => m.output).length).toBeGreaterThan(1);
    expect((await getJob(n, alice, job.id)).status).toBe("Finished");
  });

  it("both streams of a running job, each in order", async () => {
    const job = await submit(n, alice, {
      command: 'for i in 1 2 3 4; do echo "o$i"; echo "e$i" >&2; sleep 0.1; done',
    });
    const { messages } = await readStream<Msg>(n.url, `/jobs/${job.id}/output`, { token: alice });
    expectWellFormed(messages);
    expect(text(messages, "stdout")).toBe("o1\no2\no3\no4\n");
    expect(text(messages, "stderr")).toBe("e1\ne2\ne3\ne4\n");
  });

  it("a job killed mid-output: everything written before is delivered, then complete", async () => {
    const job = await running(n, alice, { command: "echo before; sleep 30; echo after" });
    const stream = readStream<Msg>(n.url, `/jobs/${job.id}/output`, { token: alice });
    await new Promise((r) => setTimeout(r, 300));
    expect((await control(n, alice, job.id, "kill")).status).toBe(200);
    const { messages, ended } = await stream;
    expect(ended).toBe(true);
    expectWellFormed(messages);
    expect(text(messages)).toBe("before\n");
  });

  it("a lot of output arrives complete", async () => {
    const job = await submit(n, alice, { command: "seq 1 20000" });
    const { messages } = await readStream<Msg>(n.url, `/jobs/${job.id}/output?outputType=stdout`, {
      token: alice,
    });
    expectWellFormed(messages);
    const lines = text(messages).split("\n");
    expect(lines.length).toBe(20001);
    expect(lines[0]).toBe("1");
    expect(lines[19999]).toBe("20000");
  });
});

describe("edge cases", () => {
  it("empty output is not an error: just complete", async () => {
    const job = await submit(n, alice, { command: "true" });
    await waitTerminal(n, alice, job.id);
    for (const type of ["stdout", "stderr", "both"]) {
      const { status, messages } = await output(job.id, type);
      expect(status).toBe(200);
      expect(messages).toEqual([{ seqId: 1, complete: true }]);
    }
  });

  it("an output record naming another uid's file (written to Redis by someone else) streams nothing: 404 code 7", async () => {
    const job = await submit(n, alice, { command: "echo mine" });
    await waitTerminal(n, alice, job.id);
    const redis = redisClient();
    try {
      const key = fleetKeys(n.settings.keyPrefix).job(job.id);
      const record = JSON.parse((await redis.hget(key, "outputs"))!) as { uid: number };
      expect(record.uid).toBe(process.getuid!()); // the node's own user: unprivileged mode
      await redis.hset(key, "outputs", JSON.stringify({ ...record, uid: record.uid + 4242 }));
    } finally {
      redis.disconnect();
    }
    const res = await api<{ code: number; message: string }>(n.url, "GET", `/jobs/${job.id}/output`, {
      token: alice,
    });
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ code: 7 });
    expect(res.body.message).toContain("not as its user here");
  });

  it("empty output of a failed launch is not an error either", async () => {
    const job = await submit(n, alice, { exe: "/nonexistent/launcher-prog" });
    expect((await waitTerminal(n, alice, job.id)).status).toBe("Failed");
    const { status, messages } = await output(job.id);
    expect(status).toBe(200);
    expect(messages.at(-1)).toMatchObject({ complete: true });
    expect(messages.filter((m) => m.error)).toEqual([]);
  });

  it("multi-byte characters are never split", async () => {
    const job = await submit(n, alice, { command: "for i in $(seq 1 3000); do printf 'é€😀'; done" });
    const { messages } = await readStream<Msg>(n.url, `/jobs/${job.id}/output`, { token: alice });
    expectWellFormed(messages);
    expect(text(messages)).toBe("é€😀".repeat(3000));
    expect(text(messages)).not.toContain("\uFFFD");
  });
});

describe("framing and connections", () => {
  it("Server-Sent Events with Accept: text/event-stream", async () => {
    const job = await submit(n, alice, { command: "echo one; echo two" });
    await waitTerminal(n, alice, job.id);
    const res = await fetch(`${n.url}/jobs/${job.id}/output?outputType=stdout`, {
      headers: { authorization: `Bearer ${alice}`, accept: "text/event-stream" },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const body = await res.text();
    expect(body.endsWith("\n\n")).toBe(true);
    const frames = body.split("\n\n").filter(Boolean);
    const messages = frames.map((frame) => {
      const data = frame.split("\n").filter((l) => l.startsWith("data: "));
      expect(data).toHaveLength(1);
      return JSON.parse(data[0]!.slice("data: ".length)) as Msg;
    });
    expectWellFormed(messages);
    expect(text(messages)).toBe("one\ntwo\n");

    // Status events over SSE carry `id:` = eventId.
    const st = await fetch(`${n.url}/jobs/${job.id}/status`, {
      headers: { authorization: `Bearer ${alice}`, accept: "text/event-stream" },
    });
    const statusFrames = (await st.text()).split("\n\n").filter(Boolean);
    expect(statusFrames.length).toBe(1);
    const [idLine, dataLine] = statusFrames[0]!.split("\n");
    const event = JSON.parse(dataLine!.slice("data: ".length)) as { eventId: string; status: string };
    expect(event.status).toBe("Finished");
    expect(idLine).toBe(`id: ${event.eventId}`);
  });

  it("NDJSON is the default content type", async () => {
    const job = await submit(n, alice, { command: "true" });
    await waitTerminal(n, alice, job.id);
    const res = await fetch(`${n.url}/jobs/${job.id}/output`, {
      headers: { authorization: `Bearer ${alice}` },
    });
    expect(res.headers.get("content-type")).toContain("application/x-ndjson");
    expect(await res.text()).toBe('{"seqId":1,"complete":true}\n');
  });

  it("a client hanging up mid-stream ends that stream and breaks nothing later", async () => {
    const job = await running(n, alice, {
      command: 'i=0; while [ $i -lt 30 ]; do i=$((i+1)); echo "tick $i"; sleep 0.05; done',
    });
    const openStreams = async () => {
      const metrics = await (await fetch(`${n.url}/metrics`)).text();
      const line = metrics.split("\n").find((l) => l.startsWith('launcher_open_streams{kind="output"}'));
      return Number(line?.split(" ")[1] ?? 0);
    };
    // Several clients read a little and hang up.
    for (let i = 0; i < 5; i++) {
      const cut = await readStream<Msg>(n.url, `/jobs/${job.id}/output`, {
        token: alice,
        until: (m) => !!m.output,
      });
      expect(cut.ended).toBe(false);
      expect(cut.messages[0]?.output).toMatch(/^tick 1\n/);
    }
    await until(async () => (await openStreams()) === 0);
    // A later stream still gets the whole output and complete.
    const full = await readStream<Msg>(n.url, `/jobs/${job.id}/output`, { token: alice });
    expectWellFormed(full.messages);
    expect(text(full.messages).split("\n").filter(Boolean)).toEqual(
      Array.from({ length: 30 }, (_, i) => `tick ${i + 1}`),
    );
    expect((await api(n.url, "GET", "/healthz")).status).toBe(200);
  });

  it("many concurrent streams on one job all get the same complete output", async () => {
    const job = await submit(n, alice, {
      command: 'for i in $(seq 1 10); do echo "row $i"; echo "warn $i" >&2; sleep 0.05; done',
    });
    const streams = await Promise.all(
      Array.from({ length: 25 }, (_, i) =>
        readStream<Msg>(n.url, `/jobs/${job.id}/output?outputType=${["stdout", "stderr", "both"][i % 3]}`, {
          token: alice,
          timeoutMs: 20_000,
        }),
      ),
    );
    const rows = Array.from({ length: 10 }, (_, i) => `row ${i + 1}\n`).join("");
    const warns = Array.from({ length: 10 }, (_, i) => `warn ${i + 1}\n`).join("");
    streams.forEach((s, i) => {
      expect(s.ended).toBe(true);
      expectWellFormed(s.messages);
      const type = ["stdout", "stderr", "both"][i % 3];
      if (type !== "stderr") expect(text(s.messages, "stdout")).toBe(rows);
      if (type !== "stdout") expect(text(s.messages, "stderr")).toBe(warns);
      if (type === "stdout") expect(text(s.messages, "stderr")).toBe("");
      if (type === "stderr") expect(text(s.messages, "stdout")).toBe("");
    });
  });
});
