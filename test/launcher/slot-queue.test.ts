import { describe, expect, it } from "vitest";
import { SlotQueue } from "../../src/launcher/slot-queue.js";

describe("SlotQueue", () => {
  it("hands out jobs oldest first while slots are free, counting what it handed out as busy", () => {
    let busy = 0;
    const q = new SlotQueue(2, () => busy);
    q.push("a", "b", "c");
    expect(q.next()).toBe("a");
    busy++;
    expect(q.next()).toBe("b");
    busy++;
    expect(q.next()).toBeUndefined(); // both slots taken
    busy--;
    expect(q.next()).toBe("c");
    expect(q.next()).toBeUndefined(); // empty
  });

  it("has no limit at 0, and forgets a canceled job", () => {
    const q = new SlotQueue(0, () => 1_000);
    q.push("a", "b");
    expect(q.remove("a")).toBe(true);
    expect(q.remove("a")).toBe(false);
    expect(q.next()).toBe("b");
  });
});
