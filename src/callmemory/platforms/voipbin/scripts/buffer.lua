-- A managed AI's turn (ARGV[2], scored by when spoken, ARGV[1]) kept in the call's buffer (KEYS[2],
-- expiring in ARGV[3] s). Once the call (KEYS[1]) is sealed for archiving, its buffer takes nothing more:
-- a later turn goes to the archive.
if redis.call('HGET', KEYS[1], 'ended') == '1' then return 0 end
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 1
