// Moved to src/launcher/port.ts (the port belongs to the launcher layer, which both front doors
// import). Kept as a re-export only for src/node.ts, owned by another change in flight; new code
// imports ../launcher/port.js.
export type * from "../launcher/port.js";
