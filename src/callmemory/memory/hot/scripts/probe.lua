-- The readiness probe's round trip on one bucket's shard: a script that writes (a shard that is read-only,
-- out of memory or not the slot's master refuses it) and reads back what it wrote.
redis.call('SET', KEYS[1], ARGV[1], 'PX', 10000)
return redis.call('GET', KEYS[1])
