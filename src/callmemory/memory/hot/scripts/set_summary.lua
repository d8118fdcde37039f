-- Only a live call takes a summary: once ending, its state is being archived and the archive takes it.
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 0 end
if status ~= 'live' then return -1 end
redis.call('HSET', KEYS[1], 'summary', ARGV[1])
return 1
