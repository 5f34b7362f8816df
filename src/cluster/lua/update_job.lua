--[[ update_job: the owner changes a job's mutable fields; a status change is recorded in the
job and appended to the event stream in one step. Terminal is final.
KEYS (named in scripts.ts, every one from keys.ts):
  KEYS[1] job          the job hash
  KEYS[2] ownerJobs    the owner's unfinished jobs (set)
  KEYS[3] ownerNode    the owner's node hash
  KEYS[4] events       events stream
  KEYS[5] eventsLast   id of the newest event (string)
  KEYS[6] expiry       terminal jobs by when they ended (zset)
ARGV[1] owner node id   ARGV[2] owner epoch   ARGV[3] events max length   ARGV[4] events channel
ARGV[5] job id   ARGV[6] user active key prefix (a job that ends gives its user's slot back)
ARGV[7..] field, value pairs; an empty value deletes the field
A new status must be one the lifecycle allows from the current one (NEXT in lib.lua).
Returns { ver, eventId or '' }; errors NOTFOUND, NOTOWNER, FENCED <epoch>, TERMINAL <status>,
STATE <current status> (a move the lifecycle does not allow). ]]
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('NOTFOUND') end
local fenced = check_epoch(KEYS[3], ARGV[2])
if fenced then return fenced end
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return redis.error_reply('NOTOWNER') end

local cur = redis.call('HMGET', KEYS[1], 'status', 'statusMessage')
if TERMINAL[cur[1]] then return redis.error_reply('TERMINAL ' .. cur[1]) end
for i = 7, #ARGV, 2 do
  if ARGV[i] == 'status' and ARGV[i + 1] ~= cur[1] and not (NEXT[cur[1]] or {})[ARGV[i + 1]] then
    return redis.error_reply('STATE ' .. cur[1])
  end
end

local id = ARGV[5]
local newStatus, newMessage = cur[1], cur[2]
for i = 7, #ARGV, 2 do
  local field, value = ARGV[i], ARGV[i + 1]
  if value == '' then redis.call('HDEL', KEYS[1], field) else redis.call('HSET', KEYS[1], field, value) end
  if field == 'status' then newStatus = value end
  if field == 'statusMessage' then newMessage = value end
end
local ver = redis.call('HINCRBY', KEYS[1], 'ver', 1)

-- Like the Launcher's cache: an event when the status or its message changes.
local eventId = ''
if newStatus ~= cur[1] or (newMessage or '') ~= (cur[2] or '') then
  eventId = emit_event(KEYS[1], KEYS[4], KEYS[5], ARGV[4], ARGV[3], job_event(KEYS[1], id))
end
if TERMINAL[newStatus] then
  redis.call('SREM', KEYS[2], id)
  redis.call('SREM', ARGV[6] .. (redis.call('HGET', KEYS[1], 'user') or ''), id)
  redis.call('ZADD', KEYS[6], now_ms(), id)
end
return { ver, eventId }
