redis.call('DEL', KEYS[1], KEYS[2])
if redis.call('EXISTS', KEYS[3]) == 1 then
  if ARGV[1] == '1' then
    redis.call('HINCRBY', KEYS[3], 'calls', 1)
    -- prepared for the call before this one: the template serves until this call is summarised
    redis.call('HDEL', KEYS[3], 'greeting')
  end
  if ARGV[2] ~= '' then redis.call('HSET', KEYS[3], 'topic', ARGV[2]) end
end
return 1
