// The transport-neutral request layer: message schemas, and the pure request functions both front
// doors (src/http/ routes, src/plugin/ handlers) are thin adapters over.
export * from "./filter.js";
export * from "./routing.js";
export * from "./schemas.js";
export * from "./stream.js";
export * from "./submission.js";
