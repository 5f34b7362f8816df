// What HTTP adds to the request layer's checks (src/launcher/requests/): how query lists arrive,
// and the strict validator for JSON bodies.
import type { FastifySchemaCompiler } from "fastify";
import type { TSchema } from "typebox";
import { Compile } from "typebox/compile";
import { Value } from "typebox/value";

/**
 * A query list: fastify gives repeated keys as an array (and ajv's `coerceTypes: "array"` turns a
 * single value into one); each entry may also be a comma list. Blank entries are dropped.
 */
export function queryList(values: readonly string[] | undefined): string[] {
  if (!values) return [];
  return values
    .flatMap((v) => v.split(","))
    .map((v) => v.trim())
    .filter((v) => v !== "");
}

/**
 * Validator for JSON bodies: TypeBox's compiled checker, which (unlike fastify's ajv instance with
 * `coerceTypes`) never converts — `"command": 5` is rejected, not turned into `"5"`. Errors have
 * ajv's shape, so fastify words them the same way (`body/command must be string`), as the request
 * layer words the plugin's (`job/command must be string`).
 */
export const strictBodyCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const check = Compile(schema);
  const convert = httpPart !== "body";
  return (value: unknown) => {
    const data = convert ? Value.Convert(schema, value) : value;
    return check.Check(data) ? { value: data } : { error: check.Errors(data) };
  };
};
