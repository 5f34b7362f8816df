// Bearer-JWT authentication (docs/http-api.md "Authentication"). Every route needs a token except the
// public ones (health, metrics, docs); the verified identity is `request.caller`.
import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import {
  decodeProtectedHeader,
  type JWTPayload,
  type JWTVerifyGetKey,
  errors as joseErrors,
  jwtVerify,
  SignJWT,
} from "jose";
import { ErrCode, isPlausibleUserName, userNameProblem } from "../api/index.js";
import type { Settings } from "../config.js";
import type { Caller } from "../launcher/port.js";
import { sendError } from "./errors.js";

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
  let publicKey: { alg: string; key: KeyObject } | undefined;
  if (settings.authPublicKeyFile) {
    const key = createPublicKey(await readFile(settings.authPublicKeyFile, "utf8"));
    publicKey = { key, alg: algorithmFor(key, settings.authPublicKeyFile) };
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
function algorithmFor(key: KeyObject, file: string): "RS256" | "ES256" {
  if (key.asymmetricKeyType === "rsa") return "RS256";
  if (key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1") return "ES256";
  throw new Error(`${file}: only RSA (RS256) and P-256 EC (ES256) ${key.type} keys are supported`);
}

function callerFrom(payload: JWTPayload, adminGroup: string): Caller {
  const sub = payload.sub;
  if (!isPlausibleUserName(sub)) {
    throw new AuthError(
      `Invalid token: the "sub" claim must be a user name (1-256 characters, no "*", "/", ":", ` +
        `whitespace or control characters): ${userNameProblem(sub)}`,
    );
  }
  const groups = payload.groups ?? [];
  if (!Array.isArray(groups) || !groups.every((g): g is string => typeof g === "string")) {
    throw new AuthError('Invalid token: the "groups" claim must be an array of strings');
  }
  return { user: sub, groups, admin: groups.includes(adminGroup) };
}

function authMessage(err: unknown, token: string, algorithms: string[]): string {
  if (err instanceof AuthError) return err.message;
  if (err instanceof joseErrors.JOSEAlgNotAllowed) {
    let alg = "(none)";
    try {
      alg = String(decodeProtectedHeader(token).alg ?? alg);
    } catch {}
    return `Invalid token: algorithm ${alg} is not accepted (this node accepts ${algorithms.join(", ")})`;
  }
  if (err instanceof joseErrors.JWTExpired) return "Token expired";
  if (err instanceof joseErrors.JWTClaimValidationFailed && (err.claim === "iss" || err.claim === "aud")) {
    const setting = err.claim === "iss" ? "LAUNCHER_AUTH_ISSUER" : "LAUNCHER_AUTH_AUDIENCE";
    return err.reason === "missing"
      ? `Invalid token: the "${err.claim}" claim is missing; this fleet requires it (${setting})`
      : `Invalid token: the "${err.claim}" claim does not match this fleet's ${setting}`;
  }
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
          ...(settings.authIssuer !== undefined ? { issuer: settings.authIssuer } : {}),
          ...(settings.authAudience !== undefined ? { audience: settings.authAudience } : {}),
        });
        const caller = Object.freeze(callerFrom(payload, settings.adminGroup));
        verified.set(token, caller, payload.exp!);
        return caller;
      } catch (err) {
        throw new AuthError(authMessage(err, token, algorithms));
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
  /** The `iss` claim (nodes with LAUNCHER_AUTH_ISSUER require it). */
  issuer?: string;
  /** The `aud` claim (nodes with LAUNCHER_AUTH_AUDIENCE require it). */
  audience?: string;
}

/** A private key to sign with instead of the HS256 secret: RS256 for RSA, ES256 for P-256. */
export interface SigningKey {
  key: KeyObject;
  alg: "RS256" | "ES256";
}

/**
 * The private key of a PEM file's text, with its algorithm (`source` names it in errors). The
 * matching public key is what nodes have in LAUNCHER_AUTH_PUBLIC_KEY_FILE.
 */
export function signingKeyFromPem(pem: string, source: string): SigningKey {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    const encrypted = /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(pem);
    throw new Error(
      `${source}: not a usable PEM private key${encrypted ? " (it is encrypted; give an unencrypted copy)" : ""}`,
      { cause: err },
    );
  }
  return { key, alg: algorithmFor(key, source) };
}

/**
 * Signs a token for the CLI's `token` command, tests and forwarded plugin requests: HS256 with
 * `settings.authSecret` or a secret given directly, or RS256/ES256 with a private key.
 */
export async function signToken(
  signer: Pick<Settings, "authSecret"> | string | SigningKey,
  opts: TokenOptions,
): Promise<string> {
  let alg: string;
  let key: Uint8Array | KeyObject;
  if (typeof signer === "object" && "alg" in signer) {
    ({ alg, key } = signer);
  } else {
    const secret = typeof signer === "string" ? signer : signer.authSecret;
    if (!secret) throw new Error("signing a token needs LAUNCHER_AUTH_SECRET");
    alg = "HS256";
    key = new TextEncoder().encode(secret);
  }
  if (opts.user === "") throw new Error("a token needs a user");
  const problem = userNameProblem(opts.user);
  if (problem !== undefined) throw new Error(`a token's user must be a plausible user name: ${problem}`);
  const ttl = opts.ttl ?? "1h";
  // jose reads a number as an absolute time, so a relative number of seconds is made absolute here.
  const exp = typeof ttl === "number" ? Math.floor(Date.now() / 1000) + ttl : ttl;
  const jwt = new SignJWT({ groups: opts.groups ?? [] })
    .setProtectedHeader({ alg, typ: "JWT" })
    .setSubject(opts.user)
    .setIssuedAt()
    .setExpirationTime(exp);
  if (opts.issuer !== undefined) jwt.setIssuer(opts.issuer);
  if (opts.audience !== undefined) jwt.setAudience(opts.audience);
  return jwt.sign(key);
}
