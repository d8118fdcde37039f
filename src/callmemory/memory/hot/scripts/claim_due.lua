-- Hands out due entries of a schedule (a sorted set scored by due time) and pushes each one a lease into
-- the future, so that another instance does not pick it up while this one works on it.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, member in ipairs(due) do redis.call('ZADD', KEYS[1], 'XX', ARGV[2], member) end
return due
