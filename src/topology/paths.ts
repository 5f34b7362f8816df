// Where the topology code finds the repository's files. This module sits two levels below the
// repository root both as source (src/topology/*.ts, under vitest) and as build output
// (dist/topology/*.js), so one relative URL serves both.
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** The built CLI that nodes run as (`npm run build` makes it). */
export const CLI_PATH = join(REPO_ROOT, "dist", "cli.js");

/** The HAProxy config shipped for compose; the loopback config is derived from it. */
export const HAPROXY_CFG_PATH = join(REPO_ROOT, "ops", "haproxy.cfg");

/** The full path of an executable found on PATH, or undefined. */
export function findOnPath(name: string, path = process.env.PATH ?? ""): string | undefined {
  for (const dir of path.split(delimiter).filter(Boolean)) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; keep looking
    }
  }
  return undefined;
}
