// The repository documents itself: every route the nodes serve (their OpenAPI document) and every
// setting they read is in docs/http-api.md or the README, so a new one cannot go undocumented.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SETTING_ENV_NAMES } from "../src/config.js";
import { makeApp } from "./http/helpers.js";

const ROOT = join(import.meta.dirname, "..");
const read = (file: string) => readFileSync(join(ROOT, file), "utf8");

describe("docs/http-api.md", () => {
  it("names every route of the OpenAPI document as `METHOD /path`", async () => {
    const { app } = await makeApp();
    const doc = (await app.inject({ url: "/docs/json" })).json() as { paths: Record<string, object> };
    await app.close();
    const api = read("docs/http-api.md");
    const routes = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(routes.length).toBeGreaterThan(10);
    const missing = routes.filter((route) => !api.includes(`\`${route}`) && !api.includes(`${route}\``));
    expect(missing).toEqual([]);
  });

  it("or the README names every setting", () => {
    const docs = read("docs/http-api.md") + read("README.md");
    const missing = SETTING_ENV_NAMES.filter((name) => !docs.includes(`\`${name}\``));
    expect(missing).toEqual([]);
  });

  it("nothing in the repository's docs points outside it", () => {
    for (const file of ["README.md", "docs/http-api.md", "docs/architecture.md", "docs/security.md"]) {
      expect(read(file)).not.toMatch(/\.\.\/shared|shared\/docs|reference\//);
    }
  });
});
