// Port helpers: fleets get consecutive ports below the ephemeral range, where outgoing connections
// (which take ports from that range) cannot grab one between the check and the bind.
import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ephemeralPortLow, findFreePortRange, isPortFree } from "../../src/topology/ports.js";

const RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range";

describe("findFreePortRange", () => {
  it("reads where the ephemeral range starts", () => {
    const expected = existsSync(RANGE_FILE)
      ? Number(readFileSync(RANGE_FILE, "utf8").trim().split(/\s+/)[0])
      : 32_768;
    expect(ephemeralPortLow()).toBe(expected);
  });

  it("gives free consecutive ports, all below the ephemeral range", async () => {
    const low = ephemeralPortLow();
    for (let i = 0; i < 40; i++) {
      const base = await findFreePortRange(3);
      expect(base).toBeGreaterThanOrEqual(20_000);
      expect(base + 2).toBeLessThan(low);
      expect(await isPortFree(base + 2)).toBe(true);
    }
  });
});
