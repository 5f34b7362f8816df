// `npm run chaos:check -- <run dir>`: checks a chaos run's history again (check.ts); exits 1 on
// any violation.
import { checkRun, printReport } from "./check.js";

const dir = process.argv[2];
if (!dir) {
  console.error("usage: npm run chaos:check -- <run directory>");
  process.exit(2);
}
const report = checkRun(dir);
printReport(report);
process.exitCode = report.violations > 0 ? 1 : 0;
