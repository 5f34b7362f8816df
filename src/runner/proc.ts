/** Reading /proc: process identity and resource usage of a job's process group. */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";

export interface ResourceUsage {
  /** CPU used between this and the previous sample, as a percentage of one core. */
  cpuPercent: number;
  /** Total CPU seconds (user + system, including reaped children) of the job's processes. */
  cpuTime: number;
  /** MB (10^6 bytes). */
  residentMemory: number;
  /** MB (10^6 bytes). */
  virtualMemory: number;
}

/** The /proc/<pid>/stat fields the runner uses (times in clock ticks, rss in pages). */
export interface ProcStat {
  pid: number;
  state: string;
  ppid: number;
  pgrp: number;
  /** Page faults so far: minor, and major (the page had to be read back from disk). */
  minflt: number;
  majflt: number;
  utime: number;
  stime: number;
  cutime: number;
  cstime: number;
  /** Ticks after boot; with the pid it identifies a process across pid reuse. */
  startTime: number;
  vsize: number;
  rss: number;
}

/** What the next sample needs to compute a CPU percentage over the interval. */
export interface CpuSnapshot {
  ticks: number;
  uptimeTicks: number;
}

function getconf(name: string, fallback: number): number {
  try {
    const value = Number(execFileSync("getconf", [name], { encoding: "utf8" }).trim());
    return Number.isInteger(value) && value > 0 ? value : fallback;
  } catch {
    return fallback;
  }
}

let clockTicksCache: number | undefined;
let pageSizeCache: number | undefined;

export function clockTicks(): number {
  clockTicksCache ??= getconf("CLK_TCK", 100);
  return clockTicksCache;
}

export function pageSize(): number {
  pageSizeCache ??= getconf("PAGESIZE", 4096);
  return pageSizeCache;
}

/**
 * Parses a stat line. The command name (field 2) may contain spaces and parentheses, so the
 * numeric fields are taken from after the LAST ')'.
 * Exported only for test/runner/misc.test.ts (its only user outside this file).
 */
export function parseProcStat(text: string): ProcStat | undefined {
  const close = text.lastIndexOf(")");
  if (close < 0) return undefined;
  const f = text.slice(close + 2).split(" ");
  // f[0] is field 3 (state), so field n is f[n - 3].
  const num = (field: number): number => Number(f[field - 3]);
  const stat: ProcStat = {
    pid: Number.parseInt(text, 10),
    state: f[0] ?? "",
    ppid: num(4),
    pgrp: num(5),
    minflt: num(10),
    majflt: num(12),
    utime: num(14),
    stime: num(15),
    cutime: num(16),
    cstime: num(17),
    startTime: num(22),
    vsize: num(23),
    rss: num(24),
  };
  return Number.isFinite(stat.rss) ? stat : undefined;
}

export function readProcStat(pid: number): ProcStat | undefined {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return undefined;
  }
}

async function readProcStatAsync(pid: string): Promise<ProcStat | undefined> {
  try {
    return parseProcStat(await readFile(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return undefined; // the process exited while we were scanning
  }
}

/** The argv of a live process; empty for zombies and vanished pids. */
export function readCmdline(pid: number): string[] {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    return raw === "" ? [] : raw.replace(/\0$/, "").split("\0");
  } catch {
    return [];
  }
}

/** Every process in the group: the job and all descendants that did not move to a new group. */
export async function processGroupMembers(pgid: number): Promise<ProcStat[]> {
  const pids = (await readdir("/proc")).filter((name) => /^\d+$/.test(name));
  const stats = await Promise.all(pids.map(readProcStatAsync));
  return stats.filter((s): s is ProcStat => s !== undefined && s.pgrp === pgid);
}

async function uptimeTicks(): Promise<number> {
  const seconds = Number.parseFloat(await readFile("/proc/uptime", "utf8"));
  return seconds * clockTicks();
}

/**
 * Samples a job's process group. Without a previous snapshot the CPU percentage is averaged over the
 * group leader's lifetime. Returns undefined when no process of the group is left.
 */
export async function sampleProcessGroup(
  pgid: number,
  previous?: CpuSnapshot,
): Promise<{ usage: ResourceUsage; snapshot: CpuSnapshot } | undefined> {
  const [members, now] = await Promise.all([processGroupMembers(pgid), uptimeTicks()]);
  if (members.length === 0) return undefined;
  let ticks = 0;
  let rssPages = 0;
  let vsize = 0;
  for (const p of members) {
    ticks += p.utime + p.stime + p.cutime + p.cstime;
    rssPages += p.rss;
    vsize += p.vsize;
  }
  const snapshot = { ticks, uptimeTicks: now };
  return {
    usage: {
      cpuPercent: cpuPercent(
        snapshot,
        previous,
        members.find((p) => p.pid === pgid),
      ),
      cpuTime: ticks / clockTicks(),
      residentMemory: (rssPages * pageSize()) / 1e6,
      virtualMemory: vsize / 1e6,
    },
    snapshot,
  };
}

function cpuPercent(
  now: CpuSnapshot,
  previous: CpuSnapshot | undefined,
  leader: ProcStat | undefined,
): number {
  const base = previous ?? (leader ? { ticks: 0, uptimeTicks: leader.startTime } : undefined);
  if (!base) return 0;
  const wall = now.uptimeTicks - base.uptimeTicks;
  // A member that exits before its parent reaps it takes its ticks along, so the sum can shrink.
  const used = Math.max(0, now.ticks - base.ticks);
  return wall > 0 ? (used / wall) * 100 : 0;
}
