-- A live call is verified (the bot checked the caller): its trust becomes `verified`, and a call kept
-- apart from the caller's memory joins it. Its transcript so far goes onto the caller's recent turns,
-- so that what it said before the check counts as the caller's and its next turn reads their memory.
-- The caller's memory must be complete in Redis beforehand (the service rehydrates it first), or these
-- turns would stand for all of it. Returns 0 (no live state), -1 (ending), 2 (already verified), 1.
local state = redis.call('HMGET', KEYS[1], 'status', 'apart', 'trust')
if not state[1] then return 0 end
if state[1] ~= 'live' then return -1 end
if state[3] == 'verified' then return 2 end
redis.call('HSET', KEYS[1], 'trust', 'verified')
if state[2] ~= '1' then return 1 end
redis.call('HDEL', KEYS[1], 'apart')
local said = redis.call('LRANGE', KEYS[2], 0, -1)
if #said > 0 then
  redis.call('RPUSH', KEYS[3], unpack(said))
  redis.call('LTRIM', KEYS[3], -tonumber(ARGV[1]), -1)
  redis.call('EXPIRE', KEYS[3], ARGV[2])
  redis.call('HSET', KEYS[4], 'seen', ARGV[3])
  redis.call('EXPIRE', KEYS[4], ARGV[2])
end
return 1
