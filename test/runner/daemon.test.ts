// The resident supervisor daemon: one per state dir, forking and waiting for every job, restarted
// when it is gone, leaving when idle, and refusing anything but its own job dirs.
import { existsSync, readFileSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { LaunchSpec } from "../../src/runner/local-runner.js";
import { readProcStat } from "../../src/runner/proc.js";
import { jobAlive, jobDir, readStatus, SupervisorClient } from "../../src/runner/supervisor.js";
import { ExitRecorder, Fixture, sleep, waitUntil } from "./helpers.js";

const fx = new Fixture();
afterEach(() => fx.cleanup());

function spec(out: string, id: string, command: string): LaunchSpec {
  return { id, command, stdoutFile: join(out, `${id}.out`), stderrFile: join(out, `${id}.out`) };
}

/** The daemon supervising a job. */
function daemonOf(stateDir: string, id: string): number {
  return readStatus(jobDir(stateDir, id))?.supervisorPid ?? 0;
}

function alive(pid: number): boolean {
  const stat = readProcStat(pid);
  return stat !== undefined && stat.state !== "Z";
}

describe("supervisor daemon", () => {
  it("one daemon per state dir serves every runner on it and is every job's parent", async () => {
    const a = fx.runner();
    const b = fx.runner(a.stateDir);
    const out = fx.tempDir();
    // Both runners launch at once, before any daemon exists: exactly one must win.
    await Promise.all([
      ...[1, 2, 3].map((n) => a.runner.launch(spec(out, `a${n}`, "sleep 30"))),
      ...[1, 2, 3].map((n) => b.runner.launch(spec(out, `b${n}`, "sleep 30"))),
    ]);
    const ids = ["a1", "a2", "a3", "b1", "b2", "b3"];
    const daemons = new Set(ids.map((id) => daemonOf(a.stateDir, id)));
    expect(daemons.size).toBe(1);
    const [daemon = 0] = [...daemons];
    expect(daemon).not.toBe(process.pid);
    for (const id of ids)
      expect(readProcStat(readStatus(jobDir(a.stateDir, id))?.pid ?? 0)?.ppid).toBe(daemon);
    // The daemon leads its own group (setsid), apart from the node's.
    expect(readProcStat(daemon)?.pgrp).toBe(daemon);
    expect(readProcStat(daemon)?.pgrp).not.toBe(readProcStat(process.pid)?.pgrp);
  });

  it("a killed daemon's jobs end as lost (137, killed, and said so); the next launch starts a new daemon", async () => {
    const { runner, recorder, stateDir } = fx.runner();
    const out = fx.tempDir();
    await runner.launch(spec(out, "first", "sleep 30"));
    const daemon = daemonOf(stateDir, "first");
    const first = readStatus(jobDir(stateDir, "first"))!;
    process.kill(daemon, "SIGKILL");
    expect(await recorder.wait("first")).toBe(137);
    // Not a real exit: the runner says the job was lost with its supervisor.
    expect(recorder.calls.find((c) => c.id === "first")?.lost).toBe(
      `its supervisor daemon (pid ${daemon}) died before recording the job's exit; what was left of the job was killed`,
    );
    await waitUntil(() => !jobAlive(first));
    await runner.launch(spec(out, "second", "exit 6"));
    expect(await recorder.wait("second")).toBe(6);
    expect(daemonOf(stateDir, "second")).not.toBe(daemon);
  });

  it("the OOM killer spares the daemon when it may (root with CAP_SYS_RESOURCE); each job has the node's own score", async () => {
    const { runner, recorder, stateDir } = fx.runner();
    const out = fx.tempDir();
    const { pid } = await runner.launch(spec(out, "oom", "sleep 30"));
    const score = (p: number) => readFileSync(`/proc/${p}/oom_score_adj`, "utf8").trim();
    const daemon = daemonOf(stateDir, "oom");
    const mine = score(process.pid);
    // CAP_SYS_RESOURCE (bit 24) is what lowering a score takes; some containers drop it, even for root.
    const capEff = /CapEff:\s*([0-9a-f]+)/.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? "0";
    const mayProtect = process.getuid?.() === 0 && (BigInt(`0x${capEff}`) & (1n << 24n)) !== 0n;
    if (mayProtect) {
      expect(score(daemon)).toBe("-1000");
    } else {
      expect(score(daemon)).toBe(mine);
      if (process.getuid?.() === 0) {
        expect(readFileSync(join(stateDir, "supervisor.log"), "utf8")).toContain(
          "cannot protect the daemon from the OOM killer",
        );
      }
    }
    // The job never keeps the daemon's exemption.
    expect(score(pid)).toBe(String(Math.max(0, Number(mine))));
    runner.signal("oom", "SIGKILL");
    expect(await recorder.wait("oom")).toBe(137);
  });

  it("leaves when idle, or when its state dir is gone; a later launch starts it again", async () => {
    const { runner, recorder, stateDir } = fx.runner(undefined, undefined, 50, { supervisorIdleSeconds: 1 });
    const out = fx.tempDir();
    await runner.launch(spec(out, "one", "sleep 0.5"));
    const daemon = daemonOf(stateDir, "one") ?? 0;
    expect(alive(daemon)).toBe(true);
    expect(await recorder.wait("one")).toBe(0);
    await waitUntil(() => !alive(daemon), 10_000); // idle for 1 s, checked every 2 s
    await runner.launch(spec(out, "two", "exit 2"));
    expect(await recorder.wait("two")).toBe(2);

    // A state dir removed under a daemon (e.g. a test's temp dir) does not leave it running.
    const other = fx.runner();
    await other.runner.launch(spec(out, "three", "true"));
    const otherDaemon = daemonOf(other.stateDir, "three") ?? 0;
    await other.recorder.wait("three");
    await other.runner.close();
    rmSync(other.stateDir, { recursive: true, force: true });
    await waitUntil(() => !alive(otherDaemon), 10_000);
  });

  it("refuses job dirs outside its state dir", async () => {
    const { runner, stateDir } = fx.runner();
    await runner.launch(spec(fx.tempDir(), "j", "true")); // starts the daemon
    const socketPath = new SupervisorClient(stateDir).socketPath;
    expect(existsSync(socketPath)).toBe(true);
    for (const dir of [
      "/etc",
      join(stateDir, "jobs"),
      join(stateDir, "jobs", ".."),
      `${stateDir}/jobs/x/y`,
    ]) {
      const answer = await new Promise<string>((resolve, reject) => {
        let text = "";
        const conn = connect(socketPath, () => conn.write(`job 2 ${dir}\na\0`));
        conn.setEncoding("utf8");
        conn.on("data", (chunk: string) => (text += chunk));
        conn.on("close", () => resolve(text));
        conn.on("error", reject);
      });
      expect(answer).toBe("fail bad job dir\n");
    }
  });

  it("watches jobs beyond the connection limit by polling, with the same exit codes", async () => {
    const recorder = new ExitRecorder();
    const { runner } = fx.runner(undefined, recorder, 50, { maxWatchedConnections: 1 });
    const out = fx.tempDir();
    await Promise.all([1, 2, 3, 4].map((n) => runner.launch(spec(out, `j${n}`, `sleep 0.3; exit ${n}`))));
    for (const n of [1, 2, 3, 4]) expect(await recorder.wait(`j${n}`)).toBe(n);
    await sleep(100);
    expect(recorder.calls).toHaveLength(4); // each exit reported once
  });

  it("says at once that python3 is missing, and leaves no job state", async () => {
    const python = "/no/such/python3";
    const { runner, stateDir } = fx.runner(undefined, undefined, undefined, { supervisorPython: python });
    const out = fx.tempDir();
    await expect(runner.launch(spec(out, "p1", "true"))).rejects.toThrow(
      `cannot start the job supervisor: ${python}: spawn ${python} ENOENT (the job supervisor runs on python3)`,
    );
    expect(existsSync(jobDir(stateDir, "p1"))).toBe(false);
  });

  it("says clearly when the state dir is too long for a Unix socket", () => {
    expect(() => new SupervisorClient(`/tmp/${"x".repeat(120)}`)).toThrow(
      /too long for the supervisor's Unix socket/,
    );
  });
});
