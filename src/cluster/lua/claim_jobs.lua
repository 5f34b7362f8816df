--[[ claim_jobs: a node with free slots takes the oldest queued jobs it may run, atomically, and
marks them launching (it starts them at once). It walks the classes from the oldest head and takes
the first one it may serve: one of whose queues the node serves (its record's `queues`), whose
constraints its `labels` satisfy, and whose user is under the per-user cap. The cost of a claim is
the classes it passes over (those it may not serve, older than the first it may), not the queue's
length or its number of classes.
KEYS (named in scripts.ts, every one from keys.ts):
  KEYS[1] node         the claiming node's hash (its epoch fences the claim)
  KEYS[2] nodeJobs     its unfinished jobs (set)
  KEYS[3] nodes        node ids by last heartbeat (zset)
  KEYS[4] queueClasses queue class id → descriptor (hash)
  KEYS[5] events       events stream
  KEYS[6] eventsLast   id of the newest event (string)
  KEYS[7] queueHeads   the non-empty classes by their head's sequence number (zset)
ARGV[1] node id   ARGV[2] epoch   ARGV[3] events max length   ARGV[4] events channel
ARGV[5] job key prefix   ARGV[6] queue class key prefix   ARGV[7] user active prefix
ARGV[8] per-user cap     ARGV[9] most jobs to claim        ARGV[10] offline after (ms)
ARGV[11] now (RFC 3339)  ARGV[12] status message of a claimed job
Returns a flat list: id, queuedMs, … of the claimed jobs, or 0 when the fleet queue is empty (no
class has a job: a node then need not ask again until a job is queued); errors FENCED <epoch>. ]]
local fenced = check_epoch(KEYS[1], ARGV[2])
if fenced then return fenced end
if redis.call('ZCARD', KEYS[7]) == 0 then return 0 end
local nodeId, jobPrefix, classPrefix, activePrefix = ARGV[1], ARGV[5], ARGV[6], ARGV[7]
local cap = tonumber(ARGV[8])
local free, host = free_slots(KEYS[1], KEYS[3], nodeId, KEYS[2], now_ms(), tonumber(ARGV[10]))
free = math.min(free, tonumber(ARGV[9]))
if free <= 0 then return {} end

local rec = redis.call('HMGET', KEYS[1], 'queues', 'labels')
local served = {}
for _, q in ipairs(cjson.decode(rec[1] or '[]')) do served[q] = true end
local labels = cjson.decode(rec[2] or '{}')

-- Whether this node may serve a class (and whose it is), judged once per class and call.
local verdicts = {}
local function judge(classId)
  local v = verdicts[classId]
  if v then return v end
  v = { ok = false }
  local desc = redis.call('HGET', KEYS[4], classId)
  if desc then
    local d = cjson.decode(desc)
    for _, q in ipairs(d.q) do if served[q] then v.ok = true end end
    for _, c in ipairs(d.c) do
      local have = labels[c[1]]
      if have == nil or (c[2] ~= '' and have ~= c[2]) then v.ok = false end
    end
    v.user = d.u
  end
  verdicts[classId] = v
  return v
end

-- The oldest class this node may take a job of now, walking the heads a page at a time.
local PAGE = 64
local function next_class()
  local offset = 0
  while true do
    local page = redis.call('ZRANGE', KEYS[7], offset, offset + PAGE - 1)
    if #page == 0 then return nil end
    for _, classId in ipairs(page) do
      local v = judge(classId)
      if v.ok and user_room(activePrefix, v.user, cap) then return classId end
    end
    offset = offset + PAGE
  end
end

local claimed = {}
while #claimed / 2 < free do
  local classId = next_class()
  if classId == nil then break end
  local classKey = classPrefix .. classId
  local id = redis.call('ZRANGE', classKey, 0, 0)[1]
  redis.call('ZREM', classKey, id)
  refresh_head(KEYS[7], KEYS[4], classKey, classId)
  local jobKey = jobPrefix .. id
  local queuedMs = redis.call('HGET', jobKey, 'queuedMs') or '0'
  place_job(jobKey, id, nodeId, host or '', KEYS[2], activePrefix, true, ARGV[12], ARGV[11])
  redis.call('HINCRBY', jobKey, 'ver', 1)
  emit_event(jobKey, KEYS[5], KEYS[6], ARGV[4], ARGV[3], job_event(jobKey, id))
  claimed[#claimed + 1] = id
  claimed[#claimed + 1] = queuedMs
end
return claimed
