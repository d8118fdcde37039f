-- The call a link (KEYS[1]) names; without one yet, the raw event ARGV[1] is held (KEYS[2], expiring in
-- ARGV[2] s) until the link arrives.
local call = redis.call('GET', KEYS[1])
if call then return call end
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return false
