// Status event ids are Redis stream ids (`<ms>-<seq>`): ordered fleet-wide.
//
// Every node compares the id of every event of the fleet with its position, thousands of times a
// second, so ids are compared as digit strings (length, then text) rather than parsed to BigInts.

/** Negative, zero or positive like a comparator. Malformed ids sort first. */
export function compareEventIds(a: string, b: string): number {
  const pa = parts(a);
  const pb = parts(b);
  if (!pa || !pb) return pa ? 1 : pb ? -1 : 0;
  return compareDigits(pa[0], pb[0]) || compareDigits(pa[1], pb[1]);
}

export function isEventId(text: string): boolean {
  return parts(text) !== undefined;
}

/** `[ms, seq]` as digit strings without leading zeros (a missing seq is 0); undefined if malformed. */
function parts(id: string): [string, string] | undefined {
  const dash = id.indexOf("-");
  const ms = dash < 0 ? id : id.slice(0, dash);
  const seq = dash < 0 ? "0" : id.slice(dash + 1);
  return isDigits(ms) && isDigits(seq) ? [withoutLeadingZeros(ms), withoutLeadingZeros(seq)] : undefined;
}

function isDigits(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

function withoutLeadingZeros(s: string): string {
  let i = 0;
  while (i < s.length - 1 && s.charCodeAt(i) === 48) i++;
  return i === 0 ? s : s.slice(i);
}

/** Compares non-negative integers written without leading zeros. */
function compareDigits(a: string, b: string): number {
  if (a.length !== b.length) return a.length < b.length ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}
