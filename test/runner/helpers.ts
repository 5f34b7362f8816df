// Shared fixtures for the runner tests: temp dirs, runners that are cleaned up, exit recording.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LocalRunner, type LocalRunnerOptions } from "../../src/runner/local-runner.js";
import {
  jobAlive,
  jobDir,
  readStatus,
  recordedJobIds,
  type SupervisorStatus,
  supervisorAlive,
} from "../../src/runner/supervisor.js";
import type { RunnerCallbacks } from "../../src/runner/types.js";

/** Collects onExit calls and lets tests await them. */
export class ExitRecorder implements RunnerCallbacks {
  readonly calls: { id: string; exitCode: number; lost?: string }[] = [];
  private readonly waiters = new Map<string, (code: number) => void>();

  onExit(id: string, exitCode: number, lost?: string): void {
    this.calls.push({ id, exitCode, ...(lost ? { lost } : {}) });
    this.waiters.get(id)?.(exitCode);
  }

  exited(id: string): boolean {
    return this.calls.some((c) => c.id === id);
  }

  wait(id: string, timeoutMs = 5000): Promise<number> {
    const seen = this.calls.find((c) => c.id === id);
    if (seen) return Promise.resolve(seen.exitCode);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no exit for ${id} within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.waiters.set(id, (code) => {
        clearTimeout(timer);
        resolve(code);
      });
    });
  }
}

export async function waitUntil(check: () => boolean, timeoutMs = 3000, stepMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

export { setTimeout as sleep } from "node:timers/promises";

export function read(path: string): string {
  return readFileSync(path, "utf8");
}

/**
 * Temp dirs and runners for one test; cleanup() closes the runners, kills every job still alive in
 * any state dir (whoever launched it) and removes the dirs.
 */
export class Fixture {
  private readonly dirs: string[] = [];
  private readonly stateDirs: string[] = [];
  private readonly runners: LocalRunner[] = [];

  tempDir(): string {
    const dir = mkdtempSync(join(tmpdir(), "runner-test-"));
    this.dirs.push(dir);
    return dir;
  }

  runner(
    stateDir = join(this.tempDir(), "state"),
    recorder = new ExitRecorder(),
    pollMs = 50,
    opts: Partial<LocalRunnerOptions> = {},
  ) {
    const runner = new LocalRunner({ stateDir, callbacks: recorder, pollMs, ...opts });
    this.runners.push(runner);
    this.stateDirs.push(stateDir);
    return { runner, recorder, stateDir };
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.runners.map((r) => r.close()));
    const pending: { status: SupervisorStatus; dir: string }[] = [];
    for (const stateDir of this.stateDirs) {
      for (const id of recordedJobIds(stateDir)) {
        const dir = jobDir(stateDir, id);
        const status = readStatus(dir);
        if (!status) continue;
        if (status.pid !== undefined && jobAlive(status)) process.kill(-status.pid, "SIGKILL");
        pending.push({ status, dir });
      }
    }
    // Let the supervisor record the last exits before the directories go (the daemon then leaves
    // by itself: its socket is gone and it has no job left).
    const recorded = (p: { status: SupervisorStatus; dir: string }): boolean =>
      readStatus(p.dir)?.exitCode !== undefined || !supervisorAlive(p.status, p.dir);
    await waitUntil(() => pending.every(recorded), 10_000);
    for (const dir of this.dirs) rmSync(dir, { recursive: true, force: true });
  }
}
