-- Close the call (KEYS[1], expiring in ARGV[1] s) for good and return its buffered turns (KEYS[2]) in
-- spoken order.
redis.call('HSET', KEYS[1], 'ended', '1')
redis.call('EXPIRE', KEYS[1], ARGV[1])
return redis.call('ZRANGE', KEYS[2], 0, -1)
