// `launcher-fleet fleet`: a working local fleet for newcomers (filled in by the ops work).
export async function runFleet(_argv: string[]): Promise<number> {
  process.stderr.write("fleet: not available yet\n");
  return 1;
}
