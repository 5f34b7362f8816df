// The throughput floor's node (bench/floor.ts): the least a launcher node must do per job under
// this project's contract, and nothing else. Started as a child process:
//   node dist-bench/bench/floor-node.js <port> <redis port> <key prefix> <HS256 secret> <scratch dir>
// - POST /jobs: an HTTP request whose bearer JWT is verified; the job's record written to Redis
//   (its spec and status, a status event in the events stream, published) before the 201 answer;
//   the job handed to its supervisor (bench/floor-supervisor.py), which starts it with posix_spawn.
// - The job's Running and Finished statuses: one Redis script call each (record, event, publish).
// - Every node subscribes to the status channel (a client of any node sees the fleet's statuses);
//   GET /jobs/*/status streams them as NDJSON, passed through undecoded.
// - GET /readyz: 200, for HAProxy's checks.
// No placement, no queue, no owner routing, no validation beyond `command`, no metrics, no logs:
// what this costs per job is the floor under the fleet's own cost, measured on the same machine.
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { jwtVerify } from "jose";

const [port, redisPort, prefix, secret, scratch] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string,
];
const key = new TextEncoder().encode(secret);
const events = `${prefix}:events`;
const channel = `${prefix}:status`;

// One script call per status change: the job's hash, the stream entry kept for resume, the publish.
const UPDATE = `
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'exitCode', ARGV[3], unpack(ARGV, 5))
local msg = '{"id":"' .. ARGV[1] .. '","status":"' .. ARGV[2] .. '","exitCode":' .. ARGV[3] .. '}'
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'm', msg)
redis.call('PUBLISH', KEYS[3], msg)
`;
interface FloorRedis extends Redis {
  floorUpdate(
    job: string,
    ev: string,
    ch: string,
    id: string,
    status: string,
    code: string,
    ...rest: string[]
  ): Promise<null>;
}
const redis = new Redis({ host: "127.0.0.1", port: Number(redisPort) }) as FloorRedis;
redis.defineCommand("floorUpdate", { numberOfKeys: 3, lua: UPDATE });
const update = (id: string, status: string, code: number, ...fields: string[]) =>
  redis.floorUpdate(`${prefix}:job:${id}`, events, channel, id, status, String(code), "100000", ...fields);

const listeners = new Set<ServerResponse>();
const sub = new Redis({ host: "127.0.0.1", port: Number(redisPort) });
sub.on("message", (_ch: string, msg: string) => {
  for (const res of listeners) res.write(`${msg}\n`);
});

const supervisor = spawn(
  "python3",
  [fileURLToPath(new URL("../../bench/floor-supervisor.py", import.meta.url)), join(scratch, "journal")],
  { stdio: ["pipe", "pipe", "inherit"] },
);
let pending = "";
supervisor.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
  pending += chunk;
  let nl = pending.indexOf("\n");
  while (nl >= 0) {
    const [kind, id, n] = pending.slice(0, nl).split(" ") as [string, string, string];
    pending = pending.slice(nl + 1);
    nl = pending.indexOf("\n");
    if (kind === "R") void update(id, "Running", -1, "pid", n);
    else void update(id, "Finished", Number(n));
  }
});

async function body(req: IncomingMessage): Promise<string> {
  let text = "";
  for await (const chunk of req) text += chunk;
  return text;
}

function answer(res: ServerResponse, status: number, value: unknown): void {
  const text = JSON.stringify(value);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

async function submit(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const spec = JSON.parse(await body(req)) as { command?: unknown };
  if (typeof spec.command !== "string") return answer(res, 400, { code: 1, message: "command is required" });
  const id = randomUUID();
  const out = join(scratch, `${id}.stdout`);
  const err = join(scratch, `${id}.stderr`);
  await update(id, "Pending", -1, "spec", JSON.stringify(spec), "stdoutFile", out, "stderrFile", err);
  answer(res, 201, { id, status: "Pending" });
  supervisor.stdin!.write(`${id}\t${spec.command}\t${out}\t${err}\n`);
}

const server = createServer((req, res) => {
  if (req.url === "/readyz") return answer(res, 200, { ready: true });
  const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1] ?? "";
  jwtVerify(token, key, { algorithms: ["HS256"] })
    .then(() => {
      if (req.method === "POST" && req.url === "/jobs") return submit(req, res);
      if (req.method === "GET" && req.url === "/jobs/*/status") {
        res.writeHead(200, { "content-type": "application/x-ndjson" }).flushHeaders();
        listeners.add(res);
        res.on("close", () => listeners.delete(res));
        return;
      }
      answer(res, 404, { code: 1, message: "not found" });
    })
    .catch((e: Error) => answer(res, e.name.startsWith("JW") ? 401 : 500, { message: e.message }));
});

await sub.subscribe(channel);
server.listen(Number(port), "127.0.0.1", () => process.send?.("ready"));
process.on("SIGTERM", () => {
  supervisor.kill("SIGTERM");
  server.close();
  for (const res of listeners) res.destroy();
  redis.disconnect();
  sub.disconnect();
  process.exit(0);
});
