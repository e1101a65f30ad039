-- subject.lua: a subject's live sessions, listed or counted.
--
-- KEYS[1] subject index
-- ARGV[1] now (us)  ARGV[2] record key prefix of the subject
-- ARGV[3] 'list' or 'count'
--
-- Liveness is decided on the index score (the deadline) and the record's
-- revocation together, in one snapshot. Returns the records, or their count.
local live = live_members(KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] == 'count' then
  return #live
end
local out = {}
for _, m in ipairs(live) do
  out[#out + 1] = read_record(m.key)
end
return out
