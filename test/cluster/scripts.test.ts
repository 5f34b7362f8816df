// The script table and the Lua headers agree, and the key prefixes the scripts build keys from are
// the keys keys.ts names: a script can neither miscount its keys nor spell a key of its own.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { fleetKeys } from "../../src/cluster/keys.js";
import { SCRIPTS } from "../../src/cluster/scripts.js";

const lua = (file: string) => readFileSync(new URL(`../../src/cluster/lua/${file}`, import.meta.url), "utf8");

describe("scripts", () => {
  it.each(Object.entries(SCRIPTS))("%s: the header names the table's KEYS, in order", (_name, script) => {
    const header = lua(script.file).split("]]")[0]!;
    const named = [...header.matchAll(/^\s*KEYS\[(\d+)\]\s+(\w+)/gm)].map((m) => [Number(m[1]), m[2]]);
    expect(named).toEqual(script.keys.map((k, i) => [i + 1, k]));
    // Every KEYS[n] the body uses is declared.
    const body = lua(script.file).slice(header.length);
    for (const m of body.matchAll(/KEYS\[(\d+)\]/g))
      expect(Number(m[1])).toBeLessThanOrEqual(script.keys.length);
  });

  it("no script spells a key: only keys.ts does", () => {
    const sources = Object.values(SCRIPTS).map(({ file }) => [
      file,
      lua(file).split("]]").slice(1).join("]]"),
    ]);
    for (const [file, body] of [...sources, ["lib.lua", lua("lib.lua")]]) {
      // A key spelt in Lua would be a quoted piece of one, like 'job:' or ':jobs'.
      const quoted = [...body!.matchAll(/'([^'\n]*)'/g)].map((m) => m[1]!);
      expect(quoted.length, file).toBeGreaterThan(0);
      expect(
        quoted.filter((q) => q.includes(":")),
        file,
      ).toEqual([]);
    }
  });

  it("a prefix for scripts and its id make the key keys.ts names", () => {
    const k = fleetKeys("fleet-x");
    expect(`${k.scriptPrefixes.job}j1`).toBe(k.job("j1"));
    expect(`${k.scriptPrefixes.node}n1`).toBe(k.node("n1"));
    expect(`${k.scriptPrefixes.jobsByUser}alice`).toBe(k.jobsByUser("alice"));
    for (const p of Object.values(k.scriptPrefixes)) expect(p.startsWith("fleet-x:")).toBe(true);
  });
});
