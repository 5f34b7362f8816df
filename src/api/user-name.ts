/**
 * What a token's `sub` may be: a plausible user name. The API uses `*` as "every user" and user
 * names appear in Redis keys (`:`), paths (`/`) and log lines, so a subject with any of those, with
 * whitespace or control characters, or of absurd length is refused rather than interpreted.
 */

/** Longest user name accepted, in characters (Unicode code points). Exported only for test/api/user-name.test.ts (its only user outside this file). */
export const MAX_USER_NAME_CHARS = 256;

/** Characters a user name may not contain besides whitespace and control characters. Exported only for test/api/user-name.test.ts (its only user outside this file). */
export const USER_NAME_FORBIDDEN = ["*", "/", ":"] as const;

/** Any whitespace (Unicode White_Space, as `\s`) or control character (general category Cc). */
const WHITESPACE_OR_CONTROL = /[\s\p{Cc}]/u;

/** Why `name` is not a plausible user name, in words for an error message; undefined when it is. */
export function userNameProblem(name: unknown): string | undefined {
  if (typeof name !== "string") return "it is not a string";
  if (name === "") return "it is empty";
  let chars = 0;
  for (const _ of name) chars++;
  if (chars > MAX_USER_NAME_CHARS) return `it is longer than ${MAX_USER_NAME_CHARS} characters`;
  for (const c of USER_NAME_FORBIDDEN) if (name.includes(c)) return `it contains "${c}"`;
  const m = WHITESPACE_OR_CONTROL.exec(name);
  if (m) {
    const code = `U+${m[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`;
    return /\p{Cc}/u.test(m[0])
      ? `it contains a control character (${code})`
      : `it contains whitespace (${code})`;
  }
  return undefined;
}

/** 1–256 characters, none of them `*`, `/`, `:`, whitespace or a control character. */
export function isPlausibleUserName(name: unknown): name is string {
  return userNameProblem(name) === undefined;
}
