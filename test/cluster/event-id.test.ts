import { describe, expect, it } from "vitest";
import { compareEventIds, isEventId } from "../../src/cluster/event-id.js";

describe("event ids", () => {
  it("order by time, then sequence, numerically", () => {
    const ids = ["0-0", "9-5", "10-0", "10-1", "10-10", "99-0", "1700000000000-2", "1700000000001-0"];
    expect([...ids].reverse().sort(compareEventIds)).toEqual(ids);
    expect(compareEventIds("10-1", "10-1")).toBe(0);
  });

  it("compare exactly beyond 2^53 and ignore leading zeros", () => {
    expect(compareEventIds("9007199254740993-0", "9007199254740992-0")).toBe(1);
    expect(compareEventIds("007-01", "7-1")).toBe(0);
    expect(compareEventIds("5", "5-0")).toBe(0);
    expect(compareEventIds("5", "5-1")).toBe(-1);
  });

  it("agree with a BigInt reading of the ids on thousands of random pairs", () => {
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const digits = () =>
      "0".repeat(rand(3)) + String(rand(4) === 0 ? rand(3) : rand(10 ** 6) * 10 ** rand(12));
    const id = () => (rand(5) === 0 ? digits() : `${digits()}-${digits()}`);
    const reference = (x: string, y: string) => {
      const [xm, xs = "0"] = x.split("-").map(BigInt) as [bigint, bigint?];
      const [ym, ys = "0"] = y.split("-").map(BigInt) as [bigint, bigint?];
      const d = xm === ym ? BigInt(xs) - BigInt(ys) : xm - ym;
      return d < 0n ? -1 : d > 0n ? 1 : 0;
    };
    for (let i = 0; i < 5_000; i++) {
      const [x, y] = [id(), id()];
      expect([x, y, compareEventIds(x, y)]).toEqual([x, y, reference(x, y)]);
    }
  });

  it("sort malformed ids first and recognise well-formed ones", () => {
    expect(compareEventIds("", "0-0")).toBe(-1);
    expect(compareEventIds("1-x", "0-0")).toBe(-1);
    expect(compareEventIds("0-0", "-1")).toBe(1);
    expect(compareEventIds("junk", "also junk")).toBe(0);
    for (const ok of ["0", "0-0", "1700000000000-12"]) expect(isEventId(ok)).toBe(true);
    for (const bad of ["", "-", "1-", "-1", "1-2-3", "1.5-0", " 1-0", "1-0 ", "a-b"])
      expect(isEventId(bad)).toBe(false);
  });
});
