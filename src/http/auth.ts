// Bearer-JWT authentication (API.md "Authentication"). Every route needs a token except the
// public ones (health, metrics, docs); the verified identity is `request.caller`.
import { createPublicKey } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import { type JWTPayload, type JWTVerifyGetKey, errors as joseErrors, jwtVerify, SignJWT } from "jose";
import { ErrCode } from "../api/index.js";
import type { Settings } from "../config.js";
import { sendError } from "./errors.js";
import type { Caller } from "./service.js";

declare module "fastify" {
  interface FastifyRequest {
    /** The verified caller. Set on every authenticated route (not on public ones). */
    caller: Caller;
  }
  interface FastifyContextConfig {
    /** No token needed (health, metrics). */
    public?: boolean;
  }
}

/** Tolerated clock difference between the token issuer and this node. */
const CLOCK_TOLERANCE_S = 5;

/** A failed authentication; always answered with 401 and code InvalidRequest. */
export class AuthError extends Error {}

export interface TokenVerifier {
  verify(token: string): Promise<Caller>;
}

/** What a token may be signed with, from the settings: an HS256 secret, a public key, or both. */
async function loadKeys(settings: Settings): Promise<{ algorithms: string[]; getKey: JWTVerifyGetKey }> {
  const secret = settings.authSecret ? new TextEncoder().encode(settings.authSecret) : undefined;
  let publicKey: { alg: string; key: ReturnType<typeof createPublicKey> } | undefined;
  if (settings.authPublicKeyFile) {
    const pem = await readFile(settings.authPublicKeyFile, "utf8");
    publicKey = { key: createPublicKey(pem), alg: "" };
    publicKey.alg = algorithmFor(publicKey.key, settings.authPublicKeyFile);
  }
  const algorithms = [...(publicKey ? [publicKey.alg] : []), ...(secret ? ["HS256"] : [])];
  if (algorithms.length === 0) {
    throw new Error("authentication needs LAUNCHER_AUTH_SECRET or LAUNCHER_AUTH_PUBLIC_KEY_FILE");
  }
  // The key is chosen by the token's `alg`, and `algorithms` is an allow-list checked first, so an
  // RS256 public key can never be (mis)used as an HS256 secret.
  const getKey: JWTVerifyGetKey = (header) => {
    if (header.alg === "HS256" && secret) return secret;
    if (publicKey && header.alg === publicKey.alg) return publicKey.key;
    throw new AuthError(`Invalid token: algorithm ${header.alg ?? "(none)"} is not accepted`);
  };
  return { algorithms, getKey };
}

/** RS256 for RSA keys, ES256 for P-256 keys; anything else is a configuration error. */
function algorithmFor(key: ReturnType<typeof createPublicKey>, file: string): string {
  if (key.asymmetricKeyType === "rsa") return "RS256";
  if (key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1") return "ES256";
  throw new Error(`${file}: only RSA (RS256) and P-256 EC (ES256) public keys are supported`);
}

function callerFrom(payload: JWTPayload, adminGroup: string): Caller {
  if (typeof payload.sub !== "string" || payload.sub === "") {
    throw new AuthError('Invalid token: the "sub" claim must be a non-empty string');
  }
  const groups = payload.groups ?? [];
  if (!Array.isArray(groups) || !groups.every((g): g is string => typeof g === "string")) {
    throw new AuthError('Invalid token: the "groups" claim must be an array of strings');
  }
  return { user: payload.sub, groups, admin: groups.includes(adminGroup) };
}

function authMessage(err: unknown): string {
  if (err instanceof AuthError) return err.message;
  if (err instanceof joseErrors.JWTExpired) return "Token expired";
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return "Invalid token: bad signature";
  if (err instanceof joseErrors.JOSEError) return `Invalid token: ${err.message}`;
  return "Invalid token";
}

/**
 * Verified tokens, until they expire: a signature check costs ~70 µs and a client (or a peer
 * forwarding for it) sends the same token over and over. Bounded; the oldest entry goes first.
 */
class VerifiedTokens {
  private readonly entries = new Map<string, { caller: Caller; expiresAtMs: number }>();

  constructor(private readonly maxEntries: number) {}

  get(token: string): Caller | undefined {
    const entry = this.entries.get(token);
    if (!entry) return undefined;
    if (entry.expiresAtMs > Date.now()) return entry.caller;
    this.entries.delete(token);
    return undefined;
  }

  set(token: string, caller: Caller, expSeconds: number): void {
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(token, { caller, expiresAtMs: (expSeconds + CLOCK_TOLERANCE_S) * 1000 });
  }
}

/** Builds the verifier for the configured keys (reads the public key file once). */
export async function createVerifier(settings: Settings): Promise<TokenVerifier> {
  const { algorithms, getKey } = await loadKeys(settings);
  const verified = new VerifiedTokens(10_000);
  return {
    async verify(token) {
      const known = verified.get(token);
      if (known) return known;
      try {
        const { payload } = await jwtVerify(token, getKey, {
          algorithms,
          requiredClaims: ["sub", "exp"],
          clockTolerance: CLOCK_TOLERANCE_S,
        });
        const caller = Object.freeze(callerFrom(payload, settings.adminGroup));
        verified.set(token, caller, payload.exp!);
        return caller;
      } catch (err) {
        throw new AuthError(authMessage(err));
      }
    },
  };
}

/** The token from `Authorization: Bearer <JWT>`, or an AuthError saying what is wrong. */
export function bearerToken(request: FastifyRequest): string {
  const header = request.headers.authorization;
  if (!header) throw new AuthError("Missing bearer token: send Authorization: Bearer <JWT>");
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) throw new AuthError("Invalid Authorization header: expected Bearer <JWT>");
  return match[1]!;
}

/** Routes that never need a token: flagged `config.public`, or served under /docs. */
function isPublic(request: FastifyRequest): boolean {
  if (request.routeOptions.config.public === true) return true;
  const url = request.routeOptions.url;
  return url === "/docs" || url?.startsWith("/docs/") === true;
}

export interface AuthPluginOptions {
  settings: Settings;
}

export const authPlugin = fp<AuthPluginOptions>(
  async (app, { settings }) => {
    app.decorateRequest("caller", null as unknown as Caller);

    if (settings.authDisabled) {
      app.log.warn("LAUNCHER_AUTH_DISABLED is set: authentication is off and every request acts as admin *");
      const admin: Caller = Object.freeze({ user: "*", groups: [settings.adminGroup], admin: true });
      app.addHook("onRequest", async (request) => {
        request.caller = admin;
      });
      return;
    }

    const verifier = await createVerifier(settings);
    app.addHook("onRequest", async (request, reply) => {
      // Unknown routes answer 404 whoever asks; public routes need no identity.
      if (request.is404 || isPublic(request)) return;
      try {
        request.caller = await verifier.verify(bearerToken(request));
      } catch (err) {
        const message = err instanceof AuthError ? err.message : "Invalid token";
        reply.header("www-authenticate", 'Bearer realm="launcher"');
        return sendError(reply, 401, ErrCode.InvalidRequest, message);
      }
    });
  },
  { name: "launcher-auth", fastify: "5.x" },
);

export interface TokenOptions {
  user: string;
  groups?: string[];
  /** Lifetime: seconds, or a jose duration such as `"1h"`, `"30m"`, `"7d"`. Default 1 hour. */
  ttl?: number | string;
}

/**
 * Signs an HS256 token with `settings.authSecret` — or with a secret given directly — for the
 * CLI's `token` command and tests.
 */
export async function signToken(
  settingsOrSecret: Pick<Settings, "authSecret"> | string,
  opts: TokenOptions,
): Promise<string> {
  const secret = typeof settingsOrSecret === "string" ? settingsOrSecret : settingsOrSecret.authSecret;
  if (!secret) throw new Error("signing a token needs LAUNCHER_AUTH_SECRET");
  if (opts.user === "") throw new Error("a token needs a user");
  const ttl = opts.ttl ?? "1h";
  // jose reads a number as an absolute time, so a relative number of seconds is made absolute here.
  const exp = typeof ttl === "number" ? Math.floor(Date.now() / 1000) + ttl : ttl;
  return new SignJWT({ groups: opts.groups ?? [] })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(opts.user)
    .setIssuedAt()
    .setExpirationTime(exp)
    .sign(new TextEncoder().encode(secret));
}
