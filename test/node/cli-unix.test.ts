// The CLI's Unix habits (issue 15): --help on every command and subcommand (never a request),
// global options anywhere, tables on a terminal and JSON when piped or with --json, `jobs output`
// as text, `--wait` and `jobs wait` exiting with the job's status, the new commands, and errors
// that name the URL and the cause (never "fetch failed", never a load balancer's HTML page).
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliResult, runCli, runProgram } from "../helpers/cli.js";
import { startTestNode, TEST_SECRET, type TestNode, token } from "../helpers/nodes.js";
import { uniquePrefix } from "../helpers/redis.js";
import { freePort } from "../helpers/redis-server.js";
import { control, endAll, running, submit, waitStatus } from "./helpers.js";

const cli = runCli;

let n: TestNode;
/** A node of n's fleet that one test drains. */
let drainee: TestNode;
/** A node with one slot, so a second job waits in the fleet queue. */
let oneSlot: TestNode;
let alice: string;
let admin: string;
let closedUrl: string;

beforeAll(async () => {
  const prefix = uniquePrefix("cli-unix");
  n = await startTestNode(prefix);
  drainee = await startTestNode(prefix);
  oneSlot = await startTestNode(uniquePrefix("cli-unix-slot"), { maxRunningJobs: 1 });
  alice = await token("alice");
  admin = await token("ops", { admin: true });
  closedUrl = `http://127.0.0.1:${await freePort()}`;
});
afterAll(async () => {
  await endAll(n, admin);
  await endAll(oneSlot, admin);
  await n.close();
  await oneSlot.close();
  await drainee.close().catch(() => undefined);
});

const as = (url: string, tok: string) => ["--url", url, "--token", tok];

/** Runs the CLI on a pseudo-terminal (util-linux `script`), so stdout.isTTY is true. */
async function cliOnTty(args: string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  const quoted = ["node", "dist/cli.js", ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ");
  const r = await runProgram("script", ["-qec", quoted, "/dev/null"], { TERM: "dumb", ...env });
  return { ...r, stdout: r.stdout.replaceAll("\r\n", "\n") };
}
const haveScript = spawnSync("script", ["--version"]).status === 0;

describe.concurrent("--help on every command and subcommand, with no request sent", () => {
  const cases: [string[], string][] = [
    [["--help"], "usage: launcher-fleet <command>"],
    [["help"], "usage: launcher-fleet <command>"],
    [["jobs", "--help"], "usage: launcher-fleet jobs <subcommand>"],
    [["jobs", "-h"], "usage: launcher-fleet jobs <subcommand>"],
    [["jobs", "status", "--help"], "usage: launcher-fleet jobs status [ID]"],
    [["jobs", "submit", "--help"], "--wait"],
    [["jobs", "output", "x", "--help"], "usage: launcher-fleet jobs output ID"],
    [["jobs", "wait", "--help"], "usage: launcher-fleet jobs wait ID"],
    [["jobs", "network", "--help"], "usage: launcher-fleet jobs network ID"],
    [["jobs", "resources", "--help"], "usage: launcher-fleet jobs resources ID"],
    [["jobs", "resource", "--help"], "usage: launcher-fleet jobs resources ID"],
    [["nodes", "--help"], "usage: launcher-fleet nodes <subcommand>"],
    [["nodes", "drain", "--help"], "usage: launcher-fleet nodes drain ID"],
    [["cluster-info", "--help"], "usage: launcher-fleet cluster-info"],
    [["help", "jobs", "submit"], "usage: launcher-fleet jobs submit"],
    [["--token", "t", "jobs", "list", "--help"], "usage: launcher-fleet jobs list"],
    [["token", "--help"], "usage: launcher-fleet token"],
    [["fleet", "--help"], "usage: launcher-fleet fleet"],
    [["node", "--help"], "LAUNCHER_REDIS_URL"],
    [["completion", "--help"], "usage: launcher-fleet completion bash"],
  ];
  for (const [args, text] of cases) {
    it(`${args.join(" ")} prints help and exits 0`, async () => {
      // Against a closed port: a request would fail (exit 1, "cannot reach").
      const r = await cli(args, { LAUNCHER_URL: closedUrl });
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(text);
    });
  }

  it("an unknown subcommand or a missing one is a usage error (2) pointing at --help", async () => {
    const unknown = await cli(["jobs", "frobnicate", "--url", closedUrl]);
    expect(unknown).toMatchObject({ code: 2, stdout: "" });
    expect(unknown.stderr).toContain('unknown subcommand "frobnicate"');
    const none = await cli(["jobs", "--url", closedUrl]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("--help");
    const badFlag = await cli(["jobs", "list", "--bogus", "--url", closedUrl]);
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toContain("launcher-fleet jobs --help");
    const bare = await cli([]);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain("usage: launcher-fleet");
  });

  it("`completion bash` prints a script bash accepts", async () => {
    const r = await cli(["completion", "bash"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("complete -F _launcher_fleet launcher-fleet");
    const check = spawnSync("bash", ["-n"], { input: r.stdout });
    expect(check.stderr.toString()).toBe("");
    expect(check.status).toBe(0);
    // Completing `launcher-fleet jobs st` offers status.
    const run = spawnSync(
      "bash",
      [
        "-c",
        `${r.stdout}\nCOMP_WORDS=(launcher-fleet jobs st); COMP_CWORD=2; _launcher_fleet; echo "\${COMPREPLY[@]}"`,
      ],
      { encoding: "utf8" },
    );
    expect(run.stdout.trim()).toBe("status");
    expect((await cli(["completion", "zsh"])).code).toBe(2);
  });
});

describe("global options go anywhere", () => {
  it("before the command, between command and subcommand, after it, and as --flag=value", async () => {
    const job = await submit(n, alice, { command: "true", tags: ["anywhere"] });
    const ids = (r: CliResult) => {
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
      return (JSON.parse(r.stdout) as { jobs: { id: string }[] }).jobs.map((j) => j.id);
    };
    const tail = ["--tag", "anywhere"];
    expect(ids(await cli(["--url", n.url, "--token", alice, "jobs", "list", ...tail]))).toEqual([job.id]);
    expect(ids(await cli(["jobs", "--token", alice, "--url", n.url, "list", ...tail]))).toEqual([job.id]);
    expect(ids(await cli(["jobs", "list", ...tail, `--url=${n.url}`, `--token=${alice}`]))).toEqual([job.id]);
    expect(ids(await cli(["--json", "jobs", "list", ...tail, ...as(n.url, alice)]))).toEqual([job.id]);
  });
});

describe("tables on a terminal, JSON when piped or with --json", () => {
  it("piped: JSON (the shapes scripts rely on); --table: a table", async () => {
    const piped = await cli(["nodes", ...as(n.url, alice)]);
    expect(piped.code).toBe(0);
    expect((JSON.parse(piped.stdout) as { nodes: { id: string }[] }).nodes.map((x) => x.id)).toContain(
      n.settings.nodeId,
    );
    const t = await cli(["nodes", "--table", ...as(n.url, alice)]);
    expect(t.code).toBe(0);
    const [header, ...rows] = t.stdout.split("\n");
    expect(header).toMatch(/^ID\s+STATUS\s+ONLINE\s+ADDRESS\s+HOST\s+JOBS\/SLOTS\s+LAST SEEN/);
    expect(rows.find((r) => r.startsWith(`${n.settings.nodeId} `))).toMatch(
      /^\S+\s+Online\s+yes\s+127\.0\.0\.1:/,
    );
    expect((await cli(["nodes", "--json", "--table", ...as(n.url, alice)])).code).toBe(2);
  });

  it.skipIf(!haveScript)("on a terminal: tables and key/value text; --json still gives JSON", async () => {
    const job = await submit(n, alice, { command: "echo tty", name: "on-a-tty", tags: ["tty"] });
    await waitStatus(n, alice, job.id, "Finished");
    const env = { LAUNCHER_URL: n.url, LAUNCHER_TOKEN: alice };
    const list = await cliOnTty(["jobs", "list", "--tag", "tty"], env);
    expect(list.code).toBe(0);
    const lines = list.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^ID\s+NAME\s+USER\s+STATUS\s+EXIT\s+NODE\s+SUBMITTED\s+TAGS$/);
    expect(lines[1]).toMatch(new RegExp(`^${job.id}\\s+on-a-tty\\s+alice\\s+Finished\\s+0\\s+`));
    const get = await cliOnTty(["jobs", "get", job.id], env);
    expect(get.stdout).toMatch(/^id:\s+\S+$/m);
    expect(get.stdout).toMatch(/^status:\s+Finished$/m);
    expect(get.stdout).toMatch(/^command:\s+echo tty$/m);
    const info = await cliOnTty(["cluster-info"], env);
    expect(info.stdout).toMatch(/^queues:\s+default \(default\)$/m);
    const json = await cliOnTty(["jobs", "get", job.id, "--json"], env);
    expect(JSON.parse(json.stdout)).toMatchObject({ id: job.id, status: "Finished" });
  });
});

describe("jobs output, status, network, resources", () => {
  it("output prints the job's text (its stderr on stderr); --json prints the frames", async () => {
    const job = await submit(n, alice, { command: "echo hello; echo oops >&2; printf 'no newline'" });
    await waitStatus(n, alice, job.id, "Finished");
    const text = await cli(["jobs", "output", job.id, ...as(n.url, alice)]);
    expect(text).toEqual({ code: 0, stdout: "hello\nno newline", stderr: "oops\n" });
    const onlyOut = await cli(["jobs", "output", job.id, "--type", "stdout", ...as(n.url, alice)]);
    expect(onlyOut).toEqual({ code: 0, stdout: "hello\nno newline", stderr: "" });
    const frames = await cli(["jobs", "output", job.id, "--json", ...as(n.url, alice)]);
    expect(frames.code).toBe(0);
    const parsed = frames.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { seqId: number; output?: string; complete?: boolean });
    expect(parsed[0]).toMatchObject({ seqId: 1 });
    expect(parsed.at(-1)).toMatchObject({ complete: true });
  });

  it("status: NDJSON when piped, lines with --table", async () => {
    const job = await submit(n, alice, { command: "true", name: "st" });
    await waitStatus(n, alice, job.id, "Finished");
    const piped = await cli(["jobs", "status", job.id, ...as(n.url, alice)]);
    expect(piped.code).toBe(0);
    const events = piped.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { status: string });
    expect(events.at(-1)).toMatchObject({ id: job.id, status: "Finished" });
    const human = await cli(["jobs", "status", job.id, "--table", ...as(n.url, alice)]);
    expect(human.stdout).toMatch(new RegExp(`^\\d\\d:\\d\\d:\\d\\d  ${job.id} st  Finished`, "m"));
  });

  it("network and resources of a running job", async () => {
    const job = await running(n, alice, { command: "sleep 30" });
    try {
      const net = await cli(["jobs", "network", job.id, ...as(n.url, alice)]);
      expect(net.code).toBe(0);
      expect(JSON.parse(net.stdout)).toMatchObject({
        host: expect.any(String),
        ipAddresses: expect.any(Array),
      });
      const human = await cli(["jobs", "network", job.id, "--table", ...as(n.url, alice)]);
      expect(human.stdout).toMatch(/^host:\s+\S+/m);
      // The resource stream follows until the job ends: read it in the background, then end the job.
      const res = cli(["jobs", "resources", job.id, "--table", ...as(n.url, alice)]);
      const resJson = cli(["jobs", "resource", job.id, ...as(n.url, alice)]);
      await new Promise((r) => setTimeout(r, 1_000));
      expect((await control(n, alice, job.id, "kill")).status).toBe(200);
      const r = await res;
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(
        /^cpu \d+\.\d% {2}cpu time \d+\.\d\d s {2}resident \d+\.\d MB {2}virtual \d+\.\d MB$/m,
      );
      const j = await resJson;
      expect(j.code).toBe(0);
      const samples = j.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(samples[0]).toMatchObject({
        cpuPercent: expect.any(Number),
        residentMemory: expect.any(Number),
      });
    } finally {
      await control(n, alice, job.id, "kill");
    }
  });
});

describe("jobs submit --wait and jobs wait exit with the job's status", () => {
  it("--wait prints the output and exits 0 for a job that finishes well", async () => {
    const r = await cli([
      "jobs",
      "submit",
      "--wait",
      "--command",
      "echo out; echo err >&2",
      ...as(n.url, alice),
    ]);
    expect(r).toEqual({ code: 0, stdout: "out\n", stderr: "err\n" });
  });

  it("--wait exits with the job's exit code and says so", async () => {
    const r = await cli([
      "jobs",
      "submit",
      "--command",
      "echo partial; exit 3",
      "--wait",
      ...as(n.url, alice),
    ]);
    expect(r.code).toBe(3);
    expect(r.stdout).toBe("partial\n");
    expect(r.stderr).toMatch(/^job \S+ Finished with exit code 3$/m);
  });

  it("Failed: non-zero, with the reason", async () => {
    const r = await cli([
      "jobs",
      "submit",
      "--wait",
      "--command",
      "true",
      "--workdir",
      "/nonexistent/dir",
      ...as(n.url, alice),
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/job \S+ Failed.*nonexistent/);
  });

  it("Killed: 137; `jobs wait` follows a job someone else kills", async () => {
    const job = await running(n, alice, { command: "echo started; sleep 30" });
    const waiting = cli(["jobs", "wait", job.id, ...as(n.url, alice)]);
    await new Promise((r) => setTimeout(r, 500));
    expect((await control(n, alice, job.id, "kill")).status).toBe(200);
    const r = await waiting;
    expect(r.code).toBe(137);
    expect(JSON.parse(r.stdout)).toMatchObject({ id: job.id, status: "Killed" });
    expect(r.stderr).toContain(`job ${job.id} Killed`);
  });

  it("Canceled (while queued): 1, said on stderr; --wait --json prints the final job", async () => {
    const blocker = await running(oneSlot, alice, { command: "sleep 30" });
    try {
      const waiting = cli([
        "jobs",
        "submit",
        "--wait",
        "--json",
        "--command",
        "echo never",
        ...as(oneSlot.url, alice),
      ]);
      // The second job waits for the slot; cancel it once it is there.
      const queued = await waitFor(async () => {
        const r = await cli(["jobs", "list", "--status", "Pending", ...as(oneSlot.url, alice)]);
        return (JSON.parse(r.stdout) as { jobs: { id: string }[] }).jobs[0];
      });
      expect((await control(oneSlot, alice, queued.id, "cancel")).status).toBe(200);
      const r = await waiting;
      expect(r.code).toBe(1);
      expect(JSON.parse(r.stdout)).toMatchObject({ id: queued.id, status: "Canceled" });
      expect(r.stderr).toContain(`job ${queued.id} Canceled`);
    } finally {
      await control(oneSlot, alice, blocker.id, "kill");
    }
  });

  it("Ctrl-C stops following and leaves the job running, saying how to get back to it", async () => {
    const child = spawn(
      process.execPath,
      [
        "dist/cli.js",
        "jobs",
        "submit",
        "--wait",
        "--tag",
        "ctrl-c",
        "--command",
        "sleep 30",
        ...as(n.url, alice),
      ],
      { env: { PATH: process.env.PATH }, stdio: ["ignore", "pipe", "pipe"] },
    );
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    const exited = new Promise<number | null>((r) => child.once("close", (code) => r(code)));
    const job = await waitFor(async () => {
      const r = await cli(["jobs", "list", "--tag", "ctrl-c", "--status", "Running", ...as(n.url, alice)]);
      return (JSON.parse(r.stdout) as { jobs: { id: string }[] }).jobs[0];
    });
    child.kill("SIGINT");
    expect(await exited).toBe(130);
    expect(stderr).toContain(
      `stopped following job ${job.id}, which goes on: \`launcher-fleet jobs wait ${job.id}\``,
    );
    const still = await cli(["jobs", "get", job.id, "--fields", "status", ...as(n.url, alice)]);
    expect(JSON.parse(still.stdout)).toMatchObject({ status: "Running" });
    await control(n, alice, job.id, "kill");
  });

  it("`jobs wait` of a finished job answers at once with its exit code", async () => {
    const job = await submit(n, alice, { command: "exit 4" });
    await waitStatus(n, alice, job.id, "Finished");
    const r = await cli(["jobs", "wait", job.id, "--table", ...as(n.url, alice)]);
    expect(r.code).toBe(4);
    expect(r.stdout).toBe(`job ${job.id} Finished (exit code 4)\n`);
  });
});

async function waitFor<T>(fn: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const v = await fn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("waitFor: gave up");
}

describe("errors name what failed", () => {
  const commands: string[][] = [
    ["nodes"],
    ["nodes", "drain", "node-1"],
    ["cluster-info"],
    ["jobs", "list"],
    ["jobs", "get", "x"],
    ["jobs", "control", "x", "kill"],
    ["jobs", "status"],
    ["jobs", "status", "x"],
    ["jobs", "output", "x"],
    ["jobs", "wait", "x"],
    ["jobs", "network", "x"],
    ["jobs", "resources", "x"],
  ];
  it.concurrent.each(commands)("%s … with nothing listening: the URL and the cause", async (...args) => {
    const r = await cli([...args, "--url", closedUrl, "--token", alice]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr.trim()).toBe(`cannot reach ${closedUrl}: ECONNREFUSED`);
  });

  it("a host that does not resolve, a URL that is not one", async () => {
    const r = await cli(["nodes", "--url", "http://no-such-host.invalid:5559", "--token", alice]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe("cannot reach http://no-such-host.invalid:5559: ENOTFOUND");
    const bad = await cli(["nodes", "--url", "localhost:5559"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--url "localhost:5559" is not an http:// or https:// URL');
  });

  it("a 401 without a token says how to give one", async () => {
    const r = await cli(["nodes", "--url", n.url]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^401: .*\(no token: set LAUNCHER_TOKEN or give --token\)$/m);
  });

  describe("against a fake API (a load balancer's pages, the drain contract)", () => {
    let server: Server;
    let url: string;
    const seen: { method: string; path: string; auth: string | undefined }[] = [];
    beforeAll(async () => {
      server = createServer((req: IncomingMessage, res: ServerResponse) => {
        seen.push({ method: req.method ?? "", path: req.url ?? "", auth: req.headers.authorization });
        const send = (status: number, type: string, body: string) => {
          res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(body) });
          res.end(body);
        };
        if (req.url === "/nodes/node-2/drain" && req.method === "POST") {
          const isAdmin = req.headers.authorization === `Bearer ${admin}`;
          if (!isAdmin)
            return send(
              403,
              "application/json",
              '{"code":2,"name":"InvalidRequest","message":"Only admins may drain nodes"}',
            );
          return send(202, "application/json", '{"id":"node-2","status":"Draining"}');
        }
        if (req.url?.startsWith("/nodes/")) {
          return send(
            404,
            "application/json",
            '{"code":2,"name":"InvalidRequest","message":"Node node-9 is not known"}',
          );
        }
        if (req.url === "/cluster-info")
          return send(
            502,
            "text/html",
            "<html><body><h1>502 Bad Gateway</h1>\nThe server returned an invalid or incomplete response.\n</body></html>\n",
          );
        if (req.url === "/jobs?tags=text") return send(500, "text/plain", "upstream exploded\nsecond line");
        // HAProxy's own page when no server is up (its errorfile default).
        send(
          503,
          "text/html",
          "<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this request.\n</body></html>\n",
        );
      });
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(() => new Promise<void>((r) => server.close(() => r())));

    it("HAProxy's HTML 503 is summarised in one line, never dumped", async () => {
      for (const args of [["nodes"], ["jobs", "list"], ["jobs", "status", "x"], ["jobs", "output", "x"]]) {
        const r = await cli([...args, ...as(url, alice)]);
        expect(r.code).toBe(1);
        expect(r.stderr.trim()).toBe(
          `503 Service Unavailable from ${url} (the load balancer found no node ready: is Redis up?)`,
        );
        expect(r.stderr).not.toContain("<");
      }
      const page502 = await cli(["cluster-info", ...as(url, alice)]);
      expect(page502.stderr.trim()).toBe(
        `502 Bad Gateway from ${url} (the load balancer got no valid answer from a node)`,
      );
      const text = await cli(["jobs", "list", "--tag", "text", ...as(url, alice)]);
      expect(text.stderr.trim()).toBe(`500 Internal Server Error from ${url}: upstream exploded`);
    });

    it("submit retries the 503 with one Idempotency-Key, then gives up in words", async () => {
      const r = await cli(["jobs", "submit", "--command", "true", ...as(url, alice)]);
      expect(r.code).toBe(1);
      const lines = r.stderr.trim().split("\n");
      expect(lines.at(-1)).toBe(
        `503 Service Unavailable from ${url} (the load balancer found no node ready: is Redis up?)`,
      );
      expect(lines[0]).toMatch(/retrying in 250 ms \(same Idempotency-Key\)$/);
    });

    it("nodes drain ID: POST /nodes/{id}/drain (202), 403 for a non-admin, 404 for an unknown node", async () => {
      seen.length = 0;
      const ok = await cli(["nodes", "drain", "node-2", ...as(url, admin)]);
      expect(ok.code).toBe(0);
      expect(JSON.parse(ok.stdout)).toEqual({ id: "node-2", status: "Draining" });
      expect(seen).toEqual([{ method: "POST", path: "/nodes/node-2/drain", auth: `Bearer ${admin}` }]);
      const human = await cli(["nodes", "drain", "node-2", "--table", ...as(url, admin)]);
      expect(human.stdout).toMatch(/^node-2: Draining/);
      const refused = await cli(["nodes", "drain", "node-2", ...as(url, alice)]);
      expect(refused.code).toBe(1);
      expect(refused.stderr.trim()).toBe("403: Only admins may drain nodes");
      const unknown = await cli(["nodes", "drain", "node-9", ...as(url, admin)]);
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toContain("404: Node node-9 is not known");
      expect((await cli(["nodes", "drain", ...as(url, admin)])).code).toBe(2);
    });
  });
});

/** Runs the CLI until its stdout matches `done`, then stops it (SIGTERM); returns what it printed. */
function cliUntil(args: string[], done: (stdout: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["dist/cli.js", ...args], {
      env: { PATH: process.env.PATH },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
      if (done(stdout)) child.kill("SIGTERM");
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    child.once("error", reject);
    child.once("close", () => {
      clearTimeout(timer);
      if (done(stdout)) resolve(stdout);
      else reject(new Error(`stopped before the expected output; stdout: ${stdout} stderr: ${stderr}`));
    });
  });
}

describe("nodes drain and nodes --watch against real nodes", () => {
  it("a user may not drain (403); an admin drains another node through this one; --watch shows it", async () => {
    const id = drainee.settings.nodeId;
    const refused = await cli(["nodes", "drain", id, ...as(n.url, alice)]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^403: /);
    const unknown = await cli(["nodes", "drain", "no-such-node", ...as(n.url, admin)]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^404: .*no-such-node/);

    const draining = `"id":"${id}"`;
    const watch = cliUntil(["nodes", "--watch", ...as(n.url, alice)], (out) =>
      out.split("\n").some((l) => l.includes(draining) && /"status":"(Draining|Offline)"/.test(l)),
    );
    // The first line (the whole list) is there before the drain.
    await waitFor(async () =>
      (await cli(["nodes", ...as(n.url, alice)])).stdout.includes(id) ? true : undefined,
    );
    const ok = await cli(["nodes", "drain", id, ...as(n.url, admin)]);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toEqual({ id, status: "Draining" });
    const lines = (await watch).trim().split("\n");
    expect(JSON.parse(lines[0]!)).toMatchObject({
      nodes: expect.arrayContaining([expect.objectContaining({ id })]),
    });
    await drainee.node.closed;
  });
});

describe("--wait through a connection that breaks (a node going away behind the load balancer)", () => {
  let server: Server;
  let url: string;
  const hits: string[] = [];
  beforeAll(async () => {
    const line = (o: unknown) => `${JSON.stringify(o)}\n`;
    const count: Record<string, number> = {};
    server = createServer((req, res) => {
      const path = req.url ?? "";
      hits.push(`${req.method} ${path}`);
      const base = path.split("?")[0]!;
      count[base] = (count[base] ?? 0) + 1;
      const n = count[base];
      const cut = (text: string) => res.write(text, () => req.socket.destroy());
      if (req.method === "POST" && path === "/jobs") {
        res.writeHead(201, { "content-type": "application/json" });
        return res.end(JSON.stringify({ id: "j1", status: "Pending" }));
      }
      if (path === "/jobs/j1") {
        res.writeHead(200, { "content-type": "application/json" });
        return res.end(JSON.stringify({ id: "j1", status: "Finished", exitCode: 5 }));
      }
      res.writeHead(200, { "content-type": "application/x-ndjson" });
      const event = (seqId: number, eventId: string, status: string) =>
        line({ seqId, eventId, id: "j1", name: "", status, lastUpdateTime: new Date().toISOString() });
      if (path === "/jobs/j1/status") return cut(event(1, "1-0", "Running"));
      if (path === "/jobs/j1/status?since=1-0") return res.end(event(1, "2-0", "Finished"));
      if (path.startsWith("/jobs/j1/output") && n === 1)
        return cut(line({ seqId: 1, output: "one\n", outputType: "stdout" }));
      if (path.startsWith("/jobs/j1/output"))
        return res.end(
          line({ seqId: 1, output: "one\ntwo\n", outputType: "stdout" }) +
            line({ seqId: 2, output: "err\n", outputType: "stderr" }) +
            line({ seqId: 3, complete: true }),
        );
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it("follows the status again from its last event, and prints each byte of output once", async () => {
    const r = await cli(["jobs", "submit", "--wait", "--command", "x", ...as(url, alice)]);
    expect(r.stdout).toBe("one\ntwo\n");
    expect(r.stderr).toContain("err\n");
    expect(r.stderr).toMatch(
      /^lost the connection to http:\/\/127\.0\.0\.1:\d+: \S+; following job j1 again in 1 s$/m,
    );
    expect(r.stderr).toMatch(/; reading the output of job j1 again in 1 s$/m);
    expect(r.stderr).toContain("job j1 Finished with exit code 5");
    expect(r.code).toBe(5);
    expect(hits).toContain("GET /jobs/j1/status?since=1-0");
  });
});

describe("a node without Redis", () => {
  it("says which Redis (password hidden) did not answer, and why", async () => {
    const port = await freePort();
    const r = await cli(
      ["node"],
      {
        LAUNCHER_REDIS_URL: `redis://bob:hunter2-secret@127.0.0.1:${port}/2`,
        LAUNCHER_AUTH_SECRET: TEST_SECRET,
        LAUNCHER_UNPRIVILEGED: "1",
        LAUNCHER_PORT: "0",
        LAUNCHER_HOST: "127.0.0.1",
        LAUNCHER_SCRATCH_PATH: mkdtempSync(join(tmpdir(), "cli-no-redis-")),
        LAUNCHER_LOG_LEVEL: "fatal",
      },
      40_000,
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `Redis at redis://bob:***@127.0.0.1:${port}/2 did not answer within 10000 ms (last error: connect ECONNREFUSED 127.0.0.1:${port})`,
    );
    expect(r.stderr + r.stdout).not.toContain("hunter2");
  }, 45_000);
});

describe("token for these tests", () => {
  it("a token minted by the CLI works with the new commands", async () => {
    const t = await cli(["token", "--user", "dave"], { LAUNCHER_AUTH_SECRET: TEST_SECRET });
    const r = await cli(["cluster-info", "--url", n.url, "--token", t.stdout.trim()]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      queues: expect.any(Array),
      defaultQueue: expect.any(String),
    });
  });
});
