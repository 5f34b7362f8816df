/**
 * The launch helper (launch-as.c): what a root node's supervisor daemon starts a job of another user
 * through. `npm run build` compiles it next to this module when a C compiler is there; a node
 * running from sources (tests) compiles it once into its state dir. Without one (no `cc` on the
 * host), the daemon forks instead: the same steps, about 10 ms more CPU per job.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { accessSync, constants, existsSync, readFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const SOURCE = fileURLToPath(new URL("./launch-as.c", import.meta.url));
const PREBUILT = fileURLToPath(new URL("./launch-as", import.meta.url));

/** Compiles launch-as.c into `output`; static when the host's libc allows it. Throws on failure. */
export function compileLaunchHelper(output: string, source = SOURCE): void {
  const tmp = `${output}.${process.pid}.tmp`;
  const base = ["-O2", "-Wall", "-o", tmp, source];
  try {
    execFileSync("cc", ["-static", ...base], { stdio: "pipe" });
  } catch {
    execFileSync("cc", base, { stdio: "pipe" });
  }
  renameSync(tmp, output);
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The helper's path, or why there is none. */
export function launchHelper(stateDir: string): { path: string } | { missing: string } {
  if (!existsSync(SOURCE)) return { missing: `${SOURCE} is missing` };
  if (executable(PREBUILT)) return { path: PREBUILT };
  const hash = createHash("sha256").update(readFileSync(SOURCE)).digest("hex").slice(0, 12);
  const path = join(stateDir, `launch-as-${hash}`);
  if (executable(path)) return { path };
  try {
    compileLaunchHelper(path);
    return { path };
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    return { missing: `cannot compile ${SOURCE}: ${stderr || (err as Error).message}` };
  }
}
