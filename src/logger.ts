// Structured pino JSON logs, the node id on every line, secrets never written.
import { type Logger, pino } from "pino";

export const REDACT_PATHS = [
  "req.headers.authorization",
  "headers.authorization",
  "authorization",
  "token",
  "secret",
  "authSecret",
  "settings.authSecret",
  "*.authSecret",
  "redisUrl",
  "*.redisUrl",
  "password",
];

export function createLogger(nodeId: string, level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { nodeId },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    },
    destination ?? pino.destination({ fd: 1, sync: false }),
  );
}
