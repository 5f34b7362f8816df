// How a node process is started: the one place that says which Node.js flags a node runs with.
// The Dockerfile, the systemd unit, `npm start`, the README and the plugin script carry the same flags
// (test/topology/ops-files.test.ts keeps them in step).
import { CLI_PATH } from "./paths.js";

/**
 * A 4 MB young generation (V8's own limit is 16 MB). Its scavenges then take about 1 ms each instead
 * of up to 18 ms, so status events are not held behind them, and a node listing 10,000 jobs holds about
 * 26 MB less RSS, for about 6% more CPU per listing (within the runs' spread). 2 MB costs a listing
 * about 20% more CPU.
 * docs/benchmarks.md ("Session 15") has the runs.
 */
export const NODE_FLAGS: readonly string[] = ["--max-semi-space-size=4"];

/** The argv (after `node`) that starts a node, with `flags` in place of NODE_FLAGS when given. */
export function nodeArgs(flags: readonly string[] = NODE_FLAGS): string[] {
  return [...flags, CLI_PATH, "node"];
}
