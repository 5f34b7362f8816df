// Status event ids are Redis stream ids (`<ms>-<seq>`): ordered fleet-wide.

/** Negative, zero or positive like a comparator. Malformed ids sort first. */
export function compareEventIds(a: string, b: string): number {
  const [am = 0n, as = 0n] = parse(a);
  const [bm = 0n, bs = 0n] = parse(b);
  if (am !== bm) return am < bm ? -1 : 1;
  if (as !== bs) return as < bs ? -1 : 1;
  return 0;
}

function parse(id: string): [bigint, bigint] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(id);
  return m ? [BigInt(m[1]!), BigInt(m[2] ?? 0)] : [-1n, -1n];
}

export function isEventId(text: string): boolean {
  return /^\d+(?:-\d+)?$/.test(text);
}
