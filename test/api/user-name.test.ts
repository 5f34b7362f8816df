// The token subject rule: a plausible user name is 1-256 characters with no `*`, `/`, `:`,
// whitespace or control characters.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  isPlausibleUserName,
  MAX_USER_NAME_CHARS,
  USER_NAME_FORBIDDEN,
  userNameProblem,
} from "../../src/api/index.js";

/** Every whitespace and control character JavaScript knows (`\s` and category Cc). */
const WHITESPACE_AND_CONTROL = Array.from({ length: 0x10000 }, (_, i) => String.fromCharCode(i)).filter((c) =>
  /[\s\p{Cc}]/u.test(c),
);
const FORBIDDEN = [...USER_NAME_FORBIDDEN, ...WHITESPACE_AND_CONTROL];

/** One allowed character: any code point except the forbidden ones (lone surrogates aside). */
const allowedChar = fc
  .oneof(
    fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz0123456789._-@+$\\"),
    fc.string({ unit: "grapheme", minLength: 1, maxLength: 1 }),
  )
  .filter((c) => ![...c].some((x) => FORBIDDEN.includes(x)));
const userName = fc
  .array(allowedChar, { minLength: 1, maxLength: 64 })
  .map((a) => a.join(""))
  .filter((s) => [...s].length <= MAX_USER_NAME_CHARS);
const forbiddenChar = fc.constantFrom(...FORBIDDEN);

describe("isPlausibleUserName", () => {
  it("knows the forbidden characters (sanity check of the test's own list)", () => {
    expect(WHITESPACE_AND_CONTROL).toEqual(
      expect.arrayContaining([
        " ",
        "\t",
        "\n",
        "\r",
        "\0",
        "\x7f",
        "\u0085",
        "\u00a0",
        "\u2028",
        "\u3000",
        "\ufeff",
      ]),
    );
  });

  it("accepts ordinary user names", () => {
    for (const name of [
      "alice",
      "a",
      "bob.smith",
      "svc_backup-01",
      "CORP\\carol",
      "dave@example.com",
      "ünïcødé",
      "用户",
    ]) {
      expect(isPlausibleUserName(name), name).toBe(true);
    }
  });

  it("accepts any name of allowed characters", () => {
    fc.assert(
      fc.property(userName, (name) => {
        expect(userNameProblem(name)).toBeUndefined();
        expect(isPlausibleUserName(name)).toBe(true);
      }),
    );
  });

  it("refuses a name with any forbidden character anywhere", () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 20 }),
        forbiddenChar,
        fc.string({ maxLength: 20 }),
        (before, bad, after) => {
          expect(isPlausibleUserName(before + bad + after)).toBe(false);
        },
      ),
    );
  });

  it("says which character is wrong", () => {
    fc.assert(
      fc.property(userName, forbiddenChar, userName, (before, bad, after) => {
        const problem = userNameProblem(before + bad + after);
        const code = `U+${bad.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}`;
        if ((USER_NAME_FORBIDDEN as readonly string[]).includes(bad))
          expect(problem).toBe(`it contains "${bad}"`);
        else if (/\p{Cc}/u.test(bad)) expect(problem).toBe(`it contains a control character (${code})`);
        else expect(problem).toBe(`it contains whitespace (${code})`);
      }),
    );
  });

  it("refuses each forbidden character on its own and inside a name", () => {
    for (const bad of FORBIDDEN) {
      expect(isPlausibleUserName(bad), JSON.stringify(bad)).toBe(false);
      expect(isPlausibleUserName(`al${bad}ice`), JSON.stringify(bad)).toBe(false);
    }
    expect(isPlausibleUserName("*")).toBe(false);
  });

  it("counts length in characters: 1 to 256", () => {
    expect(userNameProblem("")).toBe("it is empty");
    fc.assert(
      fc.property(allowedChar, fc.integer({ min: 1, max: 300 }), (c, n) => {
        expect(isPlausibleUserName(c.repeat(n))).toBe([...c].length * n <= MAX_USER_NAME_CHARS);
      }),
    );
    expect(isPlausibleUserName("a".repeat(256))).toBe(true);
    expect(userNameProblem("a".repeat(257))).toBe("it is longer than 256 characters");
    // 256 astral characters are 512 UTF-16 units, but 256 characters.
    expect(isPlausibleUserName("😀".repeat(256))).toBe(true);
    expect(isPlausibleUserName("😀".repeat(257))).toBe(false);
  });

  it("refuses what is not a string", () => {
    for (const v of [undefined, null, 42, ["alice"], { sub: "alice" }]) {
      expect(isPlausibleUserName(v)).toBe(false);
      expect(userNameProblem(v)).toBe("it is not a string");
    }
  });
});
