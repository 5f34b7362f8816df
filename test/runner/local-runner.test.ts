import { execFileSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { userInfo } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { LaunchError, type LaunchSpec } from "../../src/runner/local-runner.js";
import { readProcStat } from "../../src/runner/proc.js";
import { DEFAULT_PATH, jobDir } from "../../src/runner/supervisor.js";
import { hostUser, RUN_PRIVILEGED } from "../helpers/users.js";
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

  it("gives the job exactly its environment, plus its user's HOME, USER, LOGNAME, SHELL and a PATH", async () => {
    const { run } = setup();
    const { stdout } = await run({ exe: "/usr/bin/env", environment: [{ name: "FOO", value: "bar = baz" }] });
    const me = userInfo();
    expect(stdout.trim().split("\n").sort()).toEqual(
      [
        "FOO=bar = baz",
        `HOME=${me.homedir}`,
        `LOGNAME=${me.username}`,
        `PATH=${DEFAULT_PATH}`,
        `SHELL=${me.shell}`,
        `USER=${me.username}`,
      ].sort(),
    );
    const own = await run({ command: "echo $HOME", environment: [{ name: "HOME", value: "/elsewhere" }] });
    expect(own.stdout).toBe("/elsewhere\n");
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

    const both = join(out, "both.log");
    const combined = await run({ command: script, stdoutFile: both, stderrFile: both });
    expect(combined.stdout).toBe("out\nerr\nout2\n");
  });

  it("reports the output files its process opened, and its supervisor's record says the same", async () => {
    const { runner, recorder, spec } = setup();
    const s = spec({ command: "sleep 30" });
    const { outputs } = await runner.launch(s);
    const ino = (path: string) => BigInt(statSync(path).ino);
    expect(outputs.stdout).toMatchObject({ ino: ino(s.stdoutFile), created: true });
    expect(outputs.stderr).toMatchObject({ ino: ino(s.stderrFile), created: true });
    // What a restarted node reads for a job it adopts before its Running was recorded.
    expect(runner.recordedOutputs(s.id, 4242)).toEqual({ ...outputs, uid: 4242 });
    await runner.signal(s.id, "SIGKILL");
    expect(await recorder.wait(s.id)).toBe(137);
  });

  it("creates no directory for an output file: a missing one fails the launch", async () => {
    const { runner, spec, out } = setup();
    const nested = join(out, "nested", "dir", "out.log");
    await expect(
      runner.launch(spec({ command: "true", stdoutFile: nested, stderrFile: nested })),
    ).rejects.toThrow(`stdout file "${nested}": No such file or directory`);
    expect(existsSync(join(out, "nested"))).toBe(false);
  });

  it("fails a launch whose output is a FIFO without a reader at once, and never blocks on it", async () => {
    const { runner, spec, out } = setup();
    const fifo = join(out, "fifo");
    execFileSync("mkfifo", [fifo]);
    await expect(
      runner.launch(spec({ command: "true", stdoutFile: fifo, stderrFile: fifo })),
    ).rejects.toThrow(`stdout file "${fifo}": a FIFO with no reader`);
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
});

/** Lets other users pass through `dir` and its parents (temp dirs are 0700). */
function traversable(dir: string): void {
  for (let d = dir; d !== "/"; d = dirname(d)) chmodSync(d, statSync(d).mode | 0o111);
}

describe.runIf(RUN_PRIVILEGED)("LocalRunner: jobs of other users (root)", () => {
  const user = () => hostUser("lf-runner-ann", ["lf-runner-extra"]);

  /** A runner that switches users, through the launch helper or (helper: false) by forking. */
  function privileged(helper: boolean) {
    const { runner, recorder } = fx.runner(undefined, undefined, undefined, {
      switchUsers: true,
      useLaunchHelper: helper,
    });
    let n = 0;
    const spec = (fields: Partial<LaunchSpec>): LaunchSpec => ({
      id: `u-${++n}`,
      stdoutFile: "/nonexistent",
      stderrFile: "/nonexistent",
      user: user(),
      switchUser: true,
      ...fields,
    });
    return { runner, recorder, spec };
  }

  for (const helper of [true, false]) {
    const how = helper ? "launch helper" : "forked daemon";

    it(`runs with the user's uid, gid and every group of the user (${how})`, async () => {
      const { runner, recorder, spec } = privileged(helper);
      expect(runner.helperMissing).toBeUndefined();
      const u = user();
      const dir = fx.tempDir();
      chmodSync(dir, 0o777);
      const out = join(dir, "out");
      const s = spec({
        command: "id -u; id -g; id -G; echo $HOME $USER $LOGNAME $SHELL",
        stdoutFile: out,
        stderrFile: out,
      });
      const { outputs } = await runner.launch(s);
      expect(await recorder.wait(s.id)).toBe(0);
      const [uid, gid, groups, env] = readFileSync(out, "utf8").trim().split("\n");
      expect(Number(uid)).toBe(u.uid);
      expect(Number(gid)).toBe(u.gid);
      expect(groups!.split(" ").map(Number).sort()).toEqual([...u.groups].sort());
      expect(u.groups.length).toBeGreaterThan(1); // the extra group is there
      expect(env).toBe(`${u.home} ${u.name} ${u.name} ${u.shell}`);
      expect(statSync(out).uid).toBe(u.uid); // created by the job's process, as the user
      expect(outputs).toMatchObject({ uid: u.uid, stdout: { uid: u.uid, created: true } });
      expect(outputs.stdout?.ino).toBe(BigInt(statSync(out).ino));
    });

    it(`opens output and enters directories only as the user may (${how})`, async () => {
      const { runner, recorder, spec } = privileged(helper);
      const rootOnly = fx.tempDir();
      chmodSync(rootOnly, 0o700);
      const open = fx.tempDir();
      chmodSync(open, 0o777);
      const denied = join(rootOnly, "out");
      await expect(
        runner.launch(spec({ command: "true", stdoutFile: denied, stderrFile: denied })),
      ).rejects.toThrow(`stdout file "${denied}": Permission denied`);
      expect(existsSync(denied)).toBe(false);
      // Nothing is created on the job's behalf: a missing parent dir fails the job.
      const deep = join(open, "no", "such", "dir", "out");
      await expect(
        runner.launch(spec({ command: "true", stdoutFile: deep, stderrFile: deep })),
      ).rejects.toThrow(`stdout file "${deep}": No such file or directory`);
      expect(existsSync(join(open, "no"))).toBe(false);
      const ok = join(open, "out");
      await expect(
        runner.launch(spec({ command: "true", workingDirectory: rootOnly, stdoutFile: ok, stderrFile: ok })),
      ).rejects.toThrow(`working directory "${rootOnly}": Permission denied`);
      await expect(
        runner.launch(spec({ exe: "no-such-program", stdoutFile: ok, stderrFile: ok })),
      ).rejects.toThrow('exec "no-such-program": No such file or directory');
      // A script without a #! line runs with the shell, as execvp does.
      const script = join(open, "plain-script");
      writeFileSync(script, "id -u\n", { mode: 0o755 });
      const s = spec({ exe: script, stdoutFile: ok, stderrFile: ok });
      await runner.launch(s);
      expect(await recorder.wait(s.id)).toBe(0);
      expect(readFileSync(ok, "utf8")).toBe(`${user().uid}\n`);
    });

    it(`fails a launch whose output is a FIFO after 10 s, while other jobs start and end (${how})`, async () => {
      const { runner, recorder, spec } = privileged(helper);
      const dir = fx.tempDir();
      chmodSync(dir, 0o777);
      const fifo = join(dir, "fifo");
      execFileSync("mkfifo", ["-m", "666", fifo]);
      const stuck = runner.launch(spec({ command: "true", stdoutFile: fifo, stderrFile: fifo }));
      let stuckSettled = false;
      stuck.then(
        () => (stuckSettled = true),
        () => (stuckSettled = true),
      );
      const out = join(dir, "other");
      const s = spec({ command: "echo fine", stdoutFile: out, stderrFile: out });
      await runner.launch(s);
      expect(await recorder.wait(s.id)).toBe(0);
      expect(stuckSettled).toBe(false); // the other job was not queued behind the stuck launch
      await expect(stuck).rejects.toThrow(/did not start within 10 s/);
    }, 30_000);
  }

  it("creates the user's default output dir, owned by the user, mode 0700", async () => {
    const { runner, recorder, spec } = privileged(true);
    const scratch = fx.tempDir();
    traversable(scratch);
    const outputDir = join(scratch, "output", "lf-runner-ann");
    const out = join(outputDir, "job.stdout");
    const s = spec({ command: "echo hi", stdoutFile: out, stderrFile: out, outputDir });
    await runner.launch(s);
    expect(await recorder.wait(s.id)).toBe(0);
    const st = statSync(outputDir);
    expect(st.uid).toBe(user().uid);
    expect(st.mode & 0o777).toBe(0o700);
    expect(readFileSync(out, "utf8")).toBe("hi\n");
  });
});
