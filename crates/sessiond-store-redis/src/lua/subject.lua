-- subject.lua: a subject's live sessions.
--
-- KEYS[1] subject index
-- ARGV[1] now (us)  ARGV[2] record key prefix of the subject
--
-- Liveness is decided on the index score (the deadline) and the record's
-- revocation together, in one snapshot. Returns the records.
local live = live_members(KEYS[1], ARGV[1], ARGV[2])
local out = {}
for _, m in ipairs(live) do
  out[#out + 1] = read_record(m.key)
end
return out
