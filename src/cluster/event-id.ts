// Status event ids are Redis stream ids (`<ms>-<seq>`): ordered fleet-wide.
//
// Every node compares the id of every event of the fleet with its position, thousands of times a
// second, so ids are compared as digit strings (length, then text) rather than parsed to BigInts.

/** Negative, zero or positive like a comparator. Malformed ids sort first. Allocates nothing. */
export function compareEventIds(a: string, b: string): number {
  const da = dashOf(a);
  const db = dashOf(b);
  if (da === MALFORMED || db === MALFORMED) return da !== MALFORMED ? 1 : db !== MALFORMED ? -1 : 0;
  const aSeq = da < 0 ? a.length : da + 1; // no dash: seq is 0 (an empty range)
  const bSeq = db < 0 ? b.length : db + 1;
  return (
    compareNumbers(a, 0, da < 0 ? a.length : da, b, 0, db < 0 ? b.length : db) ||
    compareNumbers(a, aSeq, a.length, b, bSeq, b.length)
  );
}

export function isEventId(text: string): boolean {
  return dashOf(text) !== MALFORMED;
}

const MALFORMED = -2;

/**
 * Where the dash of a well-formed id (`<digits>` or `<digits>-<digits>`) is: its index, -1 when
 * there is none; MALFORMED otherwise.
 */
function dashOf(id: string): number {
  let dash = -1;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    if (c >= 48 && c <= 57) continue;
    if (c !== 45 || dash >= 0 || i === 0) return MALFORMED;
    dash = i;
  }
  if (id.length === 0 || dash === id.length - 1) return MALFORMED;
  return dash;
}

/** Compares the non-negative integers written in a[as, ae) and b[bs, be) (leading zeros ignored). */
function compareNumbers(a: string, as: number, ae: number, b: string, bs: number, be: number): number {
  while (as < ae && a.charCodeAt(as) === 48) as++;
  while (bs < be && b.charCodeAt(bs) === 48) bs++;
  if (ae - as !== be - bs) return ae - as < be - bs ? -1 : 1;
  for (; as < ae; as++, bs++) {
    const d = a.charCodeAt(as) - b.charCodeAt(bs);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}
