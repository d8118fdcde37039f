-- Transcripts arrive in any order; only the latest-said one so far gets an answer (its memory holds the
-- others). ARGV[1] is where a caller turn was said, a key built to sort in the order of speech, so the
-- keys compare as strings; the call (KEYS[1]) keeps the latest, expiring in ARGV[2] s.
local latest = redis.call('HGET', KEYS[1], 'spoken')
if latest and latest > ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'spoken', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
