// The plugin as Posit's Job Launcher runs it on a multi-user host (and as the Go SDK's smoke test
// does): as root, started without --unprivileged, asked by the admin `*` to run a job for a real
// user. The job must run as that user, and an unknown user must get an error and no job.
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uniquePrefix } from "../helpers/redis.js";
import { hostUser, RUN_PRIVILEGED } from "../helpers/users.js";
import { ensureBuilt } from "../topology/ensure-built.js";
import { as, type Message, type PluginDriver, sleep, startPlugin } from "./driver.js";

describe.runIf(RUN_PRIVILEGED)("plugin as root: jobs run as the requested user", () => {
  let plugin: PluginDriver;
  let scratch: string;
  let user: ReturnType<typeof hostUser>;

  beforeAll(async () => {
    await ensureBuilt();
    user = hostUser("lf-plugin-user");
    scratch = mkdtempSync("/tmp/lf-plugin-");
    chmodSync(scratch, 0o711);
    plugin = await startPlugin({
      prefix: uniquePrefix("plugin-root"),
      env: { LAUNCHER_UNPRIVILEGED: "0", LAUNCHER_SCRATCH_PATH: scratch },
    });
  }, 60_000);
  afterAll(async () => {
    await plugin?.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  async function finished(id: string): Promise<Message> {
    for (let i = 0; i < 100; i++) {
      const r = await plugin.request({ messageType: 3, ...as("*"), jobId: id });
      const job = (r.jobs as Message[])[0]!;
      if (["Finished", "Failed"].includes(job.status)) return job;
      await sleep(100);
    }
    throw new Error(`job ${id} did not finish`);
  }

  it("runs the job with the user's uid and streams its output", async () => {
    const r = await plugin.request({
      messageType: 2,
      ...as("*"),
      job: { command: "id -un; id -u", user: user.name },
    });
    expect(r, JSON.stringify(r)).toMatchObject({ messageType: 2, jobs: [{ user: user.name }] });
    const id = (r.jobs as Message[])[0]!.id as string;
    expect(await finished(id)).toMatchObject({ status: "Finished", exitCode: 0 });
    const stream = plugin.nextId();
    plugin.send({ messageType: 6, requestId: stream, ...as("*"), jobId: id, outputType: 2 });
    await plugin.waitForStream(stream, (m) => m.complete === true);
    const text = plugin
      .streamMessages(stream)
      .map((m) => m.output ?? "")
      .join("");
    expect(text).toBe(`${user.name}\n${user.uid}\n`);
  });

  it("answers InvalidRequest for a user the host does not know, and creates no job", async () => {
    const r = await plugin.request({
      messageType: 2,
      ...as("*"),
      job: { command: "id", user: "no-such-lf-user" },
    });
    expect(r).toMatchObject({ messageType: -1, errorCode: 2 });
    expect(String(r.errorMessage)).toContain('no such user on this host: "no-such-lf-user"');
    const list = await plugin.request({ messageType: 3, ...as("*"), jobId: "*" });
    expect((list.jobs as Message[]).filter((j) => j.user === "no-such-lf-user")).toEqual([]);
  });
});
