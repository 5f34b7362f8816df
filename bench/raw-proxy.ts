// The routing measure's raw-hop baseline: the least a forwarding hop in Node can cost. A minimal
// reverse proxy on node:http with one keep-alive agent in front of one node (the owner): no
// routing decision, no Redis read, no token check, the body piped through as it comes.
//   node dist-bench/bench/raw-proxy.js <upstream origin>
// Sends {port} to its parent over IPC once it listens; exits when the IPC channel closes.
import http from "node:http";

const upstream = new URL(process.argv[2]!);
const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

const server = http.createServer((req, res) => {
  const up = http.request(
    {
      host: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path: req.url,
      headers: { ...req.headers, host: upstream.host },
      agent,
    },
    (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    },
  );
  up.on("error", () => {
    if (!res.headersSent) res.writeHead(502);
    res.end();
  });
  req.pipe(up);
});
server.keepAliveTimeout = 60_000;
server.listen(0, "127.0.0.1", () => {
  const addr = server.address();
  process.send?.({ port: typeof addr === "object" && addr ? addr.port : 0 });
});
process.on("disconnect", () => process.exit(0));
