-- Mark the call (KEYS[1], expiring in ARGV[1] s) ended, so that no answer is spoken into it any more, and
-- return the managed-AI turns an earlier version buffered for it (KEYS[2]) in spoken order.
redis.call('HSET', KEYS[1], 'ended', '1')
redis.call('EXPIRE', KEYS[1], ARGV[1])
return redis.call('ZRANGE', KEYS[2], 0, -1)
