-- read.lua: the record of an id, or the one a previous token leads to.
--
-- KEYS[1] the id's bucket, or a token key
-- ARGV[1] the id, or '' for a token key  ARGV[2] the shard's key base
-- Returns the record (tagged), or nil: no record, or a value of another
-- layout (record.rs).
--
-- The hot path (verify by the current token) is a plain GET instead; this
-- is for ids and previous tokens, where the pointer and the record must be
-- read in one step. Read-only.
local rk, raw
if ARGV[1] ~= '' then
  rk, raw = follow_id(ARGV[2], ARGV[1])
else
  local v = redis.call('GET', KEYS[1])
  if v and string.byte(v, 1) == POINTER then
    rk, raw = follow(KEYS[1])
  elseif v and string.byte(v, 1) == LAYOUT then
    rk, raw = KEYS[1], v
  end
end
if not rk then
  return nil
end
return tagged(rk, raw)
