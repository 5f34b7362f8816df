--[[ read_jobs: reads chosen fields of many jobs in one call, for listings, and leaves out those a
listing's status filter or tag filter rules out; writes nothing. One call per batch of ids instead of
one command per job: a client pays per command (a listing of 10,000 jobs spent more time on 10,000
pipelined replies than on their bytes), Redis pays the same HMGETs either way.
KEYS: none. The job hashes are only known here, like settle_lost.lua's: ARGV[1] .. id, the prefix
coming from keys.ts (scriptPrefixes.job).
ARGV[1] job key prefix   ARGV[2] number of fields F   ARGV[3 .. 2+F] the fields, `ver` first (every
job has it: none means the job expired)
then S, S statuses (S = 0: any status; a job without one has status '')
then T, T needles: text each of which must occur in the job's spec (a tag as JSON text: a job with
the tag has it in its spec; the caller checks the tags exactly)
then the job ids.
Returns a flat list: id, then its F values (nil for a field it lacks), for each job kept, in order. ]]
local prefix, nf = ARGV[1], tonumber(ARGV[2])
local fields = {}
for i = 1, nf do fields[i] = ARGV[2 + i] end
local at = 3 + nf
local ns = tonumber(ARGV[at])
local statuses = nil
if ns > 0 then
  statuses = {}
  for i = 1, ns do statuses[ARGV[at + i]] = true end
end
at = at + ns + 1
local nt = tonumber(ARGV[at])
local needles = {}
for i = 1, nt do needles[i] = ARGV[at + i] end
at = at + nt + 1

-- A job a filter rules out costs one HGET, not the whole HMGET.
local out = {}
for i = at, #ARGV do
  local id = ARGV[i]
  local key = prefix .. id
  local keep = true
  if statuses then keep = statuses[redis.call('HGET', key, 'status') or ''] == true end
  if keep and nt > 0 then
    local spec = redis.call('HGET', key, 'spec') or ''
    for j = 1, nt do
      if not string.find(spec, needles[j], 1, true) then
        keep = false
        break
      end
    end
  end
  if keep then
    local v = redis.call('HMGET', key, unpack(fields))
    if v[1] then
      out[#out + 1] = id
      for j = 1, nf do out[#out + 1] = v[j] end
    end
  end
end
return out
