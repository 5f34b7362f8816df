--[[ heartbeat: one round trip that proves a node alive on Redis's clock.
KEYS (named in scripts.ts, every one from keys.ts):
  KEYS[1] node         the node hash
  KEYS[2] nodes        node ids by last heartbeat (zset)
ARGV[1] node id   ARGV[2] epoch   ARGV[3] nodes channel   ARGV[4] status   ARGV[5] running jobs
Returns { 1, epoch, now } or { 0, current epoch, now } when this node was fenced off. ]]
local now = now_ms()
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if epoch ~= ARGV[2] then return { 0, tonumber(epoch or '0'), now } end
local old = redis.call('HGET', KEYS[1], 'status')
redis.call('HSET', KEYS[1], 'lastSeenMs', now, 'status', ARGV[4], 'runningJobs', ARGV[5])
redis.call('ZADD', KEYS[2], now, ARGV[1])
if old ~= ARGV[4] then redis.call('PUBLISH', ARGV[3], ARGV[1]) end
return { 1, tonumber(epoch), now }
