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

# The Redis ACL: generated as the compose files do (POSIX sh), then loaded by a real redis-server.
sh -n ops/redis-acl.sh
REDIS_LAUNCHER_PASSWORD=check-launcher REDIS_ADMIN_PASSWORD=check-admin REDIS_REPLICATION_PASSWORD=check-repl \
  REDIS_SENTINEL_PASSWORD=check-sentinel sh ops/redis-acl.sh launcher >"$tmp/users.acl"
if command -v redis-server >/dev/null; then
  redis-server --port 0 --unixsocket "$tmp/redis.sock" --aclfile "$tmp/users.acl" --save "" --appendonly no \
    --daemonize yes --pidfile "$tmp/redis.pid" --logfile "$tmp/redis.log"
  cli() { REDISCLI_AUTH=check-admin redis-cli -s "$tmp/redis.sock" --user admin "$@"; }
  for _ in $(seq 50); do [ "$(cli ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
  users=$(cli acl list 2>&1) || true
  cli shutdown nosave >/dev/null 2>&1 || true
  for want in "user default off" "user launcher on #" "~launcher:* resetchannels &launcher:* -@all +" \
    "user replication on #" "user sentinel on #"; do
    grep -qF -- "$want" <<<"$users" || {
      echo "ops/redis-acl.sh: redis-server's ACL LIST lacks '$want':"
      echo "$users"
      cat "$tmp/redis.log"
      exit 1
    }
  done
  ok "ops/redis-acl.sh (its ACL file loads in redis-server $(redis-server --version | sed 's/.* v=\([^ ]*\).*/\1/'))"
else
  skip "ops/redis-acl.sh: redis-server not installed (the file was generated, not loaded)"
fi
if command -v shellcheck >/dev/null; then
  shellcheck -s sh ops/redis-acl.sh
  ok "ops/redis-acl.sh (shellcheck)"
fi

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
