// `launcher-fleet token`: a JWT for the CLI, curl or tests. HS256 with the fleet's secret
// (LAUNCHER_AUTH_SECRET, LAUNCHER_AUTH_SECRET_FILE or --secret), or RS256/ES256 with the private
// key (--key FILE) whose public half the nodes have in LAUNCHER_AUTH_PUBLIC_KEY_FILE.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { userNameProblem } from "../api/index.js";
import { checkAuthSecret, readSettingFile, SettingsError } from "../config.js";
import { type SigningKey, signingKeyFromPem, signToken } from "../http/auth.js";

const USAGE =
  "usage: launcher-fleet token --user U [--group G]... [--ttl 1h] [--issuer I] [--audience A]\n" +
  "                            [--key PRIVATE_KEY_PEM | --secret S]\n" +
  "  HS256 secret: --secret, else LAUNCHER_AUTH_SECRET, else the file LAUNCHER_AUTH_SECRET_FILE names\n" +
  "  --issuer/--audience default to LAUNCHER_AUTH_ISSUER/LAUNCHER_AUTH_AUDIENCE";

class UsageError extends Error {}

/** What to sign with: the private key, or the HS256 secret from the flag, the environment or its file. */
function signer(values: { key?: string; secret?: string }, env: NodeJS.ProcessEnv): SigningKey | string {
  if (values.key !== undefined) {
    if (values.secret !== undefined) throw new UsageError("--key and --secret exclude each other");
    let pem: string;
    try {
      pem = readFileSync(values.key, "utf8");
    } catch (err) {
      throw new UsageError(
        `--key: cannot read "${values.key}": ${(err as NodeJS.ErrnoException).code ?? err}`,
      );
    }
    try {
      return signingKeyFromPem(pem, values.key);
    } catch (err) {
      throw new UsageError(`--key ${(err as Error).message}`);
    }
  }
  if (values.secret !== undefined) {
    process.stderr.write(
      "token: warning: --secret is visible to every local user (ps, shell history); " +
        "put the secret in a file (mode 0600) and set LAUNCHER_AUTH_SECRET_FILE instead\n",
    );
    checkAuthSecret(values.secret, "--secret");
    return values.secret;
  }
  const fromEnv = env.LAUNCHER_AUTH_SECRET || undefined;
  const file = env.LAUNCHER_AUTH_SECRET_FILE || undefined;
  if (fromEnv !== undefined && file !== undefined) {
    throw new UsageError("LAUNCHER_AUTH_SECRET and LAUNCHER_AUTH_SECRET_FILE are both set: set one");
  }
  if (fromEnv !== undefined) {
    checkAuthSecret(fromEnv);
    return fromEnv;
  }
  if (file !== undefined) {
    const secret = readSettingFile("LAUNCHER_AUTH_SECRET_FILE", file);
    checkAuthSecret(secret, "LAUNCHER_AUTH_SECRET (from LAUNCHER_AUTH_SECRET_FILE)");
    return secret;
  }
  throw new UsageError(
    "set LAUNCHER_AUTH_SECRET or LAUNCHER_AUTH_SECRET_FILE (HS256), or give --key FILE (RS256/ES256)",
  );
}

export async function runToken(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        user: { type: "string" },
        group: { type: "string", multiple: true },
        ttl: { type: "string", default: "1h" },
        secret: { type: "string" },
        key: { type: "string" },
        issuer: { type: "string" },
        audience: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
    if (values.help) {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    if (!values.user) throw new UsageError("--user is required");
    const problem = userNameProblem(values.user);
    if (problem !== undefined) {
      throw new UsageError(
        `--user must be a user name (1-256 characters, no "*", "/", ":", whitespace or control characters): ${problem}`,
      );
    }
    const issuer = values.issuer ?? (env.LAUNCHER_AUTH_ISSUER || undefined);
    const audience = values.audience ?? (env.LAUNCHER_AUTH_AUDIENCE || undefined);
    const key = signer(values, env);
    // A bare number is seconds; otherwise a duration such as 30m, 1h, 7d.
    const ttl = /^\d+$/.test(values.ttl) ? Number(values.ttl) : values.ttl;
    let token: string;
    try {
      token = await signToken(key, {
        user: values.user,
        groups: values.group ?? [],
        ttl,
        ...(issuer !== undefined ? { issuer } : {}),
        ...(audience !== undefined ? { audience } : {}),
      });
    } catch (err) {
      if (err instanceof TypeError) throw new UsageError(`--ttl "${values.ttl}": ${err.message}`);
      throw err;
    }
    process.stdout.write(`${token}\n`);
    return 0;
  } catch (err) {
    if (err instanceof UsageError || err instanceof SettingsError) {
      process.stderr.write(`token: ${err.message}\n`);
      return 2;
    }
    // parseArgs: an unknown option or a missing value.
    if ((err as NodeJS.ErrnoException).code?.startsWith("ERR_PARSE_ARGS_")) {
      process.stderr.write(`token: ${(err as Error).message}\n${USAGE}\n`);
      return 2;
    }
    throw err;
  }
}
