// The fan-out measure's hop baseline: the least a node can do to carry a pub/sub message to its
// HTTP client. One process subscribed to one channel that writes every message, undecoded, as an
// NDJSON line (`{"m":"<message>"}`) to each client of GET /: no event id, no filter, no JSON, no
// token check. Redis → this process → its client is the fleet's path (Redis → node C → the
// client) with nothing of the fleet's.
//   node dist-bench/bench/raw-relay.js <redis port> <channel>
// Sends {port} to its parent over IPC once it listens and has subscribed; exits when the IPC
// channel closes.
import http from "node:http";
import { Redis } from "ioredis";

const [redisPort, channel] = process.argv.slice(2) as [string, string];
const clients = new Set<http.ServerResponse>();
const sub = new Redis({ host: "127.0.0.1", port: Number(redisPort) });
sub.on("message", (_ch: string, message: string) => {
  const line = `{"m":"${message}"}\n`;
  for (const res of clients) res.write(line);
});

const server = http.createServer((_req, res) => {
  res.writeHead(200, { "content-type": "application/x-ndjson" }).flushHeaders();
  clients.add(res);
  res.on("close", () => clients.delete(res));
});
await sub.subscribe(channel);
server.listen(0, "127.0.0.1", () => {
  const addr = server.address();
  process.send?.({ port: typeof addr === "object" && addr ? addr.port : 0 });
});
process.on("disconnect", () => process.exit(0));
