-- The archive could not be read when the caller's call began: what Redis gathers from here on is only
-- part of their memory, to be completed by the next rehydration (see _HYDRATE).
redis.call('HSET', KEYS[1], 'partial', '1')
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
