import { execFileSync } from "node:child_process";
import {
  appendFileSync,
  chownSync,
  readdirSync,
  renameSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  type FollowedFileSpec,
  followOutput,
  type OutputChunk,
  OutputNotFoundError,
  type OutputType,
} from "../../src/runner/output.js";
import { Fixture, sleep } from "./helpers.js";

const ME = process.getuid?.() ?? 0;

/** The file as a job's process would have opened it: its identity recorded now (created if missing). */
function opened(path: string, type: OutputType = "stdout", created = true): FollowedFileSpec {
  appendFileSync(path, "");
  const st = statSync(path, { bigint: true });
  return { path, type, identity: { dev: st.dev, ino: st.ino, uid: Number(st.uid), created }, jobUid: ME };
}

/** A file that is not there (deleted since the launch). */
function gone(path: string, type: OutputType = "stdout"): FollowedFileSpec {
  return { path, type, identity: { dev: 0n, ino: 0n, uid: ME, created: true }, jobUid: ME };
}

const fx = new Fixture();
afterEach(() => fx.cleanup());

async function collect(gen: AsyncGenerator<OutputChunk>, onChunk?: (c: OutputChunk) => void) {
  const chunks: OutputChunk[] = [];
  for await (const chunk of gen) {
    chunks.push(chunk);
    onChunk?.(chunk);
  }
  return chunks;
}

const text = (chunks: OutputChunk[]) => chunks.map((c) => c.output).join("");
const never = new AbortController().signal;

describe("followOutput", () => {
  it("replays a finished file from the start", async () => {
    const path = join(fx.tempDir(), "out");
    writeFileSync(path, "a\nb\n");
    const chunks = await collect(followOutput({ files: [opened(path)], signal: never, isDone: () => true }));
    expect(chunks).toEqual([{ output: "a\nb\n", outputType: "stdout" }]);
  });

  it("replays a large file exactly, multi-byte characters across every read boundary included", async () => {
    const path = join(fx.tempDir(), "out");
    // 3-byte characters with a 1-byte offset: reads of any power-of-two size cut characters.
    const content = `x${"€".repeat(150_000)}y\n`;
    writeFileSync(path, content);
    const chunks = await collect(followOutput({ files: [opened(path)], signal: never, isDone: () => true }));
    expect(text(chunks)).toBe(content);
    expect(chunks.length).toBeGreaterThan(5); // read piecewise, not in one go
  });

  it("follows a running job's output in order and ends after its last byte", async () => {
    const { runner, recorder } = fx.runner();
    const path = join(fx.tempDir(), "out");
    await runner.launch({
      id: "j",
      command: "for i in 1 2 3; do echo $i; sleep 0.2; done; printf end",
      stdoutFile: path,
      stderrFile: path,
    });
    const doneWhenSeen: boolean[] = [];
    const chunks = await collect(
      followOutput({
        files: [opened(path)],
        signal: never,
        isDone: () => recorder.exited("j"),
        pollMs: 20,
      }),
      () => doneWhenSeen.push(recorder.exited("j")),
    );
    expect(text(chunks)).toBe("1\n2\n3\nend");
    expect(doneWhenSeen[0]).toBe(false); // output arrived while the job was still running
    expect(chunks.length).toBeGreaterThanOrEqual(3);
  });

  it("treats empty and deleted files of a finished job as empty output", async () => {
    const dir = fx.tempDir();
    const chunks = await collect(
      followOutput({
        files: [opened(join(dir, "empty")), gone(join(dir, "missing"), "stderr")],
        signal: never,
        isDone: () => true,
      }),
    );
    expect(chunks).toEqual([]);
  });

  it("interleaves several files", async () => {
    const dir = fx.tempDir();
    const out = join(dir, "out");
    const err = join(dir, "err");
    writeFileSync(out, "o1\n");
    let done = false;
    const gen = followOutput({
      files: [opened(out), opened(err, "stderr")],
      signal: never,
      isDone: () => done,
      pollMs: 20,
    });
    // Each write follows the chunk before it, so the order is the test's, whatever the machine's load.
    expect((await gen.next()).value).toEqual({ output: "o1\n", outputType: "stdout" });
    await sleep(60); // err is still empty for a few polls
    appendFileSync(err, "e1\n");
    expect((await gen.next()).value).toEqual({ output: "e1\n", outputType: "stderr" });
    appendFileSync(out, "o2\n");
    expect((await gen.next()).value).toEqual({ output: "o2\n", outputType: "stdout" });
    done = true;
    expect((await gen.next()).done).toBe(true);
  });

  it("fails with OutputNotFoundError when a file stays missing while the job runs", async () => {
    const gen = followOutput({
      files: [gone(join(fx.tempDir(), "missing"))],
      signal: never,
      isDone: () => false,
      pollMs: 20,
      missingTimeoutMs: 200,
    });
    await expect(collect(gen)).rejects.toBeInstanceOf(OutputNotFoundError);
  });

  it("never splits a UTF-8 character across chunks", async () => {
    const path = join(fx.tempDir(), "out");
    const bytes = Buffer.from("h€llo", "utf8"); // € is 3 bytes: 1..3
    writeFileSync(path, bytes.subarray(0, 2));
    let done = false;
    const gen = followOutput({
      files: [opened(path)],
      signal: never,
      isDone: () => done,
      pollMs: 20,
    });
    // The file ends inside "€": only "h" may be sent; the rest waits for the character's last bytes.
    expect((await gen.next()).value).toEqual({ output: "h", outputType: "stdout" });
    await sleep(60);
    appendFileSync(path, bytes.subarray(2, 3));
    await sleep(60);
    appendFileSync(path, bytes.subarray(3));
    done = true;
    const rest = await collect(gen);
    expect(rest.map((c) => c.output).join("")).toBe("€llo");
    expect(rest.every((c) => !c.output.includes("\ufffd"))).toBe(true);
  });

  it("stops promptly on abort, even in the middle of a long poll", async () => {
    const path = join(fx.tempDir(), "out");
    writeFileSync(path, "x");
    const controller = new AbortController();
    const gen = followOutput({
      files: [opened(path)],
      signal: controller.signal,
      isDone: () => false,
      pollMs: 3_600_000,
    });
    expect((await gen.next()).value).toEqual({ output: "x", outputType: "stdout" });
    // Now in an hour-long poll: only the abort can end it before the test's timeout fails it.
    setTimeout(() => controller.abort(), 50);
    expect((await gen.next()).done).toBe(true);
  });

  it("closes its files when the consumer stops early", async () => {
    const path = join(fx.tempDir(), "out");
    writeFileSync(path, "x");
    const gen = followOutput({ files: [opened(path)], signal: never, isDone: () => false });
    expect((await gen.next()).value).toEqual({ output: "x", outputType: "stdout" });
    await gen.return(undefined);
    await sleep(10);
    expect((await gen.next()).done).toBe(true);
  });
});

describe("followOutput: only the file the job opened", () => {
  const refused = (spec: FollowedFileSpec) =>
    collect(followOutput({ files: [spec], signal: never, isDone: () => true }));

  it("refuses a symlink put in the file's place after the launch", async () => {
    const dir = fx.tempDir();
    const path = join(dir, "out");
    const spec = opened(path);
    unlinkSync(path);
    symlinkSync("/etc/passwd", path);
    await expect(refused(spec)).rejects.toThrow(/is a symbolic link/);
  });

  it("a refused file leaves the other one closed (no descriptor left to the garbage collector)", async () => {
    const openFds = () => readdirSync("/proc/self/fd").length;
    const before = openFds();
    for (let i = 0; i < 20; i++) {
      const dir = fx.tempDir();
      const out = opened(join(dir, "out"));
      const err = opened(join(dir, "err"), "stderr");
      unlinkSync(out.path);
      symlinkSync("/etc/passwd", out.path);
      await expect(
        collect(followOutput({ files: [out, err], signal: never, isDone: () => true })),
      ).rejects.toThrow(/is a symbolic link/);
    }
    await sleep(200); // an open still in flight when the refusal came would have finished by now
    expect(openFds()).toBeLessThanOrEqual(before);
  });

  it("refuses a FIFO put in the file's place, at once (opening it does not block)", async () => {
    const dir = fx.tempDir();
    const path = join(dir, "out");
    const spec = opened(path);
    unlinkSync(path);
    execFileSync("mkfifo", [path]);
    // A FIFO with no writer blocks a plain open for ever: the test's timeout would fail it.
    await expect(refused(spec)).rejects.toThrow(/is not a regular file/);
  });

  it("refuses another file renamed over it", async () => {
    const dir = fx.tempDir();
    const path = join(dir, "out");
    const spec = opened(path);
    writeFileSync(join(dir, "other"), "not the job's\n");
    renameSync(join(dir, "other"), path);
    await expect(refused(spec)).rejects.toThrow(/is not the file the job opened/);
  });

  it("refuses a file of another owner, and a root job's file that existed before it", async () => {
    const path = join(fx.tempDir(), "out");
    const spec = opened(path);
    await expect(refused({ ...spec, jobUid: ME + 1 })).rejects.toThrow(/is not owned by the job's user/);
    if (ME === 0) {
      await expect(refused(opened(path, "stdout", false))).rejects.toThrow(/existed before the root job/);
      chownSync(path, 65534, 65534);
      await expect(refused({ ...opened(path), jobUid: 65534 })).resolves.toEqual([]);
    }
  });

  it("refuses /proc/self/environ and /etc/shadow, which no job opened", async () => {
    for (const path of ["/proc/self/environ", "/etc/shadow"]) {
      await expect(
        refused({ ...gone(path), identity: opened(join(fx.tempDir(), "x")).identity }),
      ).rejects.toThrow(OutputNotFoundError);
    }
  });
});
