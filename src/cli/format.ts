// Human output for a terminal: aligned tables, key/value blocks, ages. Machine output (JSON) is
// written by the commands themselves.

/** Columns padded to their widest cell; the last column is not padded. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return `${[line(headers), ...rows.map(line)].join("\n")}\n`;
}

/** `key  value` lines, keys aligned; empty values left out. */
export function keyValues(pairs: [string, string | undefined][]): string {
  const shown = pairs.filter((p): p is [string, string] => p[1] !== undefined && p[1] !== "");
  const width = Math.max(0, ...shown.map(([k]) => k.length));
  return `${shown.map(([k, v]) => `${`${k}:`.padEnd(width + 1)}  ${v.replaceAll("\n", "\\n")}`).join("\n")}\n`;
}

/** "4s ago", "3m ago", "2h ago", "5d ago" (or "in 3s" for a clock ahead of ours). */
export function age(iso: string | undefined, now = Date.now()): string {
  if (!iso) return "";
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const s = Math.round((now - t) / 1000);
  const abs = Math.abs(s);
  const text =
    abs < 60
      ? `${abs}s`
      : abs < 3600
        ? `${Math.floor(abs / 60)}m`
        : abs < 86_400
          ? `${Math.floor(abs / 3600)}h`
          : `${Math.floor(abs / 86_400)}d`;
  return s < 0 ? `in ${text}` : `${text} ago`;
}

/** At most `max` characters, with an ellipsis when cut. */
export function clip(s: string | undefined, max: number): string {
  if (!s) return "";
  const one = s.replaceAll("\n", " ");
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}

/** HH:MM:SS of an RFC 3339 time, in local time. */
export function clock(iso: unknown): string {
  if (typeof iso !== "string") return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toTimeString().slice(0, 8);
}

export function list(v: unknown): string {
  return Array.isArray(v) ? v.map((x) => (typeof x === "string" ? x : JSON.stringify(x))).join(", ") : "";
}
