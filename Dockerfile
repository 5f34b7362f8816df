# syntax=docker/dockerfile:1
# launcher-fleet node image: `docker build -t launcher-fleet .`
# Runs one node (`node dist/cli.js node`), configured by LAUNCHER_* variables (docs: API.md).

# --- build: all dependencies, compile TypeScript to dist/ ----------------------------------------
FROM node:20-bookworm-slim AS build
# A C compiler for the launch helper (src/runner/launch-as.c, linked statically so the runtime image
# needs no compiler): root nodes start each job of another user through it.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build && test -x dist/runner/launch-as

# --- deps: production dependencies only -----------------------------------------------------------
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# --- runtime --------------------------------------------------------------------------------------
# Jobs are supervised by a small Python program (standard library only), so the image needs python3.
FROM node:20-bookworm-slim AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends python3 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    LAUNCHER_PORT=5559 \
    LAUNCHER_SCRATCH_PATH=/var/lib/launcher
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
# The scratch path holds job output and runner state: mount a volume there so a restarted
# container finds its jobs' records. Owned by the unprivileged `node` user (uid 1000) of the base
# image. The image runs unprivileged: every job runs as `node` (one trust domain, fine for a
# single-tenant fleet). For a multi-user fleet run the container as root with
# LAUNCHER_UNPRIVILEGED=0 and the host's users visible to NSS (docs/security.md): each job then
# runs as its own user.
RUN mkdir -p /var/lib/launcher && chown node:node /var/lib/launcher && test -x /usr/bin/python3
VOLUME ["/var/lib/launcher"]
ENV LAUNCHER_UNPRIVILEGED=1
USER node
EXPOSE 5559
# Liveness only (/healthz: the process serves HTTP). Readiness (/readyz) is for the load balancer;
# compose files check /readyz so that dependants wait for a node that takes traffic.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.LAUNCHER_PORT||5559)+'/healthz',{signal:AbortSignal.timeout(2500)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# SIGTERM drains (readiness fails for LAUNCHER_DRAIN_MS) and exits 0: give the container a stop
# timeout longer than the drain (`docker stop -t 30`, compose `stop_grace_period`).
STOPSIGNAL SIGTERM
# --max-semi-space-size=4: a 4 MB young generation, whose pauses are short (src/topology/node-command.ts).
CMD ["node", "--max-semi-space-size=4", "dist/cli.js", "node"]
