// The web console's files (src/http/console.ts) are served read-only from the console directory:
// GET and HEAD only, no directory listing, no dotfiles, nothing outside the directory (no
// traversal, encoded or not), and nothing else of src/ or the repository.
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONSOLE_ROOT } from "../../src/http/console.js";
import { makeApp, type TestApp } from "./helpers.js";

let t: TestApp;
beforeAll(async () => {
  t = await makeApp();
});
afterAll(async () => {
  await t.app.close();
});

const ask = (method: "GET" | "HEAD" | "PUT" | "POST" | "DELETE" | "PATCH", url: string) =>
  t.app.inject({ method, url, ...(method === "PUT" || method === "POST" ? { payload: "x" } : {}) });

describe("the console's files", () => {
  it("GET and HEAD serve index.html, with the console's headers", async () => {
    for (const method of ["GET", "HEAD"] as const) {
      const res = await ask(method, "/ui/");
      expect(res.statusCode, method).toBe(200);
      expect(res.headers["content-type"]).toMatch(/text\/html/);
      expect(res.headers["content-security-policy"]).toBe("default-src 'self'; frame-ancestors 'none'");
    }
  });

  it("no way out of the console directory: traversal, encoded or not, is a 404 that leaks nothing", async () => {
    const attempts = [
      "/ui/../package.json",
      "/ui/..%2fpackage.json",
      "/ui/%2e%2e/package.json",
      "/ui/%2e%2e%2fpackage.json",
      "/ui/%2e%2e/",
      "/ui/..%5cpackage.json",
      "/ui/%252e%252e/package.json",
      "/ui/....//....//package.json",
      "/ui/../console.ts",
      "/ui/%2e%2e/console.ts",
      "/ui/%2e%2e/jobs.ts",
      "/ui/%2e%2e/%2e%2e/%2e%2e/package.json",
      "/ui/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
      "/ui//etc/passwd",
      "/ui/%00index.html",
    ];
    for (const url of attempts) {
      const res = await ask("GET", url);
      expect([400, 403, 404], url).toContain(res.statusCode);
      expect(res.body, url).not.toMatch(/"name":\s*"launcher-fleet"|consolePlugin|root:x:0:0/);
    }
  });

  it("no dotfiles and no directory listing", async () => {
    for (const url of ["/ui/.env", "/ui/.git/config", "/ui/.hidden", "/ui/%2eenv"]) {
      expect([403, 404], url).toContain((await ask("GET", url)).statusCode);
    }
    // A dotfile that is there (@fastify/static serves dotfiles unless told not to).
    const dotfile = join(CONSOLE_ROOT, `.test-dotfile-${process.pid}`);
    writeFileSync(dotfile, "secret");
    try {
      const res = await ask("GET", `/ui/.test-dotfile-${process.pid}`);
      expect(res.statusCode).toBe(404);
      expect(res.body).not.toContain("secret");
    } finally {
      rmSync(dotfile, { force: true });
    }
    // A directory that exists has no index.html: no listing.
    const js = await ask("GET", "/ui/js/");
    expect([403, 404]).toContain(js.statusCode);
    expect(js.body).not.toMatch(/<a href=|\.js"/i);
    const dir = await ask("GET", "/ui/no-such-dir/");
    expect([403, 404]).toContain(dir.statusCode);
    expect(dir.body).not.toMatch(/<a href=|index of/i);
  });

  it("read-only: PUT, POST, DELETE and PATCH change nothing (404 or 405)", async () => {
    for (const method of ["PUT", "POST", "DELETE", "PATCH"] as const) {
      for (const url of ["/ui/", "/ui/index.html", "/ui/new.html"]) {
        const res = await ask(method, url);
        expect([404, 405], `${method} ${url}`).toContain(res.statusCode);
      }
    }
    expect((await ask("GET", "/ui/new.html")).statusCode).toBe(404);
  });
});
