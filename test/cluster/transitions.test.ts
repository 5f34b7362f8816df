// The job lifecycle is written twice, on purpose: TRANSITIONS in src/api/status.ts (the manager and
// the docs) and NEXT in src/cluster/lua/lib.lua (the store, which enforces it atomically). This keeps
// the two equal.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { expect, it } from "vitest";
import { ALL_STATUSES, TRANSITIONS } from "../../src/api/status.js";

function luaNext(): Record<string, string[]> {
  const lua = readFileSync(join(import.meta.dirname, "../../src/cluster/lua/lib.lua"), "utf8");
  const table = /local NEXT = \{([\s\S]*?)\n\}/.exec(lua)?.[1];
  if (!table) throw new Error("no NEXT table in lib.lua");
  const out: Record<string, string[]> = {};
  for (const m of table.matchAll(/(\w+) = \{([^}]*)\}/g)) {
    out[m[1]!] = [...m[2]!.matchAll(/(\w+) = true/g)].map((x) => x[1]!).sort();
  }
  return out;
}

it("lib.lua's NEXT is TRANSITIONS", () => {
  const lua = luaNext();
  const ts = Object.fromEntries(
    ALL_STATUSES.filter((s) => TRANSITIONS[s].length > 0).map((s) => [s, [...TRANSITIONS[s]].sort()]),
  );
  expect(lua).toEqual(ts);
});
