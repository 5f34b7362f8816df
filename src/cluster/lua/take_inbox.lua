--[[ take_inbox: a node takes the jobs peers placed on it, and marks them launching (it starts them
at once). Jobs canceled meanwhile (no longer Pending) or already taken are skipped.
KEYS (named in scripts.ts, every one from keys.ts):
  KEYS[1] node         the node's hash (its epoch fences the take)
  KEYS[2] inbox        the jobs placed on it (list)
ARGV[1] node id   ARGV[2] epoch   ARGV[3] job key prefix
Returns the ids to start; errors FENCED <epoch>. ]]
local fenced = check_epoch(KEYS[1], ARGV[2])
if fenced then return fenced end
local ids = redis.call('LRANGE', KEYS[2], 0, -1)
redis.call('DEL', KEYS[2])
local out = {}
for _, id in ipairs(ids) do
  local jobKey = ARGV[3] .. id
  local f = redis.call('HMGET', jobKey, 'status', 'owner', 'launching')
  if f[1] == 'Pending' and f[2] == ARGV[1] and not f[3] then
    redis.call('HSET', jobKey, 'launching', '1')
    out[#out + 1] = id
  end
end
return out
