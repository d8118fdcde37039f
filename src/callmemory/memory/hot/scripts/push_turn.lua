-- One turn onto a live call's transcript (KEYS[1] state, KEYS[2] log) and the caller's capped recent turns
-- (KEYS[3] turns, KEYS[4] meta), refreshing their TTLs: shared by the scripts that record turns.
-- `spoken` (or '') is the platform's key of where in the call the turn was said, for platforms whose
-- deliveries arrive out of order: the turn goes in front of the first recorded turn said after it, in both
-- lists, so that the transcript, the archive and the prompt follow the order of speech. The seq numbers
-- then no longer follow the list; the archive numbers a call's turns by their place in it. A call kept
-- `apart` from the caller's memory (see start_call.lua) writes its transcript only.
local function push_turn(keys, role, text, at, call_id, fallback, cap, memory_ttl, call_ttl, spoken, apart)
  local seq = redis.call('HINCRBY', keys[1], 'seq', 1)
  local entry = {s=seq, r=role, t=text, at=tonumber(at), c=call_id, f=tonumber(fallback)}
  local later = false
  if spoken and spoken ~= '' then
    entry.k = spoken
    for _, raw in ipairs(redis.call('LRANGE', keys[2], 0, -1)) do
      local other = cjson.decode(raw)
      if other.k and other.k > spoken then later = raw break end
    end
  end
  local turn = cjson.encode(entry)
  -- The idle clock never goes back: a turn said earlier may arrive last.
  if tonumber(at) > tonumber(redis.call('HGET', keys[1], 'last') or '0') then
    redis.call('HSET', keys[1], 'last', at)
  end
  if later then
    redis.call('LINSERT', keys[2], 'BEFORE', later, turn)
  else
    redis.call('RPUSH', keys[2], turn)
  end
  redis.call('EXPIRE', keys[1], call_ttl)
  redis.call('EXPIRE', keys[2], call_ttl)
  if apart then return seq end
  if later then
    -- Trimmed from the recent turns already, the later one was among the oldest: so is this one.
    if redis.call('LINSERT', keys[3], 'BEFORE', later, turn) <= 0 then redis.call('LPUSH', keys[3], turn) end
  else
    redis.call('RPUSH', keys[3], turn)
  end
  redis.call('LTRIM', keys[3], -tonumber(cap), -1)
  redis.call('EXPIRE', keys[3], memory_ttl)
  redis.call('HSET', keys[4], 'seen', at)
  redis.call('EXPIRE', keys[4], memory_ttl)
  return seq
end
