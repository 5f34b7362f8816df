// The plugin's envelope fields as TypeBox schemas (username, jobId, cancel), and readMessage, which
// checks a request against its message schema with TypeBox's compiled checker. Each request type's
// schema sits next to its handler (./handlers.ts): these envelope fields plus the fields shared
// with HTTP from the request layer (operation, output type, job filter: src/launcher/requests/).
//
// Wording: a field of the wrong type is `<field> <message>` (the field schema's `message`, e.g.
// `tags must be an array of strings`); a missing or empty required field is `<field> is required`
// unless its schema has a `missing`; the first bad field in declaration order is reported, so
// `username` comes before `jobId`, and `jobId` before the rest. JSON null reads as absent, as in Go.
import { type Static, type TObject, type TProperties, Type } from "typebox";
import { Compile } from "typebox/compile";
import { ApiError, ErrCode, parseOperation, parseOutputType, requireSingleJob } from "../api/index.js";
import type { Handler, StreamHandler } from "./handlers.js";
import type { BaseRequest } from "./protocol.js";

const opt = Type.Optional;
const open = { additionalProperties: true } as const;
const aString = { message: "must be a string" } as const;

/** Every request made on behalf of a user. */
export const userFields = {
  username: opt(Type.String({ ...aString, description: "The effective user; `*` is all users" })),
  requestUsername: opt(Type.String({ ...aString, description: "Who made the request (audit only)" })),
};
/**
 * A job request: a user (not empty), then a job id (`*` for every job where allowed). The Launcher's
 * `encodedJobId` (metadata about the id) is accepted and ignored, as any field beyond the schema.
 */
export const jobFields = {
  ...userFields,
  username: Type.String({ ...aString, minLength: 1, description: "The effective user; `*` is all users" }),
  jobId: Type.String({ ...aString, minLength: 1, description: "A job id, or `*`" }),
};
export const streamFields = {
  ...jobFields,
  cancel: opt(Type.Boolean({ message: "must be a boolean", description: "Cancels the stream" })),
};

/** What the server reads of a stream request before its handler: is it a cancel? */
export const StreamCancelMessage = Type.Object(
  { cancel: opt(Type.Boolean({ message: "must be a boolean" })) },
  open,
);

type Checker<T extends TObject> = ReturnType<typeof Compile<T>>;

/**
 * Fields whose refusal a request-layer parser words (the same words over HTTP): it is called with
 * the message when the schema refuses that field, and throws.
 */
type Refusals = Record<string, (request: Record<string, unknown>) => void>;

const refusals: Refusals = {
  // The caller's words (callerFromRequest), for the requests that need a user.
  username: (r) => {
    if (r.username === undefined || r.username === "") {
      throw new ApiError(ErrCode.InvalidRequest, "User must not be empty");
    }
  },
  operation: (r) => {
    requireSingleJob(r.jobId as string, "control");
    parseOperation(r.operation, r.jobId as string);
  },
  outputType: (r) => {
    parseOutputType(r.outputType);
  },
};

const checkers = new WeakMap<TObject, Checker<TObject>>();

function checkerOf<T extends TObject>(schema: T): Checker<T> {
  let checker = checkers.get(schema);
  if (!checker) {
    checker = Compile(schema) as unknown as Checker<TObject>;
    checkers.set(schema, checker);
  }
  return checker as unknown as Checker<T>;
}

/** The field an error is about: a missing property, or the first segment of its path. */
function fieldsOf(error: { keyword: string; instancePath: string; params: unknown }): string[] {
  if (error.keyword === "required") {
    return ((error.params as { requiredProperties?: string[] }).requiredProperties ?? []).slice();
  }
  const first = error.instancePath.split("/")[1];
  return first === undefined ? [] : [first.replace(/~1/g, "/").replace(/~0/g, "~")];
}

/** The message's fields as its schema types them; InvalidRequest naming the first bad field. */
export function readMessage<T extends TObject<TProperties>>(schema: T, request: BaseRequest): Static<T> {
  const value = Object.fromEntries(Object.entries(request).filter(([, v]) => v !== null));
  const checker = checkerOf(schema);
  if (checker.Check(value)) return value as Static<T>;
  const errors = checker.Errors(value);
  const bad = new Set(errors.flatMap(fieldsOf));
  const field = Object.keys(schema.properties).find((name) => bad.has(name));
  if (field === undefined) throw new ApiError(ErrCode.InvalidRequest, "Invalid message");
  refusals[field]?.(value);
  const own = schema.properties[field] as { message?: string; missing?: string };
  const present = value[field] !== undefined && value[field] !== "";
  const text = present ? (own.message ?? "is invalid") : (own.missing ?? "is required");
  throw new ApiError(ErrCode.InvalidRequest, `${field} ${text}`);
}

/** How a request type is served: its message schema and a plain or a stream handler. */
export type Route =
  | { schema: TObject; run: Handler<TObject>; stream?: undefined }
  | { schema: TObject; stream: StreamHandler<TObject>; run?: undefined };

/** A plain request's route: the handler takes its message as `schema` types it. */
export const plainRoute = <S extends TObject>(schema: S, run: Handler<S>): Route =>
  ({ schema, run }) as unknown as Route;
/** A stream request's route. */
export const streamRoute = <S extends TObject>(schema: S, handler: StreamHandler<S>): Route =>
  ({ schema, stream: handler }) as unknown as Route;
