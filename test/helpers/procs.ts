// Looking at real processes through /proc, for tests of jobs, supervisors and nodes.
import { readdirSync, readFileSync } from "node:fs";

/** The state letter of /proc/<pid>/stat (R, S, T, Z, …), or undefined when the pid is gone. */
export function procState(pid: number): string | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    return text.slice(text.lastIndexOf(")") + 2).split(" ")[0];
  } catch {
    return undefined;
  }
}

/** Whether the process exists and is neither a zombie (Z) nor dead (X). */
export function alive(pid: number): boolean {
  const s = procState(pid);
  return s !== undefined && s !== "Z" && s !== "X";
}

/** Live (non-zombie) processes in process group `pgid`: the job and every descendant. */
export function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const text = readFileSync(`/proc/${name}/stat`, "utf8");
      const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
      if (Number(f[2]) === pgid && f[0] !== "Z") out.push(Number(name));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** Kills a job's process group if it is still there (cleanup for jobs orphaned on purpose). */
export function killGroup(pid: number | undefined): void {
  if (!pid) return;
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // already gone
  }
}
