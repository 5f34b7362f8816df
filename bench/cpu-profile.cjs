// Optional CPU profiling of the bench's nodes over a chosen window (Node 20 refuses --cpu-prof in
// NODE_OPTIONS, and startLocalFleet starts the nodes). With BENCH_PROFILE_DIR set, bench/lib.ts starts
// every node with NODE_OPTIONS=--require <this file>; the first SIGUSR2 starts V8's sampling profiler,
// the second stops it and writes <BENCH_PROFILE_DIR>/<node id or pid>-<n>.cpuprofile (open it in
// Chrome DevTools, or sum self time per function). bench/throughput.ts signals its nodes around the
// last fleet round when BENCH_PROFILE_DIR is set.
const { Session } = require("node:inspector");
const { writeFileSync } = require("node:fs");
const { join } = require("node:path");

const dir = process.env.BENCH_PROFILE_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  let running = false;
  let n = 0;
  process.on("SIGUSR2", () => {
    if (!running) {
      running = true;
      session.post("Profiler.enable", () =>
        session.post("Profiler.setSamplingInterval", { interval: 200 }, () => session.post("Profiler.start")),
      );
      return;
    }
    running = false;
    session.post("Profiler.stop", (err, res) => {
      if (err) return;
      const id = process.env.LAUNCHER_NODE_ID || String(process.pid);
      writeFileSync(join(dir, `${id}-${++n}.cpuprofile`), JSON.stringify(res.profile));
    });
  });
}
