// `npm run bench` (quick, for CI: under 3 minutes) or `npm run bench -- --full`.
// Runs every measure in order, each with its baseline measured in the same run, prints the rows as
// they come and a final table. Targets from docs/architecture.md ("Design rules") are reported as met/missed, never enforced:
// the exit status is non-zero only when a measure could not run (it broke or timed out).
//
// Options: --full | --quick (default), --only a,b (measure names), --verbose, --json FILE.
import { writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { failure } from "./failure.js";
import { fanout } from "./fanout.js";
import { heartbeats } from "./heartbeats.js";
import {
  type Ctx,
  closeAllStacks,
  cpuPressure,
  execFileP,
  nodeFlagsInUse,
  printTable,
  type Row,
  type Shared,
  Stack,
  startShared,
  withTimeout,
} from "./lib.js";
import { listing } from "./listing.js";
import { memory } from "./memory.js";
import { placementBalance, queueLatency, queueScale } from "./placement.js";
import { privileged } from "./privileged.js";
import { routing } from "./routing.js";
import { throughput } from "./throughput.js";

const MEASURES: { name: string; run: (ctx: Ctx) => Promise<void>; quickMs: number; fullMs: number }[] = [
  { name: "routing", run: routing, quickMs: 60_000, fullMs: 300_000 },
  { name: "fanout", run: fanout, quickMs: 60_000, fullMs: 300_000 },
  { name: "heartbeats", run: heartbeats, quickMs: 90_000, fullMs: 600_000 },
  { name: "throughput", run: throughput, quickMs: 120_000, fullMs: 900_000 },
  { name: "privileged", run: privileged, quickMs: 120_000, fullMs: 600_000 },
  { name: "failure", run: failure, quickMs: 60_000, fullMs: 300_000 },
  { name: "memory", run: memory, quickMs: 90_000, fullMs: 400_000 },
  { name: "balance", run: placementBalance, quickMs: 60_000, fullMs: 180_000 },
  { name: "queue-latency", run: queueLatency, quickMs: 60_000, fullMs: 180_000 },
  { name: "queue-scale", run: queueScale, quickMs: 60_000, fullMs: 300_000 },
  { name: "listing", run: listing, quickMs: 90_000, fullMs: 900_000 },
];

function parseArgs(argv: string[]) {
  const opts = {
    full: false,
    verbose: false,
    only: undefined as string[] | undefined,
    json: undefined as string | undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--full") opts.full = true;
    else if (a === "--quick") opts.full = false;
    else if (a === "--verbose" || a === "-v") opts.verbose = true;
    else if (a === "--only") opts.only = (argv[++i] ?? "").split(",").filter(Boolean);
    else if (a.startsWith("--only=")) opts.only = a.slice(7).split(",").filter(Boolean);
    else if (a === "--json") opts.json = argv[++i];
    else if (a.startsWith("--json=")) opts.json = a.slice(7);
    else if (a === "--help" || a === "-h") {
      console.log(
        "usage: npm run bench [-- --full|--quick] [--only routing,fanout,...] [--verbose] [--json FILE]",
      );
      process.exit(0);
    } else {
      console.error(`unknown option ${a}`);
      process.exit(2);
    }
  }
  const unknown = opts.only?.filter((n) => !MEASURES.some((m) => m.name === n)) ?? [];
  if (unknown.length) {
    console.error(
      `unknown measure(s): ${unknown.join(", ")}; choose from ${MEASURES.map((m) => m.name).join(", ")}`,
    );
    process.exit(2);
  }
  return opts;
}

async function versionOf(cmd: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileP(cmd, args);
    return stdout.split("\n")[0]!.trim();
  } catch {
    return "not installed";
  }
}

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  const mode = opts.full ? "full" : "quick";
  const rows: Row[] = [];
  let sharedStack: Stack | undefined;
  let shared: Promise<Shared> | undefined;
  const ctx: Ctx = {
    mode,
    full: opts.full,
    verbose: opts.verbose,
    log: (line) => console.log(line),
    row: (r) => {
      rows.push(r);
      console.log(
        `  -> ${r.metric}: ${r.value}${r.baseline ? ` | baseline ${r.baseline}` : ""}${r.ratio ? ` | ${r.ratio}` : ""}${r.verdict ? ` | target ${r.verdict}` : ""}`,
      );
    },
    shared: () => {
      if (!shared) {
        sharedStack = new Stack("shared fleet");
        shared = startShared(sharedStack, ctx);
      }
      return shared;
    },
  };
  const started = performance.now();
  const load0 = loadavg();
  console.log(`launcher-fleet benchmarks (${mode} mode)`);
  console.log(
    `node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model ?? "?"}), load average ${load0.map((l) => l.toFixed(2)).join(" ")}; nodes run as \`node ${[...nodeFlagsInUse(), "dist/cli.js node"].join(" ")}\``,
  );
  console.log(`${await versionOf("redis-server", ["--version"])}; ${await versionOf("haproxy", ["-v"])}`);
  const psi0 = cpuPressure();
  console.log(`${psi0} (other work on this machine; 0% = idle)`);

  const broken: string[] = [];
  for (const m of MEASURES) {
    if (opts.only && !opts.only.includes(m.name)) continue;
    const t0 = performance.now();
    console.log(`\n== ${m.name}`);
    try {
      await withTimeout(m.run(ctx), opts.full ? m.fullMs : m.quickMs, m.name);
      console.log(`   (${((performance.now() - t0) / 1000).toFixed(1)} s; ${cpuPressure()})`);
    } catch (err) {
      broken.push(m.name);
      console.error(`!! ${m.name} broke: ${(err as Error).stack ?? err}`);
      rows.push({ measure: m.name, metric: "RUN BROKE", value: (err as Error).message.slice(0, 120) });
      // A timed-out measure may still hold processes: stop them (and the shared fleet, which may
      // be in any state now; the next measure that needs it starts a new one) before going on.
      await closeAllStacks();
      shared = undefined;
    }
  }

  await sharedStack?.close();
  const load1 = loadavg();
  console.log(
    `\n== results (${mode} mode, ${((performance.now() - started) / 1000).toFixed(0)} s, load average at end ${load1.map((l) => l.toFixed(2)).join(" ")}; ${cpuPressure()})\n`,
  );
  printTable(rows);
  const met = rows.filter((r) => r.verdict === "met").length;
  const missed = rows.filter((r) => r.verdict === "missed").length;
  console.log(
    `\ntargets: ${met} met, ${missed} missed${broken.length ? `; BROKEN: ${broken.join(", ")}` : ""}`,
  );
  if (opts.json) {
    writeFileSync(
      opts.json,
      `${JSON.stringify({ mode, date: new Date().toISOString(), node: process.version, nodeFlags: nodeFlagsInUse(), cpus: cpus().length, loadStart: load0, loadEnd: load1, psiStart: psi0, psiEnd: cpuPressure(), rows, broken }, null, 2)}\n`,
    );
  }
  return broken.length ? 1 : 0;
}

let interrupted = false;
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    console.error(`\n${sig}: stopping everything the benchmarks started...`);
    void closeAllStacks().finally(() => process.exit(130));
  });
}

main().then(
  async (code) => {
    await closeAllStacks();
    process.exit(code);
  },
  async (err) => {
    console.error(err);
    await closeAllStacks();
    process.exit(1);
  },
);
