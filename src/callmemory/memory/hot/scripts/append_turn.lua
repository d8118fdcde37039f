-- Appends one turn to the live transcript and to the caller's capped recent turns, refreshes both TTLs,
-- and returns the caller's memory as it now stands (unless ARGV[11] is 0, for the bot's turns, whose
-- memory nobody reads): record and read in one atomic round trip. ARGV[12] is where the turn was spoken
-- (see push_turn). With an event key (ARGV[9]) the platform's event is claimed in the same step: a
-- caller turn only if the event was never seen ({-2, answer-or-""} otherwise); a bot turn only if no
-- answer is stored for it yet ({-2, answer} otherwise), and it becomes the stored answer. A call kept
-- apart from the caller's memory (start_call.lua) reads back its own latest turns as the memory, with
-- the meta {'apart', '1'} and no call summaries.
local state = redis.call('HMGET', KEYS[1], 'status', 'apart')
local status, apart = state[1], state[2] == '1'
if not status then return {0} end
if status ~= 'live' then return {-1} end
if ARGV[9] ~= '' then
  local seen = redis.call('HGET', KEYS[5], ARGV[9])
  if ARGV[10] == 'claim' then
    if seen then return {-2, seen} end
    redis.call('HSET', KEYS[5], ARGV[9], '')
  else
    if seen and seen ~= '' then return {-2, seen} end
    redis.call('HSET', KEYS[5], ARGV[9], cjson.encode({t=ARGV[2], f=tonumber(ARGV[5])}))
  end
  -- After the write: an answer may be the first entry (a greeting), and EXPIRE skips a missing key.
  redis.call('EXPIRE', KEYS[5], ARGV[8])
end
local seq = push_turn(KEYS, ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[12],
                      apart)
if ARGV[11] == '0' then return {seq} end
if apart then return {seq, {'apart', '1'}, redis.call('LRANGE', KEYS[2], -tonumber(ARGV[6]), -1), {}} end
return {seq, redis.call('HGETALL', KEYS[4]), redis.call('LRANGE', KEYS[3], 0, -1),
        redis.call('LRANGE', KEYS[6], 0, -1)}
