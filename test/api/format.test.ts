import { describe, expect, it } from "vitest";
import { goSprintf } from "../../src/api/format.js";

describe("goSprintf (Go fmt.Sprintf subset)", () => {
  it.each<{ format: string; args: unknown[]; expected: string }>([
    { format: "no verbs", args: [], expected: "no verbs" },
    { format: "%s", args: ["x"], expected: "x" },
    { format: "%v", args: ["x"], expected: "x" },
    { format: "%v", args: [3], expected: "3" },
    { format: "%v", args: [true], expected: "true" },
    { format: "%v", args: [null], expected: "<nil>" },
    { format: "%v", args: [[1, "a"]], expected: "[1 a]" },
    { format: "%v", args: [new Error("e")], expected: "e" },
    { format: "%v", args: [{ a: 1 }], expected: '{"a":1}' },
    { format: "%d", args: [42], expected: "42" },
    { format: "%d", args: [-7], expected: "-7" },
    { format: "%d", args: [10n], expected: "10" },
    { format: "%d", args: [[1, 2]], expected: "[1 2]" },
    { format: "%q", args: ['a"b'], expected: '"a\\"b"' },
    { format: "%q", args: ["line\n"], expected: '"line\\n"' },
    { format: "%q", args: [["a", "b"]], expected: '["a" "b"]' },
    { format: "%q", args: [65], expected: "'A'" },
    { format: "100%%", args: [], expected: "100%" },
    { format: "%5d|%-4s|%03d", args: [42, "ab", 7], expected: "   42|ab  |007" },
  ])("$format → $expected", ({ format, args, expected }) => {
    expect(goSprintf(format, ...args)).toBe(expected);
  });

  it("reports misuse inline like Go", () => {
    expect(goSprintf("%s and %s", "a")).toBe("a and %!s(MISSING)");
    expect(goSprintf("x", "extra", 2)).toBe("x%!(EXTRA string=extra, int=2)");
    expect(goSprintf("%d", "ten")).toBe("%!d(string=ten)");
    expect(goSprintf("%d", 1.5)).toBe("%!d(float64=1.5)");
    expect(goSprintf("%z", 1)).toBe("%!z(int=1)");
    expect(goSprintf("trailing %")).toBe("trailing %!(NOVERB)");
  });
});
