// Optional CPU profiling of the bench's nodes over a chosen window (Node 20 refuses --cpu-prof in
// NODE_OPTIONS, and startLocalFleet starts the nodes). With BENCH_PROFILE_DIR set, bench/lib.ts starts
// every node with NODE_OPTIONS=--require <this file>; the first SIGUSR2 starts V8's sampling profiler,
// the second stops it and writes <BENCH_PROFILE_DIR>/<node id or pid>-<n>.cpuprofile (open it in
// Chrome DevTools, or sum self time per function), and beside it <...>-<n>.window.json: the window's
// garbage collections (count and pause time per kind, the longest), event-loop utilization, CPU
// time and heap, so a profile that looks slow can be told apart from a node that was collecting.
// BENCH_PROFILE_INTERVAL_US sets the sampling interval (default 200 µs); 0 records only the window's
// figures, without the profiler's own cost (at 200 µs it takes a good share of a node's CPU).
// bench/throughput.ts signals its nodes around the last fleet round, bench/fanout.ts every node around
// each phase, when BENCH_PROFILE_DIR is set.
const { Session } = require("node:inspector");
const { writeFileSync } = require("node:fs");
const { join } = require("node:path");
const { PerformanceObserver, performance, constants } = require("node:perf_hooks");

const GC_KINDS = {
  [constants.NODE_PERFORMANCE_GC_MAJOR]: "major",
  [constants.NODE_PERFORMANCE_GC_MINOR]: "minor",
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: "incremental",
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: "weakcb",
};

const dir = process.env.BENCH_PROFILE_DIR;
const intervalUs = Number(process.env.BENCH_PROFILE_INTERVAL_US ?? 200);
if (dir) {
  const session = new Session();
  session.connect();
  let window;
  let n = 0;
  const gcObserver = new PerformanceObserver((list) => {
    if (!window) return;
    for (const e of list.getEntries()) {
      const kind = GC_KINDS[e.detail?.kind] ?? String(e.detail?.kind);
      const k = window.gc[kind] ?? { count: 0, ms: 0, maxMs: 0 };
      window.gc[kind] = k;
      k.count++;
      k.ms += e.duration;
      k.maxMs = Math.max(k.maxMs, e.duration);
    }
  });
  gcObserver.observe({ entryTypes: ["gc"] });
  process.on("SIGUSR2", () => {
    if (!window) {
      window = {
        startedAt: Date.now(),
        elu: performance.eventLoopUtilization(),
        cpu: process.cpuUsage(),
        heapBefore: process.memoryUsage(),
        gc: {},
      };
      if (intervalUs > 0)
        session.post("Profiler.enable", () =>
          session.post("Profiler.setSamplingInterval", { interval: intervalUs }, () =>
            session.post("Profiler.start"),
          ),
        );
      return;
    }
    const w = window;
    window = undefined;
    const cpu = process.cpuUsage(w.cpu);
    const summary = {
      ms: Date.now() - w.startedAt,
      eventLoopUtilization: performance.eventLoopUtilization(w.elu).utilization,
      cpuMs: { user: cpu.user / 1000, system: cpu.system / 1000 },
      gc: w.gc,
      heapBefore: w.heapBefore,
      heapAfter: process.memoryUsage(),
    };
    const id = process.env.LAUNCHER_NODE_ID || String(process.pid);
    const name = `${id}-${++n}`;
    writeFileSync(join(dir, `${name}.window.json`), JSON.stringify(summary, null, 1));
    if (intervalUs > 0)
      session.post("Profiler.stop", (err, res) => {
        if (err) return;
        writeFileSync(join(dir, `${name}.cpuprofile`), JSON.stringify(res.profile));
      });
  });
}
