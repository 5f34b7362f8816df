/**
 * A small subset of Go's `fmt.Sprintf`, enough for `api.Errorf` messages: verbs `%v %s %d %q %%`,
 * the `-` and `0` flags and a width. Misuse is reported inline the way Go does it
 * (`%!d(MISSING)`, `%!(EXTRA string=x)`, `%!z(int=1)`), so a bad format never throws.
 *
 * Deliberate leniency: `%s` formats any value like `%v` (Go would print `%!s(int=5)` for an int),
 * because JS callers routinely pass numbers for `%s`.
 */

// Go treats whatever rune follows the flags/width/precision as the verb.
const VERB = /%([-+# 0]*)(\d*)(?:\.(\d*))?([\s\S]?)/gu;

/** The Go-ish type name used in `%!verb(type=value)` diagnostics. */
function goTypeName(value: unknown): string {
  if (value === null || value === undefined) return "<nil>";
  switch (typeof value) {
    case "string":
      return "string";
    case "number":
      return Number.isInteger(value) ? "int" : "float64";
    case "bigint":
      return "int64";
    case "boolean":
      return "bool";
    case "object":
      return Array.isArray(value) ? "[]interface {}" : `*${value.constructor?.name ?? "Object"}`;
    default:
      return typeof value;
  }
}

/** Go `%v`: errors print their message, arrays print `[a b c]`, nil prints `<nil>`. */
function formatV(value: unknown): string {
  if (value === null || value === undefined) return "<nil>";
  if (typeof value === "string") return value;
  if (value instanceof Error) return value.message;
  if (Array.isArray(value)) return `[${value.map(formatV).join(" ")}]`;
  if (value instanceof Date) return value.toISOString();
  if (typeof value === "object") return formatObject(value);
  return String(value);
}

/** Objects with their own `toString` act like Go Stringers; plain data is shown as JSON. */
function formatObject(value: object): string {
  if (typeof value.toString === "function" && value.toString !== Object.prototype.toString) {
    return value.toString();
  }
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return "{...}";
  }
}

function badVerb(verb: string, value: unknown): string {
  const shown = value === null || value === undefined ? "<nil>" : `${goTypeName(value)}=${formatV(value)}`;
  return `%!${verb}(${shown})`;
}

/** Go `%d`: integers (and arrays of them, element-wise) only. */
function formatD(value: unknown): string {
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "number" && Number.isInteger(value)) return String(value);
  if (Array.isArray(value)) return `[${value.map(formatD).join(" ")}]`;
  return badVerb("d", value);
}

/** Go `%q`: double-quoted, escaped strings (JSON escaping stands in for strconv.Quote); ints are quoted runes. */
function formatQ(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (value instanceof Error) return JSON.stringify(value.message);
  if (Array.isArray(value)) return `[${value.map(formatQ).join(" ")}]`;
  if (typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= 0x10ffff) {
    return `'${String.fromCodePoint(value)}'`;
  }
  return badVerb("q", value);
}

function formatValue(verb: string, value: unknown): string {
  switch (verb) {
    case "v":
    case "s":
      return formatV(value);
    case "d":
      return formatD(value);
    case "q":
      return formatQ(value);
    default:
      return badVerb(verb, value);
  }
}

function pad(text: string, flags: string, width: string, verb: string): string {
  const size = width === "" ? 0 : Number(width);
  if (text.length >= size) return text;
  if (flags.includes("-")) return text.padEnd(size, " ");
  if (flags.includes("0") && verb === "d") {
    const sign = text.startsWith("-") ? "-" : "";
    return sign + text.slice(sign.length).padStart(size - sign.length, "0");
  }
  return text.padStart(size, " ");
}

/** Go's `%!(EXTRA type=value, ...)` suffix for unused arguments. */
function extras(args: readonly unknown[]): string {
  const shown = args.map((a) => (a === null || a === undefined ? "<nil>" : `${goTypeName(a)}=${formatV(a)}`));
  return `%!(EXTRA ${shown.join(", ")})`;
}

/** Formats like Go's `fmt.Sprintf` for the supported verbs (see module comment). */
export function goSprintf(format: string, ...args: unknown[]): string {
  let next = 0;
  const out = format.replace(VERB, (_match, flags: string, width: string, _prec, verb: string) => {
    if (verb === "%") return "%";
    if (verb === "") return "%!(NOVERB)";
    if (next >= args.length) return `%!${verb}(MISSING)`;
    const value = args[next++];
    return pad(formatValue(verb, value), flags, width, verb);
  });
  return next < args.length ? out + extras(args.slice(next)) : out;
}
