-- A call was summarised: fold the result into hot memory, if the caller has any (otherwise the next
-- rehydration reads it from the archive).
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'summary', ARGV[1], 'profile', ARGV[2], 'greeting', ARGV[3])
-- A rehydration between the archive's commit and this call may have loaded this summary already.
if ARGV[4] ~= '' and redis.call('LINDEX', KEYS[2], -1) ~= ARGV[4] then
  redis.call('RPUSH', KEYS[2], ARGV[4])
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[5]), -1)
  redis.call('EXPIRE', KEYS[2], ARGV[6])
end
return 1
