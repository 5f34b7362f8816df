// Node restarts: jobs outlive their runner, and a new runner on the same state dir adopts them.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { LaunchSpec } from "../../src/runner/local-runner.js";
import { readProcStat } from "../../src/runner/proc.js";
import { jobAlive, jobDir, readStatus, type SupervisorStatus } from "../../src/runner/supervisor.js";
import { Fixture, sleep, waitUntil } from "./helpers.js";

const fx = new Fixture();
afterEach(() => fx.cleanup());

function spec(out: string, id: string, command: string): LaunchSpec {
  return { id, command, stdoutFile: join(out, `${id}.out`), stderrFile: join(out, `${id}.out`) };
}

function status(stateDir: string, id: string): SupervisorStatus {
  const s = readStatus(jobDir(stateDir, id));
  if (!s) throw new Error(`no status for ${id}`);
  return s;
}

describe("LocalRunner: restart safety", () => {
  it("keeps jobs running after close; a new runner learns their real exit codes", async () => {
    const a = fx.runner();
    const out = fx.tempDir();
    // Timings leave room for a loaded machine: "ends-before" must outlive runner A's close.
    await a.runner.launch(spec(out, "ends-before", "sleep 1; exit 5"));
    await a.runner.launch(spec(out, "ends-after", "sleep 3; exit 7"));
    await a.runner.launch(spec(out, "long", "sleep 30"));
    await a.runner.close(); // the node "dies"

    await waitUntil(() => readStatus(jobDir(a.stateDir, "ends-before"))?.exitCode !== undefined, 5_000); // ends while no runner watches
    const b = fx.runner(a.stateDir);
    expect(b.runner.adopt("ends-before")).toEqual({ exitCode: 5 });
    expect(b.runner.adopt("ends-after")).toBe("running");
    expect(b.runner.adopt("long")).toBe("running");
    expect(b.runner.running().sort()).toEqual(["ends-after", "long"]);
    expect(b.runner.pid("long")).toBe(status(a.stateDir, "long").pid);

    expect(await b.recorder.wait("ends-after")).toBe(7);
    expect(b.runner.signal("long", "SIGKILL")).toBe(true);
    expect(await b.recorder.wait("long")).toBe(137);
    expect(b.recorder.calls).toHaveLength(2); // nothing for the job that ended before adoption
    expect(a.recorder.calls).toEqual([]); // a closed runner reports nothing
  });

  it("runs the job in its own session, apart from the node's process group", async () => {
    const { runner, stateDir } = fx.runner();
    const { pid } = await runner.launch(spec(fx.tempDir(), "j", "sleep 5"));
    const supervisor = readProcStat(status(stateDir, "j").supervisorPid);
    const node = readProcStat(process.pid);
    expect(supervisor?.pgrp).toBe(supervisor?.pid); // setsid: a signal to the node's group misses it
    expect(supervisor?.pgrp).not.toBe(node?.pgrp);
    expect(readProcStat(pid)?.pgrp).toBe(pid);
    expect(readProcStat(pid)?.ppid).toBe(supervisor?.pid);
  });

  it("reports 137 and kills the job when its supervisor is killed; a later adopt says lost", async () => {
    const { runner, recorder, stateDir } = fx.runner();
    await runner.launch(spec(fx.tempDir(), "j", "sleep 30"));
    const before = status(stateDir, "j");
    process.kill(before.supervisorPid, "SIGKILL");
    expect(await recorder.wait("j")).toBe(137);
    await waitUntil(() => !jobAlive(before));
    // Its connection closes while the killed daemon is still exiting: wait until it is gone (or a
    // zombie), as it is by the time a restarted node adopts.
    await waitUntil(() => {
      const daemon = readProcStat(before.supervisorPid);
      return daemon === undefined || daemon.state === "Z" || daemon.state === "X";
    });
    expect(fx.runner(stateDir).runner.adopt("j")).toBe("lost");
  });

  it("polls an adopted job whose supervisor dies without a status", async () => {
    const a = fx.runner();
    await a.runner.launch(spec(fx.tempDir(), "j", "sleep 30"));
    await a.runner.close();
    const b = fx.runner(a.stateDir);
    expect(b.runner.adopt("j")).toBe("running");
    const before = status(a.stateDir, "j");
    process.kill(before.supervisorPid, "SIGKILL");
    expect(await b.recorder.wait("j")).toBe(137);
    await waitUntil(() => !jobAlive(before));
  });

  it("says lost for unknown ids; forget drops state, and stops watching a job that still runs", async () => {
    const { runner, recorder, stateDir } = fx.runner();
    expect(runner.adopt("never-launched")).toBe("lost");
    const out = fx.tempDir();
    await runner.launch(spec(out, "quick", "true"));
    await runner.launch(spec(out, "slow", "sleep 30"));
    await recorder.wait("quick");
    expect(runner.known().sort()).toEqual(["quick", "slow"]);
    runner.forget("quick");
    expect(runner.known()).toEqual(["slow"]);
    expect(runner.adopt("quick")).toBe("lost");

    const slow = status(stateDir, "slow");
    runner.forget("slow");
    expect(runner.running()).toEqual([]);
    expect(jobAlive(slow)).toBe(true); // forget never signals
    process.kill(-(slow.pid ?? 0), "SIGKILL");
    await waitUntil(() => !jobAlive(slow));
    await sleep(100);
    expect(recorder.calls.map((c) => c.id)).toEqual(["quick"]);
  });

  it("signals a recorded job that is not adopted, as long as it is verifiably the job", async () => {
    const a = fx.runner();
    await a.runner.launch(spec(fx.tempDir(), "j", "sleep 30"));
    await a.runner.close();
    const b = fx.runner(a.stateDir);
    expect(b.runner.signal("j", "SIGKILL")).toBe(true);
    await waitUntil(() => status(a.stateDir, "j").exitCode === 137);
    expect(b.runner.signal("j", "SIGKILL")).toBe(false);
    expect(b.runner.adopt("j")).toEqual({ exitCode: 137 });
  });

  it("relaunches an id over stale state, but not over a live job", async () => {
    const { runner, recorder, stateDir } = fx.runner();
    const out = fx.tempDir();
    await runner.launch(spec(out, "j", "exit 4"));
    expect(await recorder.wait("j")).toBe(4);
    await runner.launch(spec(out, "j", "sleep 30"));
    await expect(runner.launch(spec(out, "j", "true"))).rejects.toThrow('job "j" is already running');
    const other = fx.runner(stateDir).runner; // nor can another runner on the same state
    await expect(other.launch(spec(out, "j", "true"))).rejects.toThrow('job "j" is already running');
  });

  it("keeps odd job ids inside the state dir", async () => {
    const { runner, recorder, stateDir } = fx.runner();
    const id = "../x/ é.";
    await runner.launch({ ...spec(fx.tempDir(), "odd", "true"), id });
    expect(jobDir(stateDir, id).startsWith(join(stateDir, "jobs"))).toBe(true);
    expect(await recorder.wait(id)).toBe(0);
    expect(runner.known()).toEqual([id]);
  });
});
