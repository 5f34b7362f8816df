// Local topologies of real processes: a fleet of nodes with Redis and HAProxy on this machine.
export { haproxyServerStates, renderHaproxyConfig, renderLoopbackConfig } from "./haproxy.js";
export {
  type FleetNode,
  type LocalFleet,
  type LocalFleetOptions,
  NODE_SETTING_VARS,
  startLocalFleet,
} from "./local-fleet.js";
export { NODE_FLAGS } from "./node-command.js";
export { CLI_PATH, HAPROXY_CFG_PATH, REPO_ROOT } from "./paths.js";
export { findFreePortRange, freePort, isPortFree } from "./ports.js";
export type { ExitInfo } from "./process.js";
export { type PrivateRedis, startPrivateRedis } from "./redis.js";
