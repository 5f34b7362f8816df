--[[ create_job: records a new job, indexes it and emits its first status event, atomically.
KEYS (named in scripts.ts, every one from keys.ts):
  KEYS[1] job          the job hash
  KEYS[2] jobsAll      all jobs (zset)
  KEYS[3] jobsByUser   the user's jobs (zset)
  KEYS[4] ownerJobs    the owner's unfinished jobs (set)
  KEYS[5] ownerNode    the owner's node hash
  KEYS[6] events       events stream
  KEYS[7] eventsLast   id of the newest event (string)
ARGV[1] epoch of the owner  ARGV[2] events max length     ARGV[3] events channel
ARGV[4] job id              ARGV[5] submission time (ms)  ARGV[6..] field, value pairs
Returns the event id; errors FENCED <epoch> (stale owner) or EXISTS. ]]
local fenced = check_epoch(KEYS[5], ARGV[1])
if fenced then return fenced end
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.error_reply('EXISTS') end

local pairs_ = {}
for i = 6, #ARGV do pairs_[#pairs_ + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], 'ver', 1, unpack(pairs_))
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[4])
redis.call('SADD', KEYS[4], ARGV[4])
return emit_event(KEYS[6], KEYS[7], ARGV[3], ARGV[2], job_event(KEYS[1], ARGV[4]))
