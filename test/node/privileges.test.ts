// Who a job runs as, and which files the node touches for it: a real node, as root, with real host
// users (useradd), against the attacks of docs/http-api.md "Users, privileges and limits".
import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, readStream, startTestNode, TEST_SECRET, type TestNode, token } from "../helpers/nodes.js";
import { uniquePrefix } from "../helpers/redis.js";
import { hostUser, RUN_PRIVILEGED } from "../helpers/users.js";
import { getJob, listJobs, submit, waitStatus, waitTerminal } from "./helpers.js";

/** A scratch dir other users can pass through (mkdtemp makes 0700 dirs). */
function scratchDir(): string {
  const dir = mkdtempSync("/tmp/lf-priv-");
  chmodSync(dir, 0o711);
  return dir;
}

/** All of a job's output, as text, and the stream's HTTP status. */
async function output(n: TestNode, tok: string, id: string) {
  const res = await readStream<{ output?: string; complete?: boolean; code?: number }>(
    n.url,
    `/jobs/${id}/output`,
    { token: tok, until: (m) => m.complete === true },
  );
  return {
    status: res.status,
    text: res.messages.map((m) => m.output ?? "").join(""),
    messages: res.messages,
  };
}

describe.runIf(RUN_PRIVILEGED)("privileged mode: each job runs as its own user", () => {
  let node: TestNode;
  let ann: ReturnType<typeof hostUser>;
  let bob: ReturnType<typeof hostUser>;
  let annTok: string;
  let adminTok: string;
  const dirs: string[] = [];

  beforeAll(async () => {
    ann = hostUser("lf-ann", ["lf-team"]);
    bob = hostUser("lf-bob");
    const scratchPath = scratchDir();
    dirs.push(scratchPath);
    node = await startTestNode(uniquePrefix("priv"), { unprivileged: false, scratchPath });
    annTok = await token("lf-ann");
    adminTok = await token("admin", { admin: true });
  });
  afterAll(async () => {
    await node?.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  /** A dir owned by `user`, reachable by everyone. */
  function userDir(user: { uid: number; gid: number }): string {
    const dir = mkdtempSync("/tmp/lf-user-");
    chownSync(dir, user.uid, user.gid);
    chmodSync(dir, 0o755);
    dirs.push(dir);
    return dir;
  }

  it("refuses a user the host does not know, with 400 and no job", async () => {
    const before = (await listJobs(node, adminTok)).length;
    const res = await api(node.url, "POST", "/jobs", {
      token: await token("ghost-user"),
      body: { command: "id" },
    });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({
      code: 2,
      name: "InvalidRequest",
      message: 'user: no such user on this host: "ghost-user"',
    });
    expect((await listJobs(node, adminTok)).length).toBe(before);
  });

  it("refuses root's jobs (uid 0) unless LAUNCHER_ALLOW_ROOT_JOBS", async () => {
    const before = (await listJobs(node, adminTok)).length;
    const res = await api(node.url, "POST", "/jobs", { token: await token("root"), body: { command: "id" } });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 2, message: expect.stringMatching(/^user: "root" has uid 0/) });
    const asAdmin = await api(node.url, "POST", "/jobs", {
      token: adminTok,
      body: { command: "id", user: "root" },
    });
    expect(asAdmin.status).toBe(400);
    expect((await listJobs(node, adminTok)).length).toBe(before);
  });

  it("runs a job with its user's uid, gid, groups and environment, output in a 0700 dir of the user's", async () => {
    const job = await submit(node, annTok, { command: "id -u; id -g; id -G; echo $USER $HOME; env | wc -l" });
    expect((await waitTerminal(node, annTok, job.id)).exitCode).toBe(0);
    const { text } = await output(node, annTok, job.id);
    const [uid, gid, groups, env] = text.trim().split("\n");
    expect(Number(uid)).toBe(ann.uid);
    expect(Number(gid)).toBe(ann.gid);
    expect(new Set(groups!.split(" ").map(Number))).toEqual(new Set(ann.groups));
    expect(env).toBe(`lf-ann ${ann.home}`);
    const dir = statSync(join(node.settings.scratchPath, "output", "lf-ann"));
    expect(dir.uid).toBe(ann.uid);
    expect(dir.mode & 0o777).toBe(0o700);
    expect(statSync(job.stdoutFile!).uid).toBe(ann.uid);
  });

  it("runs an admin's submission for another user as that user", async () => {
    const job = await submit(node, adminTok, { command: "id -u", user: "lf-bob" });
    expect((await waitTerminal(node, adminTok, job.id)).exitCode).toBe(0);
    expect((await output(node, adminTok, job.id)).text).toBe(`${bob.uid}\n`);
  });

  it("never writes or streams the node's environment or /etc/shadow for a user", async () => {
    for (const file of ["/proc/self/environ", "/etc/shadow"]) {
      const job = await submit(node, annTok, { command: "echo hi", stdoutFile: file });
      const done = await waitTerminal(node, annTok, job.id);
      expect(done.status).toBe("Failed");
      expect(done.statusMessage).toContain(`stdout file "${file}": Permission denied`);
      const out = await output(node, annTok, job.id);
      expect(out.text).toBe("");
      expect(JSON.stringify(out.messages)).not.toContain(TEST_SECRET);
    }
    expect(readFileSync("/etc/shadow", "utf8")).not.toContain("hi\n");
  });

  it("creates nothing outside its scratch dir for a job: a missing output dir fails the job", async () => {
    const rootOwned = mkdtempSync("/tmp/lf-rootdir-");
    chmodSync(rootOwned, 0o755);
    dirs.push(rootOwned);
    const file = join(rootOwned, "made", "by", "node", "out");
    const job = await submit(node, annTok, { command: "echo hi", stdoutFile: file });
    const done = await waitTerminal(node, annTok, job.id);
    expect(done.status).toBe("Failed");
    expect(done.statusMessage).toContain(`stdout file "${file}": No such file or directory`);
    expect(() => statSync(join(rootOwned, "made"))).toThrow(/ENOENT/);
  });

  it("stops streaming a file the job swapped for a symlink to /etc/shadow", async () => {
    const dir = userDir(ann);
    const file = join(dir, "out");
    const job = await submit(node, annTok, {
      command: `echo before; rm -f ${file}; ln -s /etc/shadow ${file}`,
      stdoutFile: file,
    });
    expect((await waitTerminal(node, annTok, job.id)).exitCode).toBe(0);
    const out = await output(node, annTok, job.id);
    expect(out.status).toBe(404);
    expect(out.messages[0]).toMatchObject({ code: 7, name: "JobOutputNotFound" });
    expect(JSON.stringify(out.messages)).not.toContain("root:");
  });

  it("fails a job whose output is a FIFO after 10 s, while the node's other jobs start and end", async () => {
    const dir = userDir(ann);
    const fifo = join(dir, "fifo");
    execFileSync("mkfifo", ["-m", "666", fifo]);
    const stuck = await submit(node, annTok, { command: "echo never", stdoutFile: fifo });
    const other = await submit(node, annTok, { command: "echo fine" });
    expect((await waitTerminal(node, annTok, other.id)).exitCode).toBe(0);
    // The other job ran while the stuck one was still launching: not queued behind it.
    expect((await getJob(node, annTok, stuck.id)).status).not.toBe("Failed");
    expect((await output(node, annTok, other.id)).text).toBe("fine\n");
    const failed = await waitStatus(node, annTok, stuck.id, "Failed", 20_000);
    expect(failed.statusMessage).toMatch(/did not start within 10 s/);
  }, 30_000);
});

describe.runIf(RUN_PRIVILEGED)("privileged mode with LAUNCHER_ALLOW_ROOT_JOBS=1", () => {
  let node: TestNode;
  const dirs: string[] = [];
  beforeAll(async () => {
    const scratchPath = scratchDir();
    dirs.push(scratchPath);
    node = await startTestNode(uniquePrefix("rootjobs"), {
      unprivileged: false,
      allowRootJobs: true,
      scratchPath,
    });
  });
  afterAll(async () => {
    await node?.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("runs root's job as uid 0, but streams only files its launch created", async () => {
    const tok = await token("root");
    const job = await submit(node, tok, { command: "id -u" });
    expect((await waitTerminal(node, tok, job.id)).exitCode).toBe(0);
    expect((await output(node, tok, job.id)).text).toBe("0\n");
    // A root job may append to a file that exists already (a system file, say): never streamed.
    const dir = mkdtempSync("/tmp/lf-rootjob-");
    dirs.push(dir);
    const existing = join(dir, "existing");
    execFileSync("sh", ["-c", `echo secret > ${existing}`]);
    const appends = await submit(node, tok, { command: "true", stdoutFile: existing });
    expect((await waitTerminal(node, tok, appends.id)).exitCode).toBe(0);
    const out = await output(node, tok, appends.id);
    expect(out.status).toBe(404);
    expect(out.messages[0]).toMatchObject({ code: 7 });
  });
});

describe("unprivileged mode: jobs run as the node's user, its secrets still unreadable", () => {
  let node: TestNode;
  beforeAll(async () => {
    node = await startTestNode(uniquePrefix("unpriv"));
  });
  afterAll(() => node?.close());

  it("never streams /proc/self/environ (the node's environment) as a job's output", async () => {
    const tok = await token("mallory");
    const job = await submit(node, tok, { command: "true", stdoutFile: "/proc/self/environ" });
    await waitTerminal(node, tok, job.id);
    const out = await output(node, tok, job.id);
    expect(JSON.stringify(out.messages)).not.toContain(TEST_SECRET);
    expect(out.text).toBe("");
  });

  it("fails a job whose output is a FIFO without a reader at once", async () => {
    const tok = await token("mallory");
    const dir = mkdtempSync("/tmp/lf-fifo-");
    const fifo = join(dir, "fifo");
    execFileSync("mkfifo", [fifo]);
    const job = await submit(node, tok, { command: "echo x", stdoutFile: fifo });
    const done = await waitTerminal(node, tok, job.id);
    expect(done.status).toBe("Failed");
    expect(done.statusMessage).toContain("a FIFO with no reader");
    rmSync(dir, { recursive: true, force: true });
  });
});
