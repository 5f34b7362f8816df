// The throughput floor: three skeleton nodes (bench/floor-node.ts, each with its skeleton
// supervisor bench/floor-supervisor.py) behind HAProxy with the shipped ops/haproxy.cfg, on the
// run's Redis under their own key prefix. They do per job only what this project's contract
// makes every launcher do (an authenticated HTTP submission through the load balancer, the job's
// record and three status events in Redis, each published to every node, a separate supervisor
// that opens the job's output files and starts it with posix_spawn, its exit journalled): the
// fleet's throughput over the floor's is what the fleet's own design costs.
import { type ChildProcess, fork } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { SignJWT } from "jose";
import {
  type BenchRedis,
  haproxyModule,
  pidsMatching,
  procChildrenCpuMs,
  procCpuMs,
  type Stack,
  scratchDir,
  stopProcess,
  topology,
} from "./lib.js";

export interface Floor {
  url: string;
  /** The first node's URL (its status stream sees every node's statuses). */
  nodeUrl: string;
  token: string;
  /** CPU ms so far: nodes (all threads), supervisors (own), jobs (reaped by the supervisors), HAProxy. */
  cpu(): { nodes: number; supervisors: number; jobs: number; haproxy: number };
}

export async function startFloor(stack: Stack, redis: BenchRedis, haproxyBinary: string): Promise<Floor> {
  const scratch = scratchDir(stack, "floor");
  const secret = Math.random().toString(36).repeat(4);
  const script = fileURLToPath(new URL("./floor-node.js", import.meta.url));
  const nodes: ChildProcess[] = [];
  const ports: number[] = [];
  stack.defer("stop the floor's nodes", () => Promise.all(nodes.map((n) => stopProcess(n))));
  for (let i = 0; i < 3; i++) {
    const port = await topology.freePort();
    const node = fork(script, [String(port), String(redis.port), "floor", secret, scratch], {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    nodes.push(node);
    ports.push(port);
    await new Promise<void>((resolve, reject) => {
      node.once("message", () => resolve());
      node.once("exit", (code) => reject(new Error(`floor node exited with ${code}`)));
    });
  }
  const lb = await haproxyModule.startHaproxy({
    binary: haproxyBinary,
    host: "127.0.0.1",
    port: await topology.freePort(),
    statsPort: await topology.freePort(),
    servers: ports.map((port, i) => ({ name: `floor-${i + 1}`, address: `127.0.0.1:${port}` })),
    configFile: join(scratch, "haproxy.cfg"),
    logFile: join(scratch, "haproxy.log"),
    env: process.env,
  });
  stack.defer("stop the floor's HAProxy", () => lb.stop());
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: "HS256" })
    .setSubject("bench")
    .setExpirationTime("4h")
    .sign(new TextEncoder().encode(secret));
  const supervisors = () => pidsMatching((c) => c.includes("floor-supervisor.py") && c.includes(scratch));
  const sum = (pids: number[], f: (pid: number) => number) => pids.reduce((s, p) => s + f(p), 0);
  return {
    url: lb.url,
    nodeUrl: `http://127.0.0.1:${ports[0]}`,
    token,
    cpu: () => ({
      nodes: sum(
        nodes.map((n) => n.pid!),
        procCpuMs,
      ),
      supervisors: sum(supervisors(), procCpuMs),
      jobs: sum(supervisors(), procChildrenCpuMs),
      haproxy: lb.pid ? procCpuMs(lb.pid) : 0,
    }),
  };
}
