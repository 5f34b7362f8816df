// `launcher-fleet node`: one node in the foreground. SIGTERM drains; a second signal exits at once.
import { parseArgs } from "node:util";
import { loadSettings, SECRET_FLAGS, SETTING_FLAGS, SettingsError } from "../config.js";
import { limitHeapGrowth } from "../heap.js";
import { startNode } from "../node.js";
import { advertiseIp } from "../runner/network.js";

export async function runNode(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: Object.fromEntries(SETTING_FLAGS.map((f) => [f, { type: "string" as const }])),
    strict: true,
  });
  let settings: ReturnType<typeof loadSettings>;
  try {
    settings = loadSettings(process.env, values as Record<string, string>, { advertiseIp: advertiseIp() });
  } catch (err) {
    if (err instanceof SettingsError) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    throw err;
  }
  limitHeapGrowth();
  const node = await startNode(settings);
  for (const flag of SECRET_FLAGS.filter((f) => values[f] !== undefined)) {
    node.logger.warn(
      `--${flag} was given on the command line, where every local user can read it (ps): use its _FILE setting instead`,
    );
  }
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (how: "drain" | "close") => {
      if (stopping) {
        node.logger.warn("second signal: exiting now");
        process.exit(1);
      }
      stopping = true;
      (how === "drain" ? node.drain() : node.close()).then(
        () => resolve(0),
        (err) => {
          node.logger.error({ err }, "shutdown failed");
          resolve(1);
        },
      );
    };
    process.once("SIGTERM", () => stop("drain"));
    process.once("SIGINT", () => stop("close"));
    // Drained through the API (POST /nodes/{id}/drain): the node closed itself.
    void node.closed.then(() => resolve(0));
  }).then((code) => {
    node.logger.flush?.();
    return code;
  });
}
