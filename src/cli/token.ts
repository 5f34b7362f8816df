// `launcher-fleet token`: a JWT for the CLI, curl or tests, signed with LAUNCHER_AUTH_SECRET.
import { parseArgs } from "node:util";
import { signToken } from "../http/auth.js";

export async function runToken(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      user: { type: "string" },
      group: { type: "string", multiple: true },
      ttl: { type: "string", default: "1h" },
      secret: { type: "string" },
    },
  });
  const secret = values.secret ?? process.env.LAUNCHER_AUTH_SECRET;
  if (!values.user) {
    process.stderr.write("token: --user is required\n");
    return 2;
  }
  if (!secret) {
    process.stderr.write("token: set LAUNCHER_AUTH_SECRET (or --secret)\n");
    return 2;
  }
  const token = await signToken(secret, { user: values.user, groups: values.group ?? [], ttl: values.ttl });
  process.stdout.write(`${token}\n`);
  return 0;
}
