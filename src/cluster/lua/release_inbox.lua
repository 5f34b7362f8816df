--[[ release_inbox: a draining node gives the jobs placed on it that it never started back to the
fleet queue, in their original order, so they start elsewhere instead of waiting for it.
KEYS (named in scripts.ts, every one from keys.ts):
  KEYS[1] node         the node's hash (its epoch fences the release)
  KEYS[2] inbox        the jobs placed on it (list)
  KEYS[3] nodeJobs     its unfinished jobs (set)
  KEYS[4] queueClasses queue class id → descriptor (hash)
  KEYS[5] events       events stream
  KEYS[6] eventsLast   id of the newest event (string)
  KEYS[7] queueHeads   the non-empty classes by their head's sequence number (zset)
ARGV[1] node id   ARGV[2] epoch   ARGV[3] events max length   ARGV[4] events channel
ARGV[5] job key prefix   ARGV[6] queue class key prefix   ARGV[7] user active prefix
ARGV[8] queue channel    ARGV[9] status message           ARGV[10] now (RFC 3339)
Returns the number of jobs given back; errors FENCED <epoch>. ]]
local fenced = check_epoch(KEYS[1], ARGV[2])
if fenced then return fenced end
local ids = redis.call('LRANGE', KEYS[2], 0, -1)
redis.call('DEL', KEYS[2])
local now = now_ms()
local released = 0
for _, id in ipairs(ids) do
  local jobKey = ARGV[5] .. id
  local f = redis.call('HMGET', jobKey, 'status', 'owner', 'launching', 'user')
  if f[1] == 'Pending' and f[2] == ARGV[1] and not f[3] then
    redis.call('SREM', KEYS[3], id)
    redis.call('SREM', ARGV[7] .. (f[4] or ''), id)
    enqueue_job(jobKey, id, KEYS[4], KEYS[7], ARGV[6], ARGV[9], ARGV[10], now)
    redis.call('HINCRBY', jobKey, 'ver', 1)
    emit_event(jobKey, KEYS[5], KEYS[6], ARGV[4], ARGV[3], job_event(jobKey, id))
    released = released + 1
  end
end
if released > 0 then redis.call('PUBLISH', ARGV[8], '*') end
return released
