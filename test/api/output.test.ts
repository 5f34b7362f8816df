import { describe, expect, it } from "vitest";
import { ApiError, ErrCode } from "../../src/api/errors.js";
import { JobOutput, outputString, parseOutputText, parseOutputType } from "../../src/api/output.js";

describe("JobOutput (the Launcher's semantics)", () => {
  it("has the wire values 0, 1, 2", () => {
    expect([JobOutput.Stdout, JobOutput.Stderr, JobOutput.Both]).toEqual([0, 1, 2]);
  });

  it.each([
    [0, "stdout"],
    [1, "stderr"],
    [2, "mixed"],
    [3, "mixed"],
    [-1, "mixed"],
    [0.5, "mixed"],
  ])("String(%s) → %s", (o, text) => {
    expect(outputString(o)).toBe(text);
  });
});

describe("parseOutputText (Go UnmarshalText: strict)", () => {
  it.each([
    ["stdout", JobOutput.Stdout],
    ["stderr", JobOutput.Stderr],
    ["mixed", JobOutput.Both],
  ])("%j → %i", (text, o) => {
    expect(parseOutputText(text)).toBe(o);
  });

  it("round-trips with outputString (MarshalText)", () => {
    for (const o of [JobOutput.Stdout, JobOutput.Stderr, JobOutput.Both]) {
      expect(parseOutputText(outputString(o))).toBe(o);
    }
  });

  it.each(["both", "Stdout", "MIXED", "", "0", "stdout "])(
    "%j is rejected with Go's unquoted text",
    (text) => {
      expect(() => parseOutputText(text)).toThrow(ApiError);
      expect(() => parseOutputText(text)).toThrow(new RegExp(`^invalid output type: ${text}$`));
    },
  );
});

describe("parseOutputType (requests)", () => {
  it.each<[unknown, JobOutput]>([
    [0, JobOutput.Stdout],
    [1, JobOutput.Stderr],
    [2, JobOutput.Both],
    ["0", JobOutput.Stdout],
    ["1", JobOutput.Stderr],
    ["2", JobOutput.Both],
    ["stdout", JobOutput.Stdout],
    ["stderr", JobOutput.Stderr],
    ["both", JobOutput.Both],
    ["mixed", JobOutput.Both],
    ["BOTH", JobOutput.Both],
    [undefined, JobOutput.Both],
  ])("%j → %i", (input, o) => {
    expect(parseOutputType(input)).toBe(o);
  });

  it.each<unknown>([3, -1, 1.5, "3", "", "all", null, true, {}, 1n])(
    "%s is rejected naming outputType",
    (input) => {
      let caught: unknown;
      try {
        parseOutputType(input);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(ApiError);
      expect((caught as ApiError).code).toBe(ErrCode.InvalidRequest);
      expect((caught as ApiError).message).toMatch(/^Invalid outputType: /);
    },
  );

  it("quotes a bad string in the message", () => {
    expect(() => parseOutputType("all")).toThrow('Invalid outputType: "all"');
  });
});
