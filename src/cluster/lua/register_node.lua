--[[ register_node: a node (re)starts under its id and gets a new epoch.
KEYS[1] node hash   KEYS[2] nodes (zset)
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
