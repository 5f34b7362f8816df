import { chmodSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { LaunchError, type LaunchSpec } from "../../src/runner/local-runner.js";
import { readProcStat } from "../../src/runner/proc.js";
import { DEFAULT_PATH, jobDir } from "../../src/runner/supervisor.js";
import { Fixture, read, sleep, waitUntil } from "./helpers.js";

const fx = new Fixture();
afterEach(() => fx.cleanup());

/** A runner plus a spec factory writing output into a fresh temp dir. */
function setup() {
  const { runner, recorder, stateDir } = fx.runner();
  const out = fx.tempDir();
  let n = 0;
  const spec = (fields: Partial<LaunchSpec>): LaunchSpec => {
    n++;
    return {
      id: `job-${n}`,
      stdoutFile: join(out, `${n}.out`),
      stderrFile: join(out, `${n}.err`),
      ...fields,
    };
  };
  /** Launches, waits for the exit, and returns the code and the stdout text. */
  const run = async (fields: Partial<LaunchSpec>) => {
    const s = spec(fields);
    await runner.launch(s);
    const exitCode = await recorder.wait(s.id);
    return { exitCode, stdout: read(s.stdoutFile), spec: s };
  };
  return { runner, recorder, stateDir, out, spec, run };
}

describe("LocalRunner: launching", () => {
  it("reports exit codes 0 and 3", async () => {
    const { run } = setup();
    expect((await run({ command: "true" })).exitCode).toBe(0);
    expect((await run({ command: "exit 3" })).exitCode).toBe(3);
  });

  it("passes command args shell-quoted, so spaces, quotes and $HOME stay literal", async () => {
    const { run } = setup();
    const args = ["a b", "it's", "$HOME", '"q"', ""];
    const { stdout } = await run({ command: "printf '[%s]\\n'", args });
    expect(stdout).toBe('[a b]\n[it\'s]\n[$HOME]\n["q"]\n[]\n');
  });

  it("runs an exe directly with its args, found on the job's PATH", async () => {
    const { run } = setup();
    const { exitCode, stdout } = await run({ exe: "printf", args: ["%s|%s", "x y", "$z"] });
    expect(exitCode).toBe(0);
    expect(stdout).toBe("x y|$z");
  });

  it("runs an executable script without a #! line with the shell, as execvp does", async () => {
    const { run } = setup();
    const dir = fx.tempDir();
    chmodSync(dir, 0o755);
    const script = join(dir, "plain-script");
    writeFileSync(script, 'echo "ran with $# args: $1"\n', { mode: 0o755 });
    const direct = await run({ exe: script, args: ["a b"] });
    expect(direct.exitCode).toBe(0);
    expect(direct.stdout).toBe("ran with 1 args: a b\n");
    const onPath = await run({ exe: "plain-script", environment: [{ name: "PATH", value: `/bin:${dir}` }] });
    expect(onPath.stdout).toBe("ran with 0 args: \n");
  });

  it("gives the job exactly its environment, plus a default PATH", async () => {
    const { run } = setup();
    const { stdout } = await run({ exe: "/usr/bin/env", environment: [{ name: "FOO", value: "bar = baz" }] });
    expect(stdout.trim().split("\n").sort()).toEqual(["FOO=bar = baz", `PATH=${DEFAULT_PATH}`]);
    const custom = await run({ command: "echo $PATH", environment: [{ name: "PATH", value: "/bin" }] });
    expect(custom.stdout).toBe("/bin\n");
  });

  it("starts in the working directory", async () => {
    const { run } = setup();
    const dir = fx.tempDir();
    expect((await run({ command: "pwd", workingDirectory: dir })).stdout).toBe(`${realpathSync(dir)}\n`);
  });

  it("inherits no file descriptor but stdin, stdout and stderr, and no ignored signal", async () => {
    const { run } = setup();
    // ls's own fd 3 is the /proc/self/fd listing it reads.
    expect((await run({ exe: "/bin/ls", args: ["/proc/self/fd"] })).stdout).toBe("0\n1\n2\n3\n");
    // The supervisor ignores HUP, INT, PIPE, TERM and XFSZ: bits 0, 1, 12, 14 and 24 of SigIgn.
    const status = await run({ exe: "/bin/grep", args: ["SigIgn", "/proc/self/status"] });
    const ignored = BigInt(`0x${/SigIgn:\s*([0-9a-f]+)/.exec(status.stdout)?.[1]}`);
    expect(ignored & 0x1005003n).toBe(0n);
  });

  it("feeds stdin from the given text, or /dev/null without it", async () => {
    const { run } = setup();
    expect((await run({ command: "cat", stdin: "hello\nworld" })).stdout).toBe("hello\nworld");
    expect((await run({ command: "cat" })).stdout).toBe("");
  });

  it("writes stdout and stderr to separate files, or one combined file", async () => {
    const { run, out } = setup();
    const script = "echo out; echo err >&2; echo out2";
    const separate = await run({ command: script });
    expect(separate.stdout).toBe("out\nout2\n");
    expect(read(separate.spec.stderrFile)).toBe("err\n");

    const both = join(out, "nested", "dir", "both.log");
    const combined = await run({ command: script, stdoutFile: both, stderrFile: both });
    expect(combined.stdout).toBe("out\nerr\nout2\n");
  });

  it("rejects launches that cannot start, with the reason, and leaves no state", async () => {
    const { runner, spec } = setup();
    await expect(runner.launch(spec({ exe: "/no/such" }))).rejects.toThrow(
      new LaunchError('exec "/no/such": No such file or directory'),
    );
    await expect(runner.launch(spec({ exe: "no-such-program" }))).rejects.toThrow(
      'exec "no-such-program": No such file or directory',
    );
    await expect(runner.launch(spec({ command: "true", workingDirectory: "/nope" }))).rejects.toThrow(
      'working directory "/nope": No such file or directory',
    );
    await expect(runner.launch(spec({}))).rejects.toBeInstanceOf(LaunchError);
    await expect(
      runner.launch(spec({ command: "true", environment: [{ name: "", value: "x" }] })),
    ).rejects.toThrow('invalid environment variable name ""');
    await expect(runner.launch(spec({ exe: "echo", args: ["a\0b"] }))).rejects.toThrow(/NUL/);
    expect(runner.known()).toEqual([]);
    expect(runner.running()).toEqual([]);
  });

  it("runs many jobs at once, each reporting its own exit code once", async () => {
    const { runner, recorder, spec } = setup();
    const specs = Array.from({ length: 12 }, (_, i) => spec({ command: `exit ${i}` }));
    await Promise.all(specs.map((s) => runner.launch(s)));
    const codes = await Promise.all(specs.map((s) => recorder.wait(s.id)));
    expect(codes).toEqual(specs.map((_, i) => i));
    await sleep(100);
    expect(recorder.calls).toHaveLength(12);
  });

  it("replaces a leftover dir of an id whose supervisor is gone, and removes the dir after the exit", async () => {
    const { runner, recorder, stateDir, spec } = setup();
    const s = spec({ command: "exit 4" });
    const dir = jobDir(stateDir, s.id);
    // A finished run's state that was never forgotten (the node died first), plus a stray file.
    mkdirSync(dir);
    writeFileSync(join(dir, "status"), JSON.stringify({ supervisorPid: 999_999_999, exitCode: 1 }));
    writeFileSync(join(dir, "stray"), "x");
    await runner.launch(s);
    expect(await recorder.wait(s.id)).toBe(4);
    runner.forget(s.id);
    expect(runner.known()).toEqual([]);
  });

  it("refuses a second launch of the same id", async () => {
    const { runner, spec } = setup();
    const s = spec({ command: "sleep 5" });
    await runner.launch(s);
    await expect(runner.launch(s)).rejects.toThrow(/already running/);
  });

  it("resolves with the pid of the running job, which leads its own process group", async () => {
    const { runner, recorder, spec } = setup();
    const s = spec({ command: "sleep 5" });
    const { pid } = await runner.launch(s);
    expect(runner.pid(s.id)).toBe(pid);
    expect(runner.running()).toEqual([s.id]);
    expect(readProcStat(pid)?.pgrp).toBe(pid);
    expect(readProcStat(pid)?.pgrp).not.toBe(readProcStat(process.pid)?.pgrp);
    expect(runner.signal(s.id, "SIGKILL")).toBe(true);
    await recorder.wait(s.id);
    expect(runner.pid(s.id)).toBeUndefined();
    expect(runner.signal(s.id, "SIGKILL")).toBe(false);
    expect(recorder.calls).toEqual([{ id: s.id, exitCode: 137 }]);
  });
});

describe("LocalRunner: signals", () => {
  it("SIGTERM stops the whole group: exit 143 and `Done` is never printed", async () => {
    const { runner, recorder, spec } = setup();
    const s = spec({ command: "sleep 20 && echo Done" });
    await runner.launch(s);
    await sleep(100);
    expect(runner.signal(s.id, "SIGTERM")).toBe(true);
    expect(await recorder.wait(s.id)).toBe(143);
    await sleep(1000);
    expect(read(s.stdoutFile)).toBe("");
  });

  it("SIGKILL gives 137", async () => {
    const { runner, recorder, spec } = setup();
    const s = spec({ command: "sleep 20" });
    await runner.launch(s);
    runner.signal(s.id, "SIGKILL");
    expect(await recorder.wait(s.id)).toBe(137);
  });

  it("SIGSTOP suspends and SIGCONT resumes, without the job counting as exited", async () => {
    const { runner, recorder, spec } = setup();
    // One process: a shell that had just forked its command (dash uses vfork) would wait in state D
    // for a child stopped before its exec, never showing T itself.
    const s = spec({ exe: "/bin/sleep", args: ["20"] });
    const { pid } = await runner.launch(s);
    const state = () => readProcStat(pid)?.state;
    expect(runner.signal(s.id, "SIGSTOP")).toBe(true);
    // A stopped process shows "T" once it is scheduled to take the signal: slow on a loaded machine.
    await waitUntil(() => state() === "T", 15_000);
    await sleep(200);
    expect(recorder.exited(s.id)).toBe(false);
    expect(runner.signal(s.id, "SIGCONT")).toBe(true);
    await waitUntil(() => state() === "S", 15_000);
    runner.signal(s.id, "SIGKILL");
    expect(await recorder.wait(s.id)).toBe(137);
  });

  it("a job killed by signal 6 exits 134", async () => {
    const { run } = setup();
    expect((await run({ command: "ulimit -c 0; kill -6 $$" })).exitCode).toBe(134);
  });
});

describe("LocalRunner: resources and users", () => {
  it("samples CPU time and memory of a busy job", async () => {
    const { runner, spec } = setup();
    const s = spec({ command: "while :; do :; done" });
    await runner.launch(s);
    await sleep(300);
    const first = await runner.sample(s.id);
    expect(first?.cpuTime).toBeGreaterThan(0);
    expect(first?.residentMemory).toBeGreaterThan(0);
    expect(first?.virtualMemory).toBeGreaterThan(0);
    await sleep(300);
    const second = await runner.sample(s.id);
    expect(second?.cpuTime).toBeGreaterThan(first?.cpuTime ?? 0);
    expect(second?.cpuPercent).toBeGreaterThan(20);
    expect(await runner.sample("unknown")).toBeUndefined();
  });

  it.skipIf(process.getuid?.() !== 0)("runs as another user with only that user's group", async () => {
    const { run } = setup();
    const outDir = fx.tempDir();
    chmodSync(outDir, 0o755); // the job opens its output as the user, so it must reach the directory
    const stdoutFile = join(outDir, "by-user", "out");
    const { exitCode } = await run({
      command: "id -u; id -g; id -G",
      runAs: { uid: 65534, gid: 65534 },
      stdoutFile,
      stderrFile: stdoutFile,
    });
    expect(exitCode).toBe(0);
    expect(readFileSync(stdoutFile, "utf8")).toBe("65534\n65534\n65534\n");
  });

  it.skipIf(process.getuid?.() !== 0)("opens output and enters directories as the job's user", async () => {
    const { runner, spec, run } = setup();
    const rootOnly = fx.tempDir();
    chmodSync(rootOnly, 0o700);
    const open = fx.tempDir();
    chmodSync(open, 0o755);
    const nobody = { uid: 65534, gid: 65534 };
    const out = join(rootOnly, "out");
    await expect(
      runner.launch(spec({ command: "true", runAs: nobody, stdoutFile: out, stderrFile: out })),
    ).rejects.toThrow(`stdout file "${out}": Permission denied`);
    const ok = join(open, "by-user", "out"); // created for and owned by the user
    await expect(
      runner.launch(
        spec({ command: "true", runAs: nobody, workingDirectory: rootOnly, stdoutFile: ok, stderrFile: ok }),
      ),
    ).rejects.toThrow(`working directory "${rootOnly}": Permission denied`);
    await expect(
      runner.launch(spec({ exe: "no-such-program", runAs: nobody, stdoutFile: ok, stderrFile: ok })),
    ).rejects.toThrow('exec "no-such-program": No such file or directory');
    // The forked path runs a script without a #! line with the shell too.
    const script = join(open, "plain-script");
    writeFileSync(script, "id -u\n", { mode: 0o755 });
    const { exitCode } = await run({ exe: script, runAs: nobody, stdoutFile: ok, stderrFile: ok });
    expect(exitCode).toBe(0);
    expect(readFileSync(ok, "utf8")).toBe("65534\n");
  });
});
