-- From here on no turn is accepted, so the transcript handed to the archive is the whole call. The first
-- end time and reason stick, so a retried or swept end archives the call as it was first ended. With an
-- idle cutoff (ARGV[1], the sweeper's) a call active since then is left alone and its last activity
-- returned instead.
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
if ARGV[1] ~= '' then
  local last = redis.call('HGET', KEYS[1], 'last') or '0'
  if tonumber(last) > tonumber(ARGV[1]) then return last end
end
redis.call('HSET', KEYS[1], 'status', 'ending')
if ARGV[2] ~= '' then redis.call('HSETNX', KEYS[1], 'ended', ARGV[2]) end
if ARGV[3] ~= '' then redis.call('HSETNX', KEYS[1], 'reason', ARGV[3]) end
return {redis.call('HGETALL', KEYS[1]), redis.call('LRANGE', KEYS[2], 0, -1)}
