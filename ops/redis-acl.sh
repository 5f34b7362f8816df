#!/bin/sh
# Prints a Redis ACL file (redis.conf `aclfile`, or `redis-server --aclfile`) in which a
# launcher-fleet's nodes have a least-privilege user: the fleet's keys (`~<prefix>:*`), its pub/sub
# channels (`&<prefix>:*`) and the commands the nodes send, nothing else. The default user is off
# (no login; see below for why it keeps its permissions).
#
#   REDIS_LAUNCHER_PASSWORD=... REDIS_ADMIN_PASSWORD=... sh ops/redis-acl.sh [PREFIX [USER]] > users.acl
#
# PREFIX: the fleet's LAUNCHER_KEY_PREFIX (default launcher). USER: the nodes' user name (default
# launcher); nodes connect with LAUNCHER_REDIS_URL=redis://USER:<password>@<host>:6379 (or the same
# URL in the file named by LAUNCHER_REDIS_URL_FILE). Passwords come from the environment, never the
# command line (where `ps` shows them), and are written as SHA-256 hashes, so the file holds none:
#   REDIS_LAUNCHER_PASSWORD     required  user USER: the nodes
#   REDIS_ADMIN_PASSWORD        required  user admin: every command (operators: backups, maintenance)
#   REDIS_REPLICATION_PASSWORD  optional  user replication: what a replica logs in as (`masteruser`)
#   REDIS_SENTINEL_PASSWORD     optional  user sentinel: what Sentinel logs in as (`sentinel auth-user`)
# Generate passwords with `openssl rand -hex 32` (hex needs no escaping in a URL).
# POSIX sh, so that it also runs in the redis image (docker-compose.yml). ops/RUNBOOK.md, "Redis ACL".
set -eu

die() {
  echo "redis-acl.sh: $*" >&2
  exit 2
}

prefix=${1:-launcher}
user=${2:-launcher}
[ $# -le 2 ] || die "usage: sh ops/redis-acl.sh [PREFIX [USER]]"
# The prefix goes into glob patterns and the user into a URL: plain characters only.
case $prefix in '' | *[!A-Za-z0-9_.:-]*) die "PREFIX must be letters, digits and _ . : - (got '$prefix')" ;; esac
case $user in '' | *[!A-Za-z0-9_.-]*) die "USER must be letters, digits and _ . - (got '$user')" ;; esac
case $user in default | admin | replication | sentinel) die "USER '$user' is one of the users this file defines" ;; esac

hash() {
  if command -v sha256sum >/dev/null 2>&1; then
    printf '%s' "$1" | sha256sum | cut -d' ' -f1
  else
    printf '%s' "$1" | shasum -a 256 | cut -d' ' -f1
  fi
}

# The password's hash, or nothing when the variable is unset or empty (then required says why).
password() {
  eval "pw=\${$1:-}"
  # shellcheck disable=SC2154 # set by the eval above
  [ -n "$pw" ] && printf '#%s' "$(hash "$pw")"
  return 0
}
required() {
  [ -n "$2" ] || die "$1 is not set (generate one with: openssl rand -hex 32)"
}

launcher_pw=$(password REDIS_LAUNCHER_PASSWORD)
required REDIS_LAUNCHER_PASSWORD "$launcher_pw"
admin_pw=$(password REDIS_ADMIN_PASSWORD)
required REDIS_ADMIN_PASSWORD "$admin_pw"
case ${REDIS_LAUNCHER_PASSWORD} in *[!A-Za-z0-9._~-]*)
  echo "redis-acl.sh: note: percent-encode REDIS_LAUNCHER_PASSWORD in LAUNCHER_REDIS_URL" >&2
  ;;
esac

# The nodes' commands (src/cluster/), each for a reason. Redis checks every redis.call() inside a
# script against these rules as well (the command, and its keys even when the script builds the key
# name, as expire_jobs.lua and settle_lost.lua do), so the scripts' commands are here too.
cmds=""
allow() { cmds="$cmds $*"; }
allow +evalsha +eval          # every atomic change runs as a Lua script (src/cluster/lua/); EVAL when Redis lacks it
allow +time                   # scripts: Redis server time, the fleet's one clock (lib.lua now_ms)
allow +exists +del            # scripts: create_job/update_job (job exists?), expire_jobs (removal), settle_lost
allow +get +set               # <prefix>:events:last: the newest event id (scripts write it, the status bus reads it)
allow +hget +hmget +hgetall   # job and node hashes: reads by scripts, job reads and listings, node records
allow +hset +hdel +hincrby    # scripts: job fields, node records, `ver` and `epoch` counters
allow +zadd +zrem             # scripts: the job, user, expiry and node-heartbeat sorted sets
allow +zscore +zrange +zrangebyscore # node heartbeats, job listings by submission time, expiry
allow +sadd +srem +smembers   # a node's unfinished jobs (scripts; re-adoption at start)
allow +scard +hlen +zcard     # scripts and GET /nodes: slots in use, whether jobs are queued, queue depth
allow +hsetnx +incr           # scripts: the fleet queue's classes and its sequence counter
allow +rpush +lrange          # scripts: a node's inbox (jobs peers placed on it)
allow +pexpire                # scripts: an Idempotency-Key is kept for LAUNCHER_JOB_EXPIRY_HOURS
allow +wait                   # a submission and an exit reach LAUNCHER_REDIS_WAIT_REPLICAS replicas before they count
allow +xadd +xrange           # the status event stream: scripts append, the status bus reads gaps and history
allow +publish +subscribe +unsubscribe # status events, node and queue notices (<prefix>:events:ch, :nodes:ch, :queue:ch)
allow +info                   # ioredis's ready check on connect (and, with Sentinel, that it reached the primary)
allow +client\|setname        # ioredis names each connection (<node id>:cmd, :sub) for CLIENT LIST
allow +select                 # ioredis, when the URL names a database (redis://...:6379/2)

# The default user is off: nobody can log in as it, and a connection that has not logged in can run
# nothing. It keeps its permissions all the same, because Redis replays each MULTI/EXEC block of the
# AOF (where every script's writes are) as the default user and checks them against its permissions:
# without them, Redis silently drops those writes at every restart, losing acknowledged jobs
# (redis/redis#14541; fixed only in recent releases, not in Redis 7.0 as packaged by Debian).
echo "user default off resetpass ~* &* +@all"
echo "user admin on $admin_pw ~* &* +@all"
echo "user $user on $launcher_pw resetkeys ~$prefix:* resetchannels &$prefix:* -@all$cmds"
replication_pw=$(password REDIS_REPLICATION_PASSWORD)
if [ -n "$replication_pw" ]; then
  # A replica's link to its primary (Redis docs, "ACL rules for Sentinel and Replicas").
  echo "user replication on $replication_pw resetkeys resetchannels -@all +psync +replconf +ping"
fi
sentinel_pw=$(password REDIS_SENTINEL_PASSWORD)
if [ -n "$sentinel_pw" ]; then
  # Sentinel: monitoring (PING, INFO, ROLE), its hello channel, and reconfiguring servers on a
  # failover (MULTI/EXEC around SLAVEOF, CONFIG REWRITE, CLIENT KILL), as the Redis docs list them.
  echo "user sentinel on $sentinel_pw resetkeys resetchannels &__sentinel__:hello -@all +ping +info +role" \
    "+subscribe +publish +multi +exec +slaveof +config|rewrite +client|setname +client|kill +script|kill"
fi
