-- Shared helpers, prepended to every script by scripts.ts.

local TERMINAL = { Finished = true, Failed = true, Killed = true, Canceled = true }

-- The job lifecycle: the statuses a job may move to from each status (none from a terminal one).
-- The same table as TRANSITIONS in src/api/status.ts; test/cluster/transitions.test.ts keeps them equal.
local NEXT = {
  Pending = { Running = true, Failed = true, Canceled = true, Finished = true },
  Running = { Suspended = true, Finished = true, Failed = true, Killed = true },
  Suspended = { Running = true, Finished = true, Failed = true, Killed = true },
}

-- Redis server time in ms: the fleet's one clock.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The public status event of a job, read back from its hash after a change.
local function job_event(jobKey, id)
  local f = redis.call('HMGET', jobKey, 'name', 'status', 'statusCode', 'statusMessage', 'lastUpdateTime', 'ver', 'user')
  -- name is always there ("" when the job has none), as the Launcher sends it.
  local ev = { id = id, name = f[1] or '', status = f[2], ver = tonumber(f[6]), user = f[7] }
  if f[3] and f[3] ~= '' then ev.statusCode = f[3] end
  if f[4] and f[4] ~= '' then ev.statusMessage = f[4] end
  if f[5] and f[5] ~= '' then ev.lastUpdateTime = f[5] end
  return ev
end

-- Appends an event to the stream, remembers it as the newest (the fleet's, and the job's own in its
-- hash's `eventId`), and publishes it together with its predecessor's id, so a subscriber can tell
-- at once whether it missed anything. The job's own lets a job's stream resumed with `since` skip
-- reading the fleet's stream when the job has had no event since.
local function emit_event(jobKey, eventsKey, lastKey, channel, maxlen, ev)
  local json = cjson.encode(ev)
  local prev = redis.call('GET', lastKey) or '0-0'
  local id = redis.call('XADD', eventsKey, 'MAXLEN', '~', maxlen, '*', 'e', json)
  redis.call('SET', lastKey, id)
  redis.call('HSET', jobKey, 'eventId', id)
  redis.call('PUBLISH', channel, id .. '\n' .. prev .. '\n' .. json)
  return id
end

-- Refuses a write from a node whose epoch is not the current one (it was declared lost).
local function check_epoch(nodeKey, epoch)
  local current = redis.call('HGET', nodeKey, 'epoch')
  if current ~= epoch then
    return redis.error_reply('FENCED ' .. tostring(current))
  end
  return nil
end

-- The fleet queue (see docs/architecture.md, "The fleet queue"). A job waits in the sorted set of
-- its class (its queues, constraints and user), scored by its queue sequence number, so the head of
-- every class is its oldest job. The heads set orders the classes by their heads: a claim walks it
-- from the oldest and stops at the first class the node may serve, never reading the whole queue.
-- The classes hash gives each class's descriptor (`{"q":[queues],"c":[[label,value]…],"u":user}`).

-- Records a class's head in the heads set after its queue changed (or forgets an emptied class).
local function refresh_head(headsKey, classesKey, classKey, classId)
  local h = redis.call('ZRANGE', classKey, 0, 0, 'WITHSCORES')
  if #h == 0 then
    redis.call('ZREM', headsKey, classId)
    redis.call('HDEL', classesKey, classId)
  else
    redis.call('ZADD', headsKey, tonumber(h[2]), classId)
  end
end

-- Puts a job in its class's queue: unowned, no host, with a message saying what it waits for.
-- The class descriptor travels in the job hash (qdesc), so a requeue can re-create the class; a
-- requeued job keeps its sequence number, so it goes back to its place in line.
local function enqueue_job(jobKey, id, classesKey, headsKey, classPrefix, message, nowIso, now)
  local f = redis.call('HMGET', jobKey, 'qclass', 'qseq', 'qdesc')
  redis.call('HSET', jobKey, 'owner', '', 'statusMessage', message, 'lastUpdateTime', nowIso, 'queuedMs', now)
  redis.call('HDEL', jobKey, 'host', 'launching')
  redis.call('HSETNX', classesKey, f[1], f[3])
  redis.call('ZADD', classPrefix .. f[1], tonumber(f[2]), id)
  -- LT: a class's head only ever moves to an older job here (a new class is added).
  redis.call('ZADD', headsKey, 'LT', tonumber(f[2]), f[1])
end

-- Gives a job to a node: it holds one of the node's slots (the node's jobs set) and one of its
-- user's (the user's active set) until it ends. `launching` marks a job its node may have started:
-- only jobs without it can provably go back to the queue when their node is lost.
local function place_job(jobKey, id, nodeId, host, nodeJobsKey, userActivePrefix, launching, message, nowIso)
  local user = redis.call('HGET', jobKey, 'user') or ''
  redis.call('HSET', jobKey, 'owner', nodeId, 'host', host, 'lastUpdateTime', nowIso)
  if message ~= '' then redis.call('HSET', jobKey, 'statusMessage', message) else redis.call('HDEL', jobKey, 'statusMessage') end
  if launching then redis.call('HSET', jobKey, 'launching', '1') end
  redis.call('SADD', nodeJobsKey, id)
  redis.call('SADD', userActivePrefix .. user, id)
end

-- Whether a node record (HMGET status, slots, …) is Online and heard from within offlineAfter,
-- and how many more jobs it may take (math.huge for no limit).
local function free_slots(nodeKey, nodesKey, nodeId, nodeJobsKey, now, offlineAfter)
  local f = redis.call('HMGET', nodeKey, 'status', 'slots', 'host')
  if f[1] ~= 'Online' then return 0, f[3] end
  local seen = tonumber(redis.call('ZSCORE', nodesKey, nodeId) or '0')
  if now - seen >= offlineAfter then return 0, f[3] end
  local slots = tonumber(f[2] or '0') or 0
  if slots == 0 then return math.huge, f[3] end
  return slots - redis.call('SCARD', nodeJobsKey), f[3]
end

-- Whether a user may have one more job placed (cap 0: no limit).
local function user_room(userActivePrefix, user, cap, extra)
  if cap == 0 then return true end
  return redis.call('SCARD', userActivePrefix .. user) + (extra or 0) < cap
end
