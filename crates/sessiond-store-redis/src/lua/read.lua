-- read.lua: follows a pointer key (t:<token hash> or i:<id>) to its record.
--
-- KEYS[1] pointer key
-- Returns the READ fields, or nil.
--
-- One round trip for the hot path (verify). Read-only.
local rk = redis.call('GET', KEYS[1])
if not rk then
  return nil
end
return read_record(rk)
