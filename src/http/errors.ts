// One error shape for every answer: `{"code","name","message"}` (docs/http-api.md "Errors").
// Every failure — ApiErrors from the service, fastify's own validation/parser errors, unknown
// exceptions — is mapped here, so no route has to think about HTTP error bodies.
import type { FastifyError, FastifyReply } from "fastify";
import fp from "fastify-plugin";
import {
  ApiError,
  ErrCode,
  type ErrorBody,
  errCodeName,
  errorText,
  httpStatusFor,
  StatusError,
  toApiError,
} from "../api/index.js";

/** Builds the API error body for a code and message. */
export function errorBody(code: ErrCode, message: string): ErrorBody {
  return { code, name: errCodeName(code), message };
}

/** Sends an error body with an explicit HTTP status (e.g. 401, which no ErrCode maps to). */
export function sendError(reply: FastifyReply, status: number, code: ErrCode, message: string): FastifyReply {
  return reply.code(status).type("application/json; charset=utf-8").send(errorBody(code, message));
}

/** The status and body an error is answered with. */
export interface ErrorAnswer {
  status: number;
  body: ErrorBody;
}

function isFastifyError(err: unknown): err is FastifyError {
  return err instanceof Error && typeof (err as Partial<FastifyError>).code === "string";
}

function clientStatus(err: unknown): number | undefined {
  if (!(err instanceof Error)) return undefined;
  const status = (err as Partial<FastifyError>).statusCode;
  return typeof status === "number" && status >= 400 && status < 500 ? status : undefined;
}

/**
 * Maps anything thrown to its answer:
 * - an ApiError (or an error wrapping one) keeps its code, with the HTTP status from docs/http-api.md's table;
 * - fastify validation errors are 400 InvalidRequest with fastify's message, which names the
 *   field (`body/command must be string`);
 * - other client errors fastify raises (malformed JSON 400, body too large 413, unsupported media
 *   type 415, …) keep their 4xx status with code InvalidRequest: a client mistake is never a 500;
 * - anything else is 500 Unknown.
 */
export function classifyError(err: unknown): ErrorAnswer {
  if (err instanceof StatusError) return { status: err.httpStatus, body: err.toBody() };
  if (err instanceof ApiError) return { status: httpStatusFor(err.code), body: err.toBody() };
  if (isFastifyError(err) && err.validation) {
    return { status: 400, body: errorBody(ErrCode.InvalidRequest, err.message) };
  }
  const status = clientStatus(err);
  if (status !== undefined) {
    return { status, body: errorBody(ErrCode.InvalidRequest, clientMessage(err as FastifyError)) };
  }
  // toApiError keeps the code of a wrapped ApiError and makes everything else Unknown.
  const api = toApiError(err);
  return { status: httpStatusFor(api.code), body: errorBody(api.code, errorText(err)) };
}

/** fastify's texts are fine except the body-limit one, which does not say what the limit is. */
function clientMessage(err: FastifyError): string {
  if (err.code === "FST_ERR_CTP_BODY_TOO_LARGE") return "Request body is too large";
  return err.message;
}

export const errorsPlugin = fp(
  async (app) => {
    app.setErrorHandler((err, request, reply) => {
      const { status, body } = classifyError(err);
      if (status >= 500 && !(err instanceof ApiError)) {
        request.log.error({ err }, "request failed");
      } else if (status >= 500) {
        request.log.warn({ code: body.code, msg: body.message }, "request failed");
      } else {
        request.log.debug({ code: body.code, msg: body.message }, "request rejected");
      }
      return reply.code(status).type("application/json; charset=utf-8").send(body);
    });

    // Unknown routes are a client mistake: 404 with code InvalidRequest (no ErrCode means
    // "no such route"; JobNotFound would be misleading).
    app.setNotFoundHandler((request, reply) =>
      sendError(reply, 404, ErrCode.InvalidRequest, `Route ${request.method} ${request.url} not found`),
    );
  },
  { name: "launcher-errors", fastify: "5.x" },
);
