// The real thing: a separate node process launches jobs and is SIGKILLed; a new runner adopts them.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import ts from "typescript";
import { afterEach, expect, it } from "vitest";
import { Fixture, sleep } from "./helpers.js";

const fx = new Fixture();
afterEach(() => fx.cleanup());

/** Transpiles src/runner to plain ESM in `dir` so a bare `node` can run it. */
function buildRunner(dir: string): void {
  const src = join(import.meta.dirname, "../../src/runner");
  for (const file of readdirSync(src).filter((f) => f.endsWith(".ts"))) {
    const { outputText } = ts.transpileModule(readFileSync(join(src, file), "utf8"), {
      compilerOptions: {
        module: ts.ModuleKind.ESNext,
        target: ts.ScriptTarget.ES2022,
        verbatimModuleSyntax: true,
      },
    });
    writeFileSync(join(dir, file.replace(/\.ts$/, ".js")), outputText);
  }
  writeFileSync(join(dir, "package.json"), '{"type":"module"}');
}

const NODE_SCRIPT = `
import { LocalRunner } from "./local-runner.js";
const [stateDir, out] = process.argv.slice(2);
const runner = new LocalRunner({ stateDir, callbacks: { onExit() {} } });
for (const [id, command] of [["after", "sleep 1; exit 7"], ["before", "sleep 0.2; exit 5"]]) {
  await runner.launch({ id, command, stdoutFile: out + "/" + id, stderrFile: out + "/" + id });
}
console.log("launched");
setInterval(() => {}, 1000);
`;

it("a SIGKILLed node's jobs keep running and report their real exit codes to the next runner", async () => {
  const lib = fx.tempDir();
  buildRunner(lib);
  writeFileSync(join(lib, "node.js"), NODE_SCRIPT);
  const stateDir = join(fx.tempDir(), "state");
  const node = spawn(process.execPath, [join(lib, "node.js"), stateDir, fx.tempDir()], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const [line] = await once(createInterface({ input: node.stdout }), "line");
  expect(line).toBe("launched");
  node.kill("SIGKILL");
  await new Promise((resolve) => node.once("exit", resolve));

  await sleep(500); // "before" ends while no node is up
  const { runner, recorder } = fx.runner(stateDir);
  expect(runner.adopt("before")).toEqual({ exitCode: 5 });
  expect(runner.adopt("after")).toBe("running");
  expect(await recorder.wait("after")).toBe(7);
});
