--[[ expire_jobs: removes terminal jobs last updated before a cutoff, with their index entries.
Only jobs owned by ARGV[3] (their output files live on its host), or by a node that no longer
has a record, are removed; others wait for their owner.
KEYS[1] expiry (zset)   KEYS[2] all jobs (zset)
ARGV[1] cutoff (ms)   ARGV[2] key prefix ('<prefix>:')   ARGV[3] this node id   ARGV[4] max jobs
Returns a flat list: id, files JSON ('' if none), … of the removed jobs. ]]
local removed = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[4]))) do
  local jobKey = ARGV[2] .. 'job:' .. id
  local f = redis.call('HMGET', jobKey, 'owner', 'user', 'files')
  if f[1] == ARGV[3] or f[1] == false or redis.call('EXISTS', ARGV[2] .. 'node:' .. f[1]) == 0 then
    redis.call('DEL', jobKey)
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
    if f[2] then redis.call('ZREM', ARGV[2] .. 'jobs:user:' .. f[2], id) end
    removed[#removed + 1] = id
    removed[#removed + 1] = f[1] == ARGV[3] and (f[3] or '') or ''
  end
end
return removed
