// Child-process nodes run the built CLI; build once per test run when dist is older than src.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

function newest(dir: string): number {
  let t = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    t = Math.max(t, entry.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

export function ensureBuilt(root = process.cwd()): void {
  const cli = join(root, "dist", "cli.js");
  if (existsSync(cli) && statSync(cli).mtimeMs >= newest(join(root, "src"))) return;
  execFileSync("npm", ["run", "build", "--silent"], { cwd: root, stdio: "inherit" });
}
