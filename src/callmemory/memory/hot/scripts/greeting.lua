-- The greeting rule, written only here: the greeting prepared by the summary job after the caller's last
-- call; else the template for a new caller (no call counted and no recent turn), for a returning one with
-- their last topic, or for one without. `meta` holds the caller's `greeting`, `calls` and `topic`.
local function greeting_for(meta, has_turns, new, returning, returning_no_topic)
  if meta.greeting and meta.greeting ~= '' then return meta.greeting end
  if tonumber(meta.calls or '0') == 0 and not has_turns then return new end
  if meta.topic and meta.topic ~= '' then
    -- A plain replacement: an operator's template with other braces must not break a call; and '%' in
    -- the topic is escaped, gsub reading it as a capture otherwise.
    return (string.gsub(returning, '{topic}', (string.gsub(meta.topic, '%%', '%%%%'))))
  end
  return returning_no_topic
end
