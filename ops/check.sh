#!/usr/bin/env bash
# Validates the deployment files without Docker: compose files, HAProxy configs (the shipped one
# and the loopback one that `npm run fleet` derives from it), and, when the tools are installed,
# Prometheus rules, the dashboard's queries and the nginx alternative. Run from anywhere:
#   bash ops/check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ok() { printf '  ok    %s\n' "$*"; }
skip() { printf '  skip  %s\n' "$*"; }

# docker-compose reads .env for ${...} values when present; without it the defaults apply.
for f in docker-compose.yml docker-compose.sentinel.yml; do
  docker-compose -f "$f" config -q
  ok "$f (docker-compose config)"
done

haproxy -c -q -f ops/haproxy.cfg
ok "ops/haproxy.cfg (haproxy -c)"

# The loopback config comes from src/topology/haproxy.ts, which needs the build.
if [ ! -f dist/topology/haproxy.js ] || [ -n "$(find src/topology -newer dist/topology/haproxy.js -name '*.ts' | head -1)" ]; then
  # tsc emits even when some other module has type errors; the renderer only needs its own files.
  npx tsc -p tsconfig.build.json >/dev/null || echo "  note  the build reports type errors (see npm run build)"
fi
for ips in "127.0.0.1 127.0.0.1 127.0.0.1" "127.0.0.2 127.0.0.3 127.0.0.4"; do
  node --input-type=module - "$tmp/loopback.cfg" $ips <<'JS'
import { writeFileSync } from "node:fs";
import { renderLoopbackConfig } from "./dist/topology/haproxy.js";
const [file, ...ips] = process.argv.slice(2);
const servers = ips.map((ip, i) => ({ name: `node-${i + 1}`, address: `${ip}:${5559 + i}` }));
writeFileSync(file, renderLoopbackConfig({ bind: "127.0.0.1:8080", statsBind: "127.0.0.1:8404", servers }));
JS
  haproxy -c -q -f "$tmp/loopback.cfg"
  ok "loopback HAProxy config rendered from ops/haproxy.cfg, nodes on $ips (haproxy -c)"
done

node -e 'JSON.parse(require("fs").readFileSync("ops/grafana-dashboard.json", "utf8"))'
ok "ops/grafana-dashboard.json (JSON)"

if command -v promtool >/dev/null; then
  promtool check config ops/prometheus.yml >/dev/null
  ok "ops/prometheus.yml and ops/alerts.yml (promtool check config)"
  # Every dashboard query, as recording rules, so promtool parses each PromQL expression.
  node -e '
    const d = JSON.parse(require("fs").readFileSync("ops/grafana-dashboard.json", "utf8"));
    const exprs = d.panels.flatMap((p) => p.targets.map((t) => t.expr
      .replaceAll("$__rate_interval", "1m").replaceAll("$job", "launcher")));
    const rules = exprs.map((e, i) => `      - record: dashboard:query${i}\n        expr: ${JSON.stringify(e)}`);
    console.log(["groups:", "  - name: dashboard", "    rules:", ...rules].join("\n"));
  ' >"$tmp/dashboard-rules.yml"
  promtool check rules "$tmp/dashboard-rules.yml" >/dev/null
  ok "ops/grafana-dashboard.json queries (promtool check rules)"
else
  skip "ops/prometheus.yml, ops/alerts.yml, dashboard queries: promtool not installed (apt-get install prometheus)"
fi

if command -v nginx >/dev/null; then
  nginx -q -t -c "$PWD/ops/nginx.conf"
  ok "ops/nginx.conf (nginx -t)"
else
  skip "ops/nginx.conf: nginx not installed"
fi
echo "ops files: all checks passed"
