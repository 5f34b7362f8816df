// Prints the README's settings table, generated from SETTINGS in src/config.ts (built to dist/):
// paste it between the README's settings-table markers. test/config.test.ts fails until they match.
import { settingsMarkdown } from "../dist/config.js";

process.stdout.write(`${settingsMarkdown()}\n`);
