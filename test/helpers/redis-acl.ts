// The shipped Redis ACL (ops/redis-acl.sh) for tests and the failover harness: generated with fresh
// random passwords, written to a file for `redis-server --aclfile`.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../../src/topology/index.js";

export const ACL_SCRIPT = join(REPO_ROOT, "ops", "redis-acl.sh");

export interface AclPasswords {
  launcher: string;
  admin: string;
  replication?: string;
  sentinel?: string;
}

export interface FleetAcl {
  /** The ACL file's text. */
  text: string;
  /** The nodes' user (default `launcher`) and the passwords of every user. */
  user: string;
  passwords: AclPasswords;
  /** The `+command` list of the nodes' user, lowercase, without the `+` (e.g. `client|setname`). */
  commands: string[];
}

export function randomPassword(): string {
  return randomBytes(24).toString("hex");
}

/** Runs ops/redis-acl.sh for `prefix`; the replication and Sentinel users only when asked for. */
export function fleetAcl(
  prefix: string,
  opts: { user?: string; replication?: boolean; sentinel?: boolean } = {},
): FleetAcl {
  const passwords: AclPasswords = {
    launcher: randomPassword(),
    admin: randomPassword(),
    ...(opts.replication ? { replication: randomPassword() } : {}),
    ...(opts.sentinel ? { sentinel: randomPassword() } : {}),
  };
  const user = opts.user ?? "launcher";
  const text = execFileSync("sh", [ACL_SCRIPT, prefix, ...(opts.user ? [opts.user] : [])], {
    encoding: "utf8",
    env: {
      PATH: process.env.PATH,
      REDIS_LAUNCHER_PASSWORD: passwords.launcher,
      REDIS_ADMIN_PASSWORD: passwords.admin,
      ...(passwords.replication ? { REDIS_REPLICATION_PASSWORD: passwords.replication } : {}),
      ...(passwords.sentinel ? { REDIS_SENTINEL_PASSWORD: passwords.sentinel } : {}),
    },
  });
  const line = text.split("\n").find((l) => l.startsWith(`user ${user} `));
  if (!line) throw new Error(`ops/redis-acl.sh printed no user ${user}:\n${text}`);
  const commands = line
    .split(" ")
    .filter((w) => w.startsWith("+"))
    .map((w) => w.slice(1).toLowerCase());
  return { text, user, passwords, commands };
}

/** Writes the ACL to `<dir>/users.acl` (mode 600) and returns the path. */
export function writeAclFile(acl: FleetAcl, dir: string): string {
  const path = join(dir, "users.acl");
  writeFileSync(path, acl.text, { mode: 0o600 });
  return path;
}

/** `redis://<user>:<password>@host:port` for the nodes' user. */
export function aclRedisUrl(acl: FleetAcl, host: string, port: number): string {
  return `redis://${encodeURIComponent(acl.user)}:${encodeURIComponent(acl.passwords.launcher)}@${host}:${port}`;
}
