// The real thing: a separate node process launches jobs and is SIGKILLed; a new runner adopts them.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { copyFileSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import ts from "typescript";
import { afterEach, expect, it } from "vitest";
import { jobDir, readStatus } from "../../src/runner/supervisor.js";
import { Fixture, waitUntil } from "./helpers.js";

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
  for (const file of ["supervisor.py", "launch-as.c"]) copyFileSync(join(src, file), join(dir, file));
  writeFileSync(join(dir, "package.json"), '{"type":"module"}');
}

const NODE_SCRIPT = `
import { LocalRunner } from "./local-runner.js";
const [stateDir, out] = process.argv.slice(2);
const runner = new LocalRunner({ stateDir, callbacks: { onExit() {} } });
// "after" runs until the test creates the file "go" (whatever the machine's load); "before" ends at once.
const gate = "while [ ! -e " + out + "/go ]; do sleep 0.05; done; exit 7";
for (const [id, command] of [["after", gate], ["before", "sleep 0.2; exit 5"]]) {
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
  const out = fx.tempDir();
  const node = spawn(process.execPath, [join(lib, "node.js"), stateDir, out], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const [line] = await once(createInterface({ input: node.stdout }), "line");
  expect(line).toBe("launched");
  node.kill("SIGKILL");
  await new Promise((resolve) => node.once("exit", resolve));

  // "before" ends while no node is up.
  await waitUntil(() => readStatus(jobDir(stateDir, "before"))?.exitCode !== undefined, 10_000);
  const { runner, recorder } = fx.runner(stateDir);
  expect(runner.adopt("before")).toEqual({ exitCode: 5 });
  expect(runner.adopt("after")).toBe("running");
  writeFileSync(join(out, "go"), "");
  expect(await recorder.wait("after", 10_000)).toBe(7);
});
