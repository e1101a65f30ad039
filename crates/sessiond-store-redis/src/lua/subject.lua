-- subject.lua: a subject's live sessions.
--
-- KEYS[1] subject index
-- ARGV[1] now (us)  ARGV[2] the shard's key base
--
-- Liveness is decided on the index score (the deadline) and the record's
-- revocation together, in one snapshot. Returns the records (tagged).
local out = {}
for _, m in ipairs(live_members(KEYS[1], ARGV[1], ARGV[2])) do
  out[#out + 1] = tagged(m.key, m.raw)
end
return out
