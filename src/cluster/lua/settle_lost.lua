--[[ settle_lost: a surviving node declares a silent node lost. Its unfinished jobs become Failed
(with a message naming the node), except those it provably never started (Pending, never marked
launching: its epoch fences that mark), which go back to the fleet queue. Its epoch is bumped, so
it can no longer write. Atomic, and a no-op the second time, so exactly one peer settles each loss
however many try.
KEYS (named in scripts.ts, every one from keys.ts):
  KEYS[1] node         the lost node's hash
  KEYS[2] nodeJobs     its unfinished jobs (set)
  KEYS[3] nodes        node ids by last heartbeat (zset)
  KEYS[4] events       events stream
  KEYS[5] eventsLast   id of the newest event (string)
  KEYS[6] expiry       terminal jobs by when they ended (zset)
  KEYS[7] inbox        jobs peers placed on it (list)
  KEYS[8] queueClasses queue class id → descriptor (hash)
  KEYS[9] queueHeads   the non-empty classes by their head's sequence number (zset)
The job hashes of the ids in KEYS[2] are only known here: their keys are ARGV[5] .. id, the prefix
coming from keys.ts (scriptPrefixes.job) so that file still names every key. (Keys built in a
script are not declared to Redis: fine on the one primary the fleet uses, not on Redis Cluster.)
ARGV[1] lost node id     ARGV[2] lost-after (ms)   ARGV[3] events max length   ARGV[4] events channel
ARGV[5] job key prefix   ARGV[6] status message    ARGV[7] lastUpdateTime (RFC 3339)
ARGV[8] queue class key prefix   ARGV[9] user active key prefix   ARGV[10] queue channel
ARGV[11] status message of a job sent back to the queue
Returns { jobs failed, jobs requeued }, or -1 (not lost yet) / -2 (already settled). ]]
local now = now_ms()
local lastSeen = tonumber(redis.call('ZSCORE', KEYS[3], ARGV[1]) or '0')
if now - lastSeen < tonumber(ARGV[2]) then return -1 end
local epoch = redis.call('HGET', KEYS[1], 'epoch') or '0'
if redis.call('HGET', KEYS[1], 'settledEpoch') == epoch then return -2 end

local newEpoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
redis.call('HSET', KEYS[1], 'settledEpoch', newEpoch, 'status', 'Offline', 'runningJobs', 0)
local settled, requeued = 0, 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local jobKey = ARGV[5] .. id
  local f = redis.call('HMGET', jobKey, 'status', 'launching', 'user')
  if f[1] and not TERMINAL[f[1]] then
    redis.call('SREM', ARGV[9] .. (f[3] or ''), id)
    if f[1] == 'Pending' and not f[2] then
      enqueue_job(jobKey, id, KEYS[8], KEYS[9], ARGV[8], ARGV[11], ARGV[7], now)
      requeued = requeued + 1
    else
      redis.call('HSET', jobKey, 'status', 'Failed', 'statusMessage', ARGV[6], 'lastUpdateTime', ARGV[7])
      redis.call('ZADD', KEYS[6], now, id)
      settled = settled + 1
    end
    redis.call('HINCRBY', jobKey, 'ver', 1)
    emit_event(jobKey, KEYS[4], KEYS[5], ARGV[4], ARGV[3], job_event(jobKey, id))
  end
end
redis.call('DEL', KEYS[2], KEYS[7])
if requeued > 0 then redis.call('PUBLISH', ARGV[10], '*') end
return { settled, requeued }
