-- An erasure: the tombstone that stops rehydration bringing the archive's old copy back, then the keys.
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
local deleted = 0
for i = 2, #KEYS do deleted = deleted + redis.call('DEL', KEYS[i]) end
return deleted
