-- Set the link (KEYS[1], the call id ARGV[1], expiring in ARGV[2] s) and hand back whatever waited for
-- it (KEYS[2]), atomically: an event that checks for the link (resolve_or_hold) either sees it or is in
-- the list this drains, never neither.
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
local held = redis.call('LRANGE', KEYS[2], 0, -1)
redis.call('DEL', KEYS[2])
return held
