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
