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

-- Appends an event to the stream, remembers it as the newest, and publishes it together with
-- its predecessor's id, so a subscriber can tell at once whether it missed anything.
local function emit_event(eventsKey, lastKey, channel, maxlen, ev)
  local json = cjson.encode(ev)
  local prev = redis.call('GET', lastKey) or '0-0'
  local id = redis.call('XADD', eventsKey, 'MAXLEN', '~', maxlen, '*', 'e', json)
  redis.call('SET', lastKey, id)
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
