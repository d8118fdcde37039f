-- The greeting for memory read elsewhere (from the archive): no key is read. ARGV: the prepared greeting,
-- the call count, 1 if there are recent turns, the last topic, then the templates (new, returning,
-- returning without a topic).
return greeting_for({greeting=ARGV[1], calls=ARGV[2], topic=ARGV[4]}, ARGV[3] == '1', ARGV[5], ARGV[6], ARGV[7])
