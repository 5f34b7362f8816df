--[[ claim_jobs: a node with free slots takes the oldest queued jobs it may run, atomically, and
marks them launching (it starts them at once). Eligible classes: one of whose queues the node
serves (its record's `queues`), whose constraints its `labels` satisfy, and whose user is under the
per-user cap. Each claim compares the head of every eligible class: O(classes · log n), not O(n).
KEYS (named in scripts.ts, every one from keys.ts):
  KEYS[1] node         the claiming node's hash (its epoch fences the claim)
  KEYS[2] nodeJobs     its unfinished jobs (set)
  KEYS[3] nodes        node ids by last heartbeat (zset)
  KEYS[4] queueClasses queue class id → descriptor (hash)
  KEYS[5] events       events stream
  KEYS[6] eventsLast   id of the newest event (string)
ARGV[1] node id   ARGV[2] epoch   ARGV[3] events max length   ARGV[4] events channel
ARGV[5] job key prefix   ARGV[6] queue class key prefix   ARGV[7] user active prefix
ARGV[8] per-user cap     ARGV[9] most jobs to claim        ARGV[10] offline after (ms)
ARGV[11] now (RFC 3339)  ARGV[12] status message of a claimed job
Returns a flat list: id, queuedMs, … of the claimed jobs; errors FENCED <epoch>. ]]
local fenced = check_epoch(KEYS[1], ARGV[2])
if fenced then return fenced end
if redis.call('HLEN', KEYS[4]) == 0 then return {} end
local nodeId, jobPrefix, classPrefix, activePrefix = ARGV[1], ARGV[5], ARGV[6], ARGV[7]
local cap = tonumber(ARGV[8])
local free, host = free_slots(KEYS[1], KEYS[3], nodeId, KEYS[2], now_ms(), tonumber(ARGV[10]))
free = math.min(free, tonumber(ARGV[9]))
if free <= 0 then return {} end

local rec = redis.call('HMGET', KEYS[1], 'queues', 'labels')
local served = {}
for _, q in ipairs(cjson.decode(rec[1] or '[]')) do served[q] = true end
local labels = cjson.decode(rec[2] or '{}')

-- The classes this node may serve, with their current heads.
local eligible = {}
local classes = redis.call('HGETALL', KEYS[4])
for i = 1, #classes, 2 do
  local d = cjson.decode(classes[i + 1])
  local ok = false
  for _, q in ipairs(d.q) do if served[q] then ok = true end end
  for _, c in ipairs(d.c) do
    local have = labels[c[1]]
    if have == nil or (c[2] ~= '' and have ~= c[2]) then ok = false end
  end
  if ok then eligible[#eligible + 1] = { id = classes[i], key = classPrefix .. classes[i], user = d.u } end
end

local function head(c)
  local h = redis.call('ZRANGE', c.key, 0, 0, 'WITHSCORES')
  if #h == 0 then
    c.empty = true
    redis.call('HDEL', KEYS[4], c.id)
  else
    c.job, c.seq = h[1], tonumber(h[2])
  end
end
for _, c in ipairs(eligible) do head(c) end

local claimed = {}
while #claimed / 2 < free do
  local best = nil
  for _, c in ipairs(eligible) do
    if not c.empty and (best == nil or c.seq < best.seq) and user_room(activePrefix, c.user, cap) then best = c end
  end
  if best == nil then break end
  local id = best.job
  local jobKey = jobPrefix .. id
  redis.call('ZREM', best.key, id)
  local queuedMs = redis.call('HGET', jobKey, 'queuedMs') or '0'
  place_job(jobKey, id, nodeId, host or '', KEYS[2], activePrefix, true, ARGV[12], ARGV[11])
  redis.call('HINCRBY', jobKey, 'ver', 1)
  emit_event(KEYS[5], KEYS[6], ARGV[4], ARGV[3], job_event(jobKey, id))
  claimed[#claimed + 1] = id
  claimed[#claimed + 1] = queuedMs
  head(best)
end
return claimed
