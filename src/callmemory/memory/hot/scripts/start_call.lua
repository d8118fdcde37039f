-- Opens a call's live state and greets the caller in the same step: a ringing is what the caller waits
-- through in silence, so it is one round trip. The greeting follows greeting_for (greeting.lua): the
-- templates come in ARGV[4..6], and ARGV[10] is 0 when the call opens without a greeting. Without
-- complete hot memory (KEYS[4] missing or partial) the caller is not greeted here: their memory must come
-- from the archive first. ARGV[11] is the call's trust, kept in its state for the archive; ARGV[12] is 1
-- for a call kept apart from the caller's memory (core/trust.py): it reads none of it and is greeted as
-- a brand-new caller, whatever the memory holds. A repeated start returns the call's first turn instead.
-- Returns {status, first turn or false, then the caller's memory as it was before this call: meta,
-- recent turns, call summaries}; for a call kept apart, {'apart', '1'} and two empty lists.
local status = redis.call('HGET', KEYS[1], 'status')
local apart = ARGV[12] == '1'
if status then apart = redis.call('HGET', KEYS[1], 'apart') == '1' end
local memory
if apart then
  memory = {{'apart', '1'}, {}, {}}
else
  memory = {redis.call('HGETALL', KEYS[4]), redis.call('LRANGE', KEYS[3], 0, -1),
            redis.call('LRANGE', KEYS[5], 0, -1)}
end
if status then return {status, redis.call('LINDEX', KEYS[2], 0), unpack(memory)} end
redis.call('HSET', KEYS[1], 'bot', ARGV[1], 'started', ARGV[2], 'last', ARGV[2], 'seq', 0, 'status', 'live',
           'trust', ARGV[11])
if apart then redis.call('HSET', KEYS[1], 'apart', '1') end
redis.call('EXPIRE', KEYS[1], ARGV[3])
if ARGV[10] ~= '1' then return {'new', false, unpack(memory)} end
local greeting
if apart then
  greeting = ARGV[4]
else
  local meta = {}
  for i = 1, #memory[1], 2 do meta[memory[1][i]] = memory[1][i + 1] end
  if #memory[1] == 0 or meta.partial == '1' then return {'new', false, unpack(memory)} end
  greeting = greeting_for(meta, #memory[2] > 0, ARGV[4], ARGV[5], ARGV[6])
end
push_turn(KEYS, 'bot', greeting, ARGV[2], ARGV[7], 0, ARGV[8], ARGV[9], ARGV[3], nil, apart)
return {'new', redis.call('LINDEX', KEYS[2], 0), unpack(memory)}
