-- subject.lua: a subject's live sessions.
--
-- KEYS[1] subject index
-- ARGV[1] now (us)  ARGV[2] id pointer prefix
--
-- Liveness is decided on the index score (the deadline) and the record's
-- revocation together, in one snapshot. Returns the records.
local out = {}
for _, m in ipairs(live_members(KEYS[1], ARGV[1], ARGV[2])) do
  out[#out + 1] = m.raw
end
return out
