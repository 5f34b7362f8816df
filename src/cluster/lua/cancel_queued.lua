--[[ cancel_queued: any node cancels a job waiting in the fleet queue (it has no owner to ask).
KEYS (named in scripts.ts, every one from keys.ts):
  KEYS[1] job          the job hash
  KEYS[2] queueClasses queue class id → descriptor (hash)
  KEYS[3] events       events stream
  KEYS[4] eventsLast   id of the newest event (string)
  KEYS[5] expiry       terminal jobs by when they ended (zset)
  KEYS[6] queueHeads   the non-empty classes by their head's sequence number (zset)
ARGV[1] job id   ARGV[2] queue class key prefix   ARGV[3] events max length   ARGV[4] events channel
ARGV[5] status message   ARGV[6] now (RFC 3339)
Returns { ver, eventId }; errors NOTFOUND, OWNED <node> (a node claimed it meanwhile: ask that
node), TERMINAL <status>. ]]
local f = redis.call('HMGET', KEYS[1], 'status', 'owner', 'qclass')
if not f[1] then return redis.error_reply('NOTFOUND') end
if TERMINAL[f[1]] then return redis.error_reply('TERMINAL ' .. f[1]) end
if f[2] and f[2] ~= '' then return redis.error_reply('OWNED ' .. f[2]) end
local classKey = ARGV[2] .. f[3]
redis.call('ZREM', classKey, ARGV[1])
refresh_head(KEYS[6], KEYS[2], classKey, f[3])
redis.call('HSET', KEYS[1], 'status', 'Canceled', 'statusMessage', ARGV[5], 'lastUpdateTime', ARGV[6])
local ver = redis.call('HINCRBY', KEYS[1], 'ver', 1)
local eventId = emit_event(KEYS[1], KEYS[3], KEYS[4], ARGV[4], ARGV[3], job_event(KEYS[1], ARGV[1]))
redis.call('ZADD', KEYS[5], now_ms(), ARGV[1])
return { ver, eventId }
