import { readFileSync } from "node:fs";
import type { RunAs } from "./types.js";

export interface UserInfo {
  uid: number;
  gid: number;
  home: string;
}

/** Parses passwd(5) lines `name:password:uid:gid:gecos:home:shell`; malformed lines are skipped. */
export function findInPasswd(text: string, name: string): UserInfo | undefined {
  for (const line of text.split("\n")) {
    const fields = line.split(":");
    if (fields.length < 7 || fields[0] !== name) continue;
    const uid = Number(fields[2]);
    const gid = Number(fields[3]);
    if (!Number.isInteger(uid) || !Number.isInteger(gid) || fields[2] === "" || fields[3] === "") continue;
    return { uid, gid, home: fields[5] ?? "" };
  }
  return undefined;
}

/**
 * Looks a user up in /etc/passwd only (no getent/NSS: users from LDAP or similar are not found,
 * which the Local plugin's deployments do not rely on).
 */
export function lookupUser(name: string, passwdFile = "/etc/passwd"): UserInfo | undefined {
  let text: string;
  try {
    text = readFileSync(passwdFile, "utf8");
  } catch {
    return undefined;
  }
  return findInPasswd(text, name);
}

/**
 * The ids a job of `user` should run as. Only a root node can switch users, so this returns
 * undefined (the job runs as the node's own user) when the node is not root, when the user is
 * unknown, or when the user is root itself (nothing to switch).
 */
export function runAsFor(user: string): RunAs | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const info = lookupUser(user);
  if (!info || info.uid === 0) return undefined;
  return { uid: info.uid, gid: info.gid };
}
