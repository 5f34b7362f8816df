// `node --import ./test/chaos/ts-register.mjs test/chaos/<file>.ts`: see ts-hooks.mjs.
import { register } from "node:module";

register("./ts-hooks.mjs", import.meta.url);
