-- Postgres refused the frozen call: count it on the call's state, which, with its transcript, is kept
-- without expiry. 0 when the state is gone.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local refusals = redis.call('HINCRBY', KEYS[1], 'refusals', 1)
redis.call('HSET', KEYS[1], 'refused', ARGV[1])
redis.call('PERSIST', KEYS[1])
redis.call('PERSIST', KEYS[2])
return refusals
