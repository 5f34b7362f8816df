// The HTTP layer's public surface. Importing it also brings the fastify type augmentations
// (`request.caller`, `app.metricsRegistry`, route config flags).

export type {
  Caller,
  HealthReport,
  JobLocation,
  LauncherService,
  StatusStreamItem,
  StatusStreamOptions,
} from "../launcher/port.js";
export { type AppOptions, BODY_LIMIT_BYTES, buildApp } from "./app.js";
export {
  type AuthPluginOptions,
  createVerifier,
  type SigningKey,
  signingKeyFromPem,
  signToken,
  type TokenOptions,
  type TokenVerifier,
} from "./auth.js";
export { classifyError, errorBody } from "./errors.js";
export { FORWARDED_BY_HEADER, SERVED_BY_HEADER } from "./forward.js";
export { formatRunTime } from "./health.js";
export type { HttpMetrics, StreamKind } from "./metrics.js";
export { EVENT_STREAM, NDJSON } from "./streams.js";
