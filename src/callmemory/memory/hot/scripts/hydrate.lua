-- Writes a caller's memory loaded from the archive, unless another request got there first: a blind
-- overwrite could drop a turn appended between our archive read and this write. Nor after an erasure:
-- a read of the archive that started before it must not bring the erased memory back. Memory marked
-- partial (begun while the archive was unreachable) is replaced by the archive's, keeping those of its
-- turns that the archive does not have yet (calls not archived so far), after the archive's.
-- ARGV: ttl, calls, topic, seen, summary, profile, greeting, number of call summaries, recent turns cap,
-- summaries..., turns...
if redis.call('EXISTS', KEYS[4]) == 1 then return 0 end
local kept = {}
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'partial') ~= '1' then return 0 end
  local archived = {}
  for i = 10 + tonumber(ARGV[8]), #ARGV do
    local t = cjson.decode(ARGV[i])
    archived[t.c .. '|' .. t.s] = true
  end
  for _, raw in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
    local t = cjson.decode(raw)
    if not archived[t.c .. '|' .. t.s] then table.insert(kept, raw) end
  end
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('HSET', KEYS[1], 'calls', ARGV[2], 'topic', ARGV[3], 'seen', ARGV[4],
           'summary', ARGV[5], 'profile', ARGV[6], 'greeting', ARGV[7])
redis.call('EXPIRE', KEYS[1], ARGV[1])
local sums = tonumber(ARGV[8])
if sums > 0 then
  redis.call('RPUSH', KEYS[3], unpack(ARGV, 10, 9 + sums))
  redis.call('EXPIRE', KEYS[3], ARGV[1])
end
if #ARGV > 9 + sums then redis.call('RPUSH', KEYS[2], unpack(ARGV, 10 + sums)) end
if #kept > 0 then redis.call('RPUSH', KEYS[2], unpack(kept)) end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[9]), -1)
  redis.call('EXPIRE', KEYS[2], ARGV[1])
end
return 1
