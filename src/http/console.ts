// The web console (docs/http-api.md "Web console"): a static single-page app served at /ui/ from
// ./console/ (copied next to this file in dist/ by scripts/build-assets.mjs). The files need no
// token; the page's own API calls carry it. Everything it shows comes from the public HTTP API.
import { fileURLToPath } from "node:url";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance } from "fastify";

/** Where the console's files are: src/http/console when run from source, dist/http/console when built. */
export const CONSOLE_ROOT = fileURLToPath(new URL("./console/", import.meta.url));

/**
 * Only the console's own files, nothing inline, nothing from elsewhere (its API calls go to this
 * same origin), and it may not be framed.
 */
export const CONSOLE_CSP = "default-src 'self'; frame-ancestors 'none'";

/** Encapsulated (not fastify-plugin): its hooks apply to the /ui routes only. */
export async function consolePlugin(app: FastifyInstance): Promise<void> {
  // The static routes are registered by @fastify/static, which takes no route config: mark every
  // route of this context public here (auth.ts lets `config.public` routes through without a token).
  app.addHook("onRoute", (route) => {
    route.config = { ...(route.config ?? {}), public: true };
  });
  app.addHook("onSend", async (_request, reply, payload) => {
    reply.header("content-security-policy", CONSOLE_CSP);
    reply.header("x-content-type-options", "nosniff");
    reply.header("referrer-policy", "no-referrer");
    return payload;
  });
  // `/ui` → `ui/`: relative, so it lands right behind a proxy that mounts the node under a path too.
  app.get("/ui", { schema: { hide: true } }, async (_request, reply) => reply.redirect("ui/"));
  await app.register(fastifyStatic, {
    root: CONSOLE_ROOT,
    prefix: "/ui/",
    decorateReply: false,
    index: "index.html",
    // Read-only and only the console's own files: GET and HEAD routes only (the plugin's default),
    // no directory listing, no dotfiles (the plugin serves them unless told), and send() refuses
    // any path that leaves `root` (`..`, encoded or not).
    list: false,
    dotfiles: "ignore",
    // A new build must reach browsers at once: they revalidate (ETag) on every load.
    cacheControl: true,
    maxAge: 0,
  });
}
