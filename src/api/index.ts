/**
 * The `api` package: a pure TypeScript port of the Go Launcher Plugin SDK's `api` package (v3.5)
 * plus the HTTP message shapes built on it. No I/O here.
 */
export * from "./errors.js";
export * from "./filter.js";
export * from "./job.js";
export * from "./limits.js";
export * from "./messages.js";
export * from "./mount-source.js";
export * from "./node.js";
export * from "./operation.js";
export * from "./output.js";
export * from "./rfc3339.js";
export * from "./specs.js";
export * from "./status.js";
export * from "./user-name.js";
export * from "./version.js";
