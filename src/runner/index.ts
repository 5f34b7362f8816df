export { type AdoptResult, LocalRunner, type LocalRunnerOptions } from "./local-runner.js";
export { advertiseIp, type NetworkInfo, networkInfo } from "./network.js";
export {
  type FollowedFileSpec,
  type FollowOutputOptions,
  followOutput,
  type OutputChunk,
  OutputNotFoundError,
} from "./output.js";
export { decodeOutputRecord, encodeOutputRecord } from "./output-records.js";
export {
  type CpuSnapshot,
  type ProcStat,
  type ResourceUsage,
  readProcStat,
  sampleProcessGroup,
} from "./proc.js";
export { buildArgv, shellQuote } from "./shell.js";
export { DEFAULT_PATH, LOST_EXIT_CODE } from "./supervisor.js";
export {
  type Env,
  type FileIdentity,
  type JobSignal,
  LaunchError,
  type LaunchSpec,
  type OutputRecord,
  type RunnerCallbacks,
  type UserAccount,
} from "./types.js";
export { nodeAccount, UserDirectory } from "./users.js";
