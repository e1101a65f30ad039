-- read.lua: a key's value, following one pointer (`>` and a record key).
--
-- KEYS[1] a token key (a record, or a previous token's pointer) or an id
-- pointer
-- Returns the record's value, or whatever the key holds when it is not a
-- pointer (nil, a record, a layout-1 value), for record.rs to classify.
--
-- The hot path (verify by the current token) is a plain GET instead; this
-- is for ids and previous tokens, where the pointer and the record must be
-- read in one step. Read-only.
local v = redis.call('GET', KEYS[1])
if v and string.byte(v, 1) == POINTER then
  return redis.call('GET', string.sub(v, 2))
end
return v
