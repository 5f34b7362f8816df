--[[ register_node: a node (re)starts under its id and gets a new epoch.
KEYS (named in scripts.ts, every one from keys.ts):
  KEYS[1] node         the node hash
  KEYS[2] nodes        node ids by last heartbeat (zset)
ARGV[1] node id     ARGV[2] nodes channel   ARGV[3..] field, value pairs (host, ipv4, port, status, …)
Returns { epoch, server time ms }. ]]
local now = now_ms()
local epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
local fields = {}
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], 'lastSeenMs', now, unpack(fields))
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[1])
return { epoch, now }
