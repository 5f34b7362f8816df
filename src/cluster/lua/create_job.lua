--[[ create_job: records a new job, indexes it, places it, and emits its first status event,
atomically. Placement: among the candidate nodes (Online, non-draining and eligible by queue and
labels as the receiving node last saw them; the receiving node first when it is one), the one with
the most free slots now, ties to the earlier candidate. No candidate with room, the user at the
per-user cap, or older jobs of the same class still queued: the job waits in the fleet queue.
KEYS (named in scripts.ts, every one from keys.ts):
  KEYS[1] job          the job hash
  KEYS[2] jobsAll      all jobs (zset)
  KEYS[3] jobsByUser   the user's jobs (zset)
  KEYS[4] receiverNode the receiving node's hash (its epoch fences the write)
  KEYS[5] events       events stream
  KEYS[6] eventsLast   id of the newest event (string)
  KEYS[7] nodes        node ids by last heartbeat (zset)
  KEYS[8] queueClasses queue class id → descriptor (hash)
  KEYS[9] queueClass   this job's class (zset)
  KEYS[10] queueSeq    the queue's sequence counter (string)
  KEYS[11] queueHeads  the non-empty classes by their head's sequence number (zset)
  KEYS[12] idempotency the submission's Idempotency-Key record (hash; unused without a key)
ARGV[1] receiver epoch      ARGV[2] events max length   ARGV[3] events channel   ARGV[4] job id
ARGV[5] submission (ms)     ARGV[6] receiver node id    ARGV[7] node key prefix  ARGV[8] node jobs suffix
ARGV[9] node inbox suffix   ARGV[10] user active prefix ARGV[11] offline after (ms)
ARGV[12] per-user cap       ARGV[13] queue channel      ARGV[14] class id        ARGV[15] class descriptor
ARGV[16] message: queued, no room   ARGV[17] message: queued, user cap   ARGV[18] now (RFC 3339)
ARGV[19] queue class key prefix     ARGV[20] digest of the request ('' without an Idempotency-Key)
ARGV[21] how long the key is kept (ms)   ARGV[22] number of candidates N (-1: place on the receiver)
ARGV[23 .. 22+N] candidate node ids, then the job's field, value pairs
Returns { event id, node id placed on ('' when queued), its host, the job's status message, '' }, or
{ '', '', '', '', id } when the Idempotency-Key already made job `id` (nothing is written); errors
FENCED <epoch>, EXISTS, IDEMPOTENCY <job id> (the key was used with another request). ]]
local fenced = check_epoch(KEYS[4], ARGV[1])
if fenced then return fenced end
if ARGV[20] ~= '' then
  local prev = redis.call('HMGET', KEYS[12], 'job', 'digest')
  if prev[1] then
    if prev[2] ~= ARGV[20] then return redis.error_reply('IDEMPOTENCY ' .. prev[1]) end
    return { '', '', '', '', prev[1] }
  end
end
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.error_reply('EXISTS') end

local id, nodePrefix, jobsSuffix, inboxSuffix = ARGV[4], ARGV[7], ARGV[8], ARGV[9]
local n = tonumber(ARGV[22])
local pinned = n < 0
if pinned then n = 0 end
local pairs_ = {}
for i = 23 + n, #ARGV do pairs_[#pairs_ + 1] = ARGV[i] end
local seq = redis.call('INCR', KEYS[10])
redis.call('HSET', KEYS[1], 'ver', 1, 'qclass', ARGV[14], 'qdesc', ARGV[15], 'qseq', seq, unpack(pairs_))
redis.call('ZADD', KEYS[2], ARGV[5], id)
redis.call('ZADD', KEYS[3], ARGV[5], id)

local now = now_ms()
local user = redis.call('HGET', KEYS[1], 'user') or ''
local userOk = user_room(ARGV[10], user, tonumber(ARGV[12]))
local best, bestFree, bestHost = nil, 0, ''
if pinned then best, bestHost = ARGV[6], redis.call('HGET', KEYS[4], 'host') or '' end
if userOk and not pinned and redis.call('EXISTS', KEYS[9]) == 0 then
  for i = 23, 22 + n do
    local cand = ARGV[i]
    local free, host = free_slots(nodePrefix .. cand, KEYS[7], cand, nodePrefix .. cand .. jobsSuffix, now, tonumber(ARGV[11]))
    if free > bestFree then best, bestFree, bestHost = cand, free, host or '' end
  end
end

if best then
  local receiver = best == ARGV[6]
  place_job(KEYS[1], id, best, bestHost, nodePrefix .. best .. jobsSuffix, ARGV[10], receiver, '', ARGV[18])
  if not receiver then
    redis.call('RPUSH', nodePrefix .. best .. inboxSuffix, id)
    redis.call('PUBLISH', ARGV[13], best)
  end
else
  enqueue_job(KEYS[1], id, KEYS[8], KEYS[11], ARGV[19], userOk and ARGV[16] or ARGV[17], ARGV[18], now)
  redis.call('PUBLISH', ARGV[13], '*')
end
local eventId = emit_event(KEYS[1], KEYS[5], KEYS[6], ARGV[3], ARGV[2], job_event(KEYS[1], id))
if ARGV[20] ~= '' then
  redis.call('HSET', KEYS[12], 'job', id, 'digest', ARGV[20])
  redis.call('PEXPIRE', KEYS[12], ARGV[21])
end
return { eventId, best or '', bestHost, redis.call('HGET', KEYS[1], 'statusMessage') or '', '' }
