// The build's second step (after tsc): what dist/ needs besides JavaScript. Lua scripts, the
// supervisor's Python and the web console's files are copied; the launch helper (C) is compiled
// when a C compiler is there (without one, root nodes start jobs of other users by forking, which
// is slower: see src/runner/launch-helper.ts).
import { cpSync } from "node:fs";

cpSync("src/cluster/lua", "dist/cluster/lua", { recursive: true });
cpSync("src/http/console", "dist/http/console", { recursive: true });
for (const file of ["supervisor.py", "launch-as.c"]) cpSync(`src/runner/${file}`, `dist/runner/${file}`);

const { compileLaunchHelper } = await import("../dist/runner/launch-helper.js");
try {
  compileLaunchHelper("dist/runner/launch-as", "src/runner/launch-as.c");
} catch (err) {
  const why = err.stderr?.toString().trim() || err.message;
  process.stderr.write(`build: launch helper not compiled (${why}); root nodes will fork instead\n`);
}
