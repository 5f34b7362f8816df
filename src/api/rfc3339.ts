/**
 * Strict RFC 3339 timestamps, as Go's `time.Time` JSON decoding accepts them: `T` and `Z` upper-case,
 * `.` fractions (any length, truncated to nanoseconds), numeric offsets `±hh:mm`, and every field
 * range-checked (no Feb 30, no leap second 60). `Date.parse` is too lenient and loses
 * sub-millisecond precision, which matters for the inclusive filter bounds (Go compares in ns).
 */

/** A parsed timestamp: the exact instant (ns since the epoch) and its UTC ISO form. */
export interface Rfc3339Time {
  readonly epochNs: bigint;
  /** Milliseconds since the epoch (sub-millisecond digits dropped). */
  readonly epochMs: number;
  /** UTC form, e.g. `2024-01-02T03:04:05.000Z`; keeps up to 9 fraction digits when given more than 3. */
  readonly iso: string;
}

const PATTERN = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:(Z)|([+-])(\d{2}):(\d{2}))$/;

const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(year: number, month: number): number {
  return month === 2 && isLeap(year) ? 29 : (MONTH_DAYS[month - 1] ?? 0);
}

function isLeap(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

/** Epoch seconds for a UTC wall-clock time; `setUTCFullYear` avoids Date.UTC's 0–99 → 19xx quirk. */
function utcSeconds(y: number, mo: number, d: number, h: number, mi: number, s: number): number {
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d);
  date.setUTCHours(h, mi, s, 0);
  return date.getTime() / 1000;
}

const MIN_SECONDS = utcSeconds(0, 1, 1, 0, 0, 0);
const MAX_SECONDS = utcSeconds(9999, 12, 31, 23, 59, 59);

/** Parses a strict RFC 3339 timestamp; `undefined` when it is not one. */
export function parseRfc3339(text: string): Rfc3339Time | undefined {
  const m = PATTERN.exec(text);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo) || h > 23 || mi > 59 || s > 59) return undefined;
  let offsetSeconds = 0;
  if (m[8] === undefined) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return undefined;
    offsetSeconds = (m[9] === "-" ? -1 : 1) * (oh * 3600 + om * 60);
  }
  const fraction = (m[7] ?? "").slice(0, 9);
  const nanos = Number(fraction.padEnd(9, "0"));
  const seconds = utcSeconds(y, mo, d, h, mi, s) - offsetSeconds;
  // An offset can push the instant out of years 0000–9999, which Go cannot re-encode as JSON either.
  if (seconds < MIN_SECONDS || seconds > MAX_SECONDS) return undefined;
  const epochNs = BigInt(seconds) * 1_000_000_000n + BigInt(nanos);
  const epochMs = seconds * 1000 + Math.floor(nanos / 1_000_000);
  return { epochNs, epochMs, iso: isoString(seconds, fraction) };
}

/** UTC ISO text; the fraction is kept verbatim (≥3 digits) so no precision is lost. */
function isoString(seconds: number, fraction: string): string {
  const base = new Date(seconds * 1000).toISOString().slice(0, 19);
  return `${base}.${fraction.padEnd(3, "0")}Z`;
}
