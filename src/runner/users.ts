// Who a job runs as: OS users from the host's user database, looked up by the supervisor daemon
// (NSS: LDAP/SSSD users count) and remembered for a while, since every submission asks.
import { userInfo } from "node:os";
import type { UserAccount } from "./types.js";

/** A lookup's answer is kept this long; an unknown user only briefly (it may be created soon). */
const KNOWN_TTL_MS = 60_000;
const UNKNOWN_TTL_MS = 2_000;
const MAX_ENTRIES = 10_000;

export type UserLookup = (name: string) => Promise<UserAccount | undefined>;

/** A bounded cache in front of a user lookup; concurrent asks for one name share one lookup. */
export class UserDirectory {
  private readonly entries = new Map<
    string,
    { account: Promise<UserAccount | undefined>; expiresAtMs: number }
  >();

  constructor(private readonly lookup: UserLookup) {}

  get(name: string): Promise<UserAccount | undefined> {
    const now = Date.now();
    const entry = this.entries.get(name);
    if (entry && entry.expiresAtMs > now) return entry.account;
    const account = this.lookup(name);
    if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value as string);
    const stored = { account, expiresAtMs: now + KNOWN_TTL_MS };
    this.entries.set(name, stored);
    account.then(
      (found) => {
        if (!found) stored.expiresAtMs = Date.now() + UNKNOWN_TTL_MS;
      },
      () => this.entries.delete(name), // a failed lookup is not an answer: ask again next time
    );
    return account;
  }
}

/** The node's own user: whom every job runs as in unprivileged mode. */
export function nodeAccount(): UserAccount {
  const me = userInfo();
  return {
    name: me.username,
    uid: me.uid,
    gid: me.gid,
    groups: process.getgroups?.() ?? [me.gid],
    home: me.homedir,
    shell: me.shell ?? "/bin/sh",
  };
}
