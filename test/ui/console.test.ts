// The web console (/ui) in a real browser: Debian's chromium driven by playwright-core, through a
// real HAProxy in front of 3 node processes. It signs in with `#token=`, sees the nodes Online,
// submits a job from the page and watches it finish and its output arrive without a reload, stops a
// running job with its button, sees the jobs list follow a job submitted elsewhere, sees a
// SIGKILLed node turn Offline, resumes the jobs' status stream (`?since=`) when its node is
// SIGKILLed, and drains the last node with its button (then no node answers: said in words).
// Screenshots of each view are taken; with UPDATE_SCREENSHOTS=1 they replace
// docs/images/console-*.png (the README shows them).
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  findFreePortRange,
  freePort,
  type LocalFleet,
  REPO_ROOT,
  startLocalFleet,
} from "../../src/topology/index.js";
import { uniquePrefix } from "../helpers/redis.js";
import { ensureBuilt } from "../topology/ensure-built.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
/** In CI a missing browser is a failure; elsewhere the file is skipped with a note. */
const runnable = existsSync(CHROMIUM) || process.env.CI === "true";
if (!runnable) console.warn(`test/ui: ${CHROMIUM} not found (apt-get install chromium); skipped`);

// The page's globals that the functions run in the page use (this project's TypeScript has no DOM
// types). Functions, not strings: the console's CSP forbids evaluating strings.
declare const document: {
  querySelectorAll(
    selector: string,
  ): ArrayLike<{ textContent: string | null }> & Iterable<{ textContent: string | null }>;
  querySelector(selector: string): { textContent: string | null } | null;
};
declare const window: { stayed?: boolean };

const IMAGES = join(REPO_ROOT, "docs", "images");
const WAIT_MS = 20_000;

let fleet: LocalFleet;
let lb: string;
let token: string;
let scratch: string;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const problems: string[] = [];
let longOne: string | undefined;

async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${lb}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** Waits until `selector` matches exactly `count` elements (or at least one when count is omitted). */
async function waitForCount(selector: string, count?: number, timeout = WAIT_MS): Promise<void> {
  await page.waitForFunction(
    ([sel, n]) => {
      const found = document.querySelectorAll(sel).length;
      return n === null ? found > 0 : found === n;
    },
    [selector, count ?? null] as const,
    { timeout },
  );
}

async function screenshot(name: string): Promise<void> {
  const file = join(scratch, `${name}.png`);
  // The page down to the end of the view (no empty screen below it), at most one screen.
  const box = await page.locator("main").boundingBox();
  const viewport = page.viewportSize()!;
  const height = Math.min(viewport.height, Math.ceil((box?.y ?? 0) + (box?.height ?? viewport.height)));
  await page.screenshot({ path: file, clip: { x: 0, y: 0, width: viewport.width, height } });
  if (process.env.UPDATE_SCREENSHOTS === "1") {
    mkdirSync(IMAGES, { recursive: true });
    copyFileSync(file, join(IMAGES, `${name}.png`));
  }
}

beforeAll(async () => {
  if (!runnable) return;
  await ensureBuilt();
  // ensureBuilt compiles TypeScript only: the console's files are copied as the build would.
  cpSync(join(REPO_ROOT, "src/http/console"), join(REPO_ROOT, "dist/http/console"), { recursive: true });
  scratch = mkdtempSync(join(tmpdir(), "launcher-ui-"));
  fleet = await startLocalFleet({
    nodes: 3,
    basePort: await findFreePortRange(3),
    lbPort: await freePort(),
    redisUrl: inject("redisUrl"),
    scratchPath: scratch,
    haproxy: true,
    env: {
      LAUNCHER_KEY_PREFIX: uniquePrefix("ui"),
      LAUNCHER_DRAIN_MS: "300",
      LAUNCHER_LOG_LEVEL: "warn",
      LAUNCHER_HEARTBEAT_MS: "300",
      LAUNCHER_OFFLINE_AFTER_MS: "1500",
      LAUNCHER_MAX_RUNNING_JOBS: "4",
    },
  });
  lb = fleet.lbUrl!;
  token = await fleet.adminToken("1h");
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    // CI runs as root, where Chromium's sandbox cannot start.
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
  context = await browser.newContext({ viewport: { width: 1200, height: 640 } });
  page = await context.newPage();
  // Anything the page logs as an error (a CSP refusal, a failed module, an exception) fails the file.
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
}, 180_000);

afterAll(async () => {
  await browser?.close().catch(() => undefined);
  await fleet?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
}, 60_000);

describe.skipIf(!runnable)("web console in chromium, through HAProxy", () => {
  it("serves its files without a token, with a Content-Security-Policy", async () => {
    const index = await fetch(`${lb}/ui/`);
    expect(index.status).toBe(200);
    expect(index.headers.get("content-type")).toMatch(/text\/html/);
    expect(index.headers.get("content-security-policy")).toMatch(/default-src 'self'/);
    const script = await fetch(`${lb}/ui/js/main.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toMatch(/javascript/);
    const bare = await fetch(`${lb}/ui`, { redirect: "manual" });
    expect(bare.status).toBe(302);
    expect(bare.headers.get("location")).toBe("ui/");
    // The API itself still wants a token.
    expect((await fetch(`${lb}/nodes`)).status).toBe(401);
  });

  it("refuses a bad token in words", async () => {
    const other = await context.newPage();
    await other.goto(`${lb}/ui/`);
    await other.fill("#token", "not-a-token");
    await other.click("#sign-in");
    await other.locator("form.sign-in .error").waitFor({ state: "visible", timeout: WAIT_MS });
    expect(await other.locator("form.sign-in .error").textContent()).toMatch(/Invalid token/);
    await other.close();
  });

  it("signs in with #token= and shows three Online nodes, live", async () => {
    await page.goto(`${lb}/ui/#token=${token}`);
    await waitForCount('#nodes tr[data-node] [data-col="status"] [data-status="Online"]', 3);
    // The token left the address bar (and the history entry).
    expect(page.url()).not.toContain("token=");
    expect(page.url()).toMatch(/#\/nodes$/);
    const ids = await page
      .locator("#nodes tr[data-node]")
      .evaluateAll((rows) => rows.map((r) => r.getAttribute("data-node")));
    expect(ids).toEqual(fleet.nodes.map((n) => n.id));
    for (const n of fleet.nodes) {
      const row = page.locator(`#nodes tr[data-node="${n.id}"]`);
      expect(await row.locator('[data-col="address"]').textContent()).toBe(`${n.ip}:${n.port}`);
      expect(await row.locator('[data-col="online"]').textContent()).toBe("yes");
      expect(await row.locator('[data-col="jobs"]').textContent()).toBe("0 / 4");
      expect(await row.locator('[data-col="lastSeen"]').textContent()).toMatch(/s ago$/);
    }
  }, 60_000);

  it("works directly on a node too (relative URLs)", async () => {
    const direct = await context.newPage();
    direct.on("pageerror", (err) => problems.push(`page error (direct): ${err.message}`));
    await direct.goto(`${fleet.nodes[0]!.url}/ui/#token=${token}`);
    await direct
      .locator('#nodes tr[data-node] [data-col="status"] [data-status="Online"]')
      .nth(2)
      .waitFor({ timeout: WAIT_MS });
    expect(direct.url()).not.toContain("token=");
    await direct.close();
  });

  it("submits a job from the page and watches it finish, with its output, without a reload", async () => {
    await page.click('nav a[data-nav="submit"]');
    await page.fill(
      "#command",
      "echo hello from the console; sleep 1; echo to stderr >&2; sleep 1; echo done",
    );
    await page.fill("#name", "console-hello");
    await page.fill("#tags", "ui-test");
    await page.click("#submit-job");
    await page.waitForURL(/#\/jobs\/[^/]+$/, { timeout: WAIT_MS });
    const jobId = decodeURIComponent(page.url().split("#/jobs/")[1]!);
    // Marks this document: a reload or a navigation would lose it.
    await page.evaluate(() => {
      window.stayed = true;
    });
    await waitForCount('#job-status [data-status="Finished"]', 1);
    await page.locator('#output[data-complete="true"]').waitFor({ timeout: WAIT_MS });
    const output = await page.locator("#output").textContent();
    expect(output).toContain("hello from the console");
    expect(output).toContain("to stderr");
    expect(output).toContain("done");
    expect(await page.locator("#output .stderr").count()).toBeGreaterThan(0);
    const history = await page
      .locator("#history tr")
      .evaluateAll((rows) => rows.map((r) => r.getAttribute("data-status")));
    expect(history).toContain("Running");
    expect(history.at(-1)).toBe("Finished");
    expect(await page.evaluate(() => window.stayed)).toBe(true);
    // The spec is read again when the status changes: its exit code can come after the badge.
    await waitForCount('#spec [data-field="exitCode"]', 1);
    expect(await page.locator('#spec [data-field="exitCode"]').textContent()).toBe("0");
    // A finished job offers no control.
    expect(await page.locator("#controls button").count()).toBe(0);
    expect((await api<{ status: string }>("GET", `/jobs/${jobId}`)).status).toBe("Finished");
    await screenshot("console-job");
  }, 60_000);

  it("stops a running job with its Stop button", async () => {
    await page.click('nav a[data-nav="submit"]');
    await page.fill("#command", "echo sleeping; exec sleep 300");
    await page.fill("#name", "console-sleep");
    await page.click("#submit-job");
    await page.waitForURL(/#\/jobs\/[^/]+$/, { timeout: WAIT_MS });
    const jobId = decodeURIComponent(page.url().split("#/jobs/")[1]!);
    await waitForCount('#job-status [data-status="Running"]', 1);
    // Running allows suspend, stop and kill; not resume or cancel.
    await waitForCount("#controls button", 3);
    expect(
      await page.locator("#controls button").evaluateAll((b) => b.map((x) => x.getAttribute("data-op"))),
    ).toEqual(["suspend", "stop", "kill"]);
    await page.click('#controls button[data-op="stop"]');
    await waitForCount('#job-status [data-status]:not([data-status="Running"])', 1);
    const shown = await page.locator("#job-status [data-status]").getAttribute("data-status");
    const recorded = (await api<{ status: string }>("GET", `/jobs/${jobId}`)).status;
    expect(["Finished", "Failed", "Killed"]).toContain(recorded);
    expect(shown).toBe(recorded);
    // The control call's answer can arrive after the status stream has shown the job's end.
    await waitForCount(".note:not([hidden])", 1);
    expect(await page.locator(".note").textContent()).toMatch(/SIGTERM/);
  }, 60_000);

  it("lists jobs, filters them, and follows a job submitted elsewhere to its end", async () => {
    await page.click('nav a[data-nav="jobs"]');
    await waitForCount("#jobs tr[data-job]", 2);
    // One submitted elsewhere (through the API) appears and finishes without a reload.
    const { id } = await api<{ id: string }>("POST", "/jobs", {
      command: "sleep 2",
      name: "from-the-api",
      tags: ["ui-test"],
    });
    await waitForCount(`#jobs tr[data-job="${id}"] [data-status="Running"]`, 1);
    const running = await api<{ id: string }>("POST", "/jobs", {
      command: "sleep 60",
      name: "long-one",
      tags: ["ui-test"],
    });
    await waitForCount(`#jobs tr[data-job="${running.id}"] [data-status="Running"]`, 1);
    await screenshot("console-jobs");
    await waitForCount(`#jobs tr[data-job="${id}"] [data-status="Finished"]`, 1);
    // Filters: the tag (the API's) and the status (applied as statuses change).
    await page.fill('#job-filters input[name="tags"]', "ui-test");
    await page.check('#job-filters input[value="Finished"]');
    await page.click('#job-filters button[type="submit"]');
    await page.waitForURL(/#\/jobs\?statuses=Finished&tags=ui-test$/, { timeout: WAIT_MS });
    await waitForCount("#jobs tr[data-job]", 2);
    const names = await page.locator('#jobs tr[data-job] [data-col="name"]').allTextContents();
    expect(names.sort()).toEqual(["console-hello", "from-the-api"]);
    longOne = running.id;
  }, 60_000);

  it("shows a SIGKILLed node turn Offline", async () => {
    await page.click('nav a[data-nav="nodes"]');
    await waitForCount('#nodes tr[data-node] [data-col="status"] [data-status="Online"]', 3);
    // The long job holds a slot somewhere.
    await waitForCount('#nodes tr[data-node] [data-col="jobs"]', 3);
    await page.waitForFunction(
      () => [...document.querySelectorAll('#nodes [data-col="jobs"]')].some((c) => c.textContent === "1 / 4"),
      null,
      { timeout: WAIT_MS },
    );
    await screenshot("console-nodes");
    if (longOne) await api("POST", `/jobs/${longOne}/control`, { operation: "kill" });
    const victim = fleet.nodes[2]!;
    await fleet.stopNode(2, "SIGKILL");
    await waitForCount(`#nodes tr[data-node="${victim.id}"] [data-status="Offline"]`, 1);
    expect(await page.locator(`#nodes tr[data-node="${victim.id}"] [data-col="online"]`).textContent()).toBe(
      "no",
    );
    // The others stay Online.
    await waitForCount('#nodes tr[data-node] [data-col="status"] [data-status="Online"]', 2);
  }, 60_000);

  it("resumes the jobs' status stream with ?since= when its node is SIGKILLed", async () => {
    /** Open status streams per node that is running (index → count). */
    const statusStreams = async () => {
      const counts = new Map<number, number>();
      for (const [i, n] of fleet.nodes.entries()) {
        if (n.pid === undefined) continue;
        const text = await (await fetch(`${n.url}/metrics`)).text();
        counts.set(i, Number(/^launcher_open_streams\{kind="status"\} (\d+)/m.exec(text)?.[1] ?? 0));
      }
      return counts;
    };
    const before = await statusStreams();
    await page.click('nav a[data-nav="jobs"]');
    // Live, and an event received: the page knows where to resume from.
    await page.locator('.live[data-live="live"][data-since]').waitFor({ timeout: WAIT_MS });
    // The node HAProxy gave the page's status stream to: the one whose count of open status streams
    // went up (streams of pages left earlier may still be closing elsewhere).
    let serving: number | undefined;
    let seen = "";
    const deadline = Date.now() + WAIT_MS;
    while (serving === undefined && Date.now() < deadline) {
      const now = await statusStreams();
      const up = [...now].filter(([i, n]) => n > (before.get(i) ?? 0)).map(([i]) => i);
      seen = JSON.stringify({ before: [...before], now: [...now] });
      if (up.length === 1) serving = up[0];
      else await new Promise((r) => setTimeout(r, 200));
    }
    expect(serving, seen).toBeDefined();
    const asked: string[] = [];
    page.on("request", (r) => {
      if (r.url().includes("/jobs/*/status")) asked.push(r.url());
    });
    await fleet.stopNode(serving!, "SIGKILL");
    // Submitted while the page reconnects; HAProxy sends it to a node that is alive.
    const { id } = await api<{ id: string }>("POST", "/jobs", {
      command: "echo after",
      name: "after-the-kill",
    });
    await waitForCount(`#jobs tr[data-job="${id}"] [data-status="Finished"]`, 1);
    expect(asked, JSON.stringify({ asked, serving })).toContainEqual(
      expect.stringMatching(/[?&]since=[^&]+/),
    );
    await page.locator('.live[data-live="live"]').waitFor({ timeout: WAIT_MS });
  }, 60_000);

  it("drains the last node with its Drain button, then says in words that no node answers", async () => {
    await page.click('nav a[data-nav="nodes"]');
    await waitForCount('#nodes tr[data-node] [data-col="status"] [data-status="Online"]', 1);
    const last = fleet.nodes.find((n) => n.pid !== undefined)!;
    page.once("dialog", (dialog) => void dialog.accept());
    await page.click(`#nodes tr[data-node="${last.id}"] button`);
    await waitForCount(`#nodes tr[data-node="${last.id}"] [data-status="Draining"]`, 1);
    // Its streams end saying so (in words); it exits after LAUNCHER_DRAIN_MS, and then HAProxy has no
    // node for the page's reconnections: its answer is shown in words too (not as an HTML page).
    await page.waitForFunction(
      () =>
        /retrying in/.test(document.querySelector(".live")?.textContent ?? "") &&
        !/shutting down/.test(document.querySelector(".live")?.textContent ?? ""),
      null,
      { timeout: WAIT_MS },
    );
    const said = (await page.locator(".live").textContent()) ?? "";
    expect(said).not.toMatch(/<|html/i);
    console.log(`with no node left, the nodes view says: ${said}`);
  }, 60_000);

  it("logged no error in the page (CSP refusals included)", () => {
    // A node killed under an open stream is expected to break a fetch; nothing else is.
    expect(problems.filter((p) => !/net::ERR_|Failed to load resource/.test(p))).toEqual([]);
  });
});
