--[[ expire_jobs: removes terminal jobs last updated before a cutoff, with their index entries.
Only jobs owned by ARGV[5] (their output files live on its host), or by a node that no longer
has a record, are removed; others wait for their owner.
KEYS (named in scripts.ts, every one from keys.ts):
  KEYS[1] expiry       terminal jobs by when they ended (zset)
  KEYS[2] jobsAll      all jobs (zset)
The keys of the expired ids' job hashes, their owners' node hashes and their users' job sets are
only known here: they are built from the key prefixes in ARGV[2..4], which come from keys.ts
(scriptPrefixes), so that file still names every key (see settle_lost.lua on Redis Cluster).
ARGV[1] cutoff (ms)   ARGV[2] job key prefix   ARGV[3] node key prefix   ARGV[4] user jobs key prefix
ARGV[5] this node id   ARGV[6] max jobs
Returns a flat list: id, files JSON ('' if none), … of the removed jobs. ]]
local jobPrefix, nodePrefix, userPrefix, thisNode = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local removed = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[6]))) do
  local jobKey = jobPrefix .. id
  local f = redis.call('HMGET', jobKey, 'owner', 'user', 'files')
  if f[1] == thisNode or f[1] == false or redis.call('EXISTS', nodePrefix .. f[1]) == 0 then
    redis.call('DEL', jobKey)
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
    if f[2] then redis.call('ZREM', userPrefix .. f[2], id) end
    removed[#removed + 1] = id
    removed[#removed + 1] = f[1] == thisNode and (f[3] or '') or ''
  end
end
return removed
