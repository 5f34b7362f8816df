// V8 heap growth for a long-running node process.
import { setFlagsFromString } from "node:v8";

/**
 * How far the old generation may grow past what survived the last full collection before the
 * next one: 30%, the factor V8 itself uses when the heap limit is small (≤ 256 MB).
 */
export const HEAP_GROWING_PERCENT = 30;

/**
 * On a machine with a few GB of RAM V8 allows a multi-GB heap and then lets the old generation
 * grow up to 4x the live heap between full collections. A node's live heap is small (~30 MB with
 * 10,000 jobs), but serving a listing of 10,000 jobs promotes tens of MB of short-lived Redis
 * replies out of the young generation; at 4x they stayed resident for minutes (RSS 122 → 190 MB
 * after a few listings). At 1.3x they are collected at once (peak ~136 MB). The flag only moves
 * the point where V8 starts a full collection; it limits nothing. Not applied when the node was
 * started with its own `--heap-growing-percent`.
 */
export function limitHeapGrowth(execArgv: readonly string[] = process.execArgv): void {
  if (execArgv.some((a) => /^--heap[-_]growing[-_]percent/.test(a))) return;
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}
