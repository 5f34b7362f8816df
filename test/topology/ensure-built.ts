// The topology tests run nodes from dist/ (real processes, as in production), so dist must match
// src. Builds when dist/cli.js is missing or older than any source file, under a lock so that
// test files running in parallel do not run tsc over each other.
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { CLI_PATH, REPO_ROOT } from "../../src/topology/index.js";

const SRC = join(REPO_ROOT, "src");
const LOCK = join(REPO_ROOT, "dist", ".build-lock");
const TSC = join(REPO_ROOT, "node_modules", "typescript", "bin", "tsc");
/** A lock older than this was left by a killed run. */
const STALE_LOCK_MS = 5 * 60_000;

function newestSourceMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSourceMtime(path));
    else newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

function isFresh(): boolean {
  return existsSync(CLI_PATH) && statSync(CLI_PATH).mtimeMs >= newestSourceMtime(SRC);
}

/** mkdir is atomic: whoever creates the directory holds the lock. */
async function withLock(fn: () => Promise<void>): Promise<void> {
  mkdirSync(join(LOCK, ".."), { recursive: true });
  for (;;) {
    try {
      mkdirSync(LOCK);
      break;
    } catch {
      const held = statSync(LOCK, { throwIfNoEntry: false });
      if (held && Date.now() - held.mtimeMs > STALE_LOCK_MS) rmSync(LOCK, { recursive: true, force: true });
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    await fn();
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}

export async function ensureBuilt(): Promise<void> {
  if (isFresh()) return;
  await withLock(async () => {
    if (isFresh()) return; // built by another test file while we waited
    try {
      await promisify(execFile)(process.execPath, [TSC, "-p", "tsconfig.build.json"], { cwd: REPO_ROOT });
    } catch (err) {
      // tsc emits despite type errors elsewhere; typecheck is CI's separate step. Only a build
      // that produced nothing usable stops the topology tests.
      if (!isFresh()) throw err;
      console.warn(
        `ensureBuilt: tsc reported errors, using its output:\n${(err as { stdout?: string }).stdout}`,
      );
    }
  });
}
