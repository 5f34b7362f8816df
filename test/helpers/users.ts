// Real host users for the privileged-mode tests (the node runs as root and switches to them).
import { execFileSync } from "node:child_process";
import type { UserAccount } from "../../src/runner/types.js";

export const IS_ROOT = process.getuid?.() === 0;

/**
 * Whether the privileged-mode tests run: as root, and always in CI, where not being root makes
 * them fail instead of being skipped (a skipped test would count as passing).
 */
export const RUN_PRIVILEGED = IS_ROOT || process.env.CI === "true";

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
}

function exists(kind: "passwd" | "group", name: string): boolean {
  try {
    run("getent", [kind, name]);
    return true;
  } catch {
    return false;
  }
}

/**
 * A host user (created with useradd when missing, with its own group and the extra groups given),
 * as NSS reports it. Names are fixed per test file, so reruns reuse them.
 */
export function hostUser(name: string, extraGroups: string[] = []): UserAccount {
  for (const group of extraGroups) if (!exists("group", group)) run("groupadd", [group]);
  if (!exists("passwd", name)) {
    const groups = extraGroups.length > 0 ? ["-G", extraGroups.join(",")] : [];
    run("useradd", [
      "--no-create-home",
      "--home-dir",
      `/home/${name}`,
      "--shell",
      "/bin/sh",
      "-U",
      ...groups,
      name,
    ]);
  }
  const [, , uid, gid, , home, shell] = run("getent", ["passwd", name]).split(":");
  const groups = run("id", ["-G", name]).split(" ").map(Number);
  return { name, uid: Number(uid), gid: Number(gid), groups, home: home ?? "", shell: shell ?? "" };
}
