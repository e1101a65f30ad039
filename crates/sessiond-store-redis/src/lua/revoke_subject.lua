-- revoke_subject.lua: revokes every live session of a subject but one.
--
-- KEYS[1] subject index
-- ARGV[1] now (us)  ARGV[2] stale-before (us)  ARGV[3] revocation segment
-- ARGV[4] the shard's key base  ARGV[5] id to spare, or ''
-- ARGV[6] audit (common.lua): a picked event per revoked record
--
-- Guarantees: all at once, so a login racing with "sign out everywhere"
-- is either revoked or happened after it; expired sessions are left as they
-- are. Returns the revoked records (tagged) as they are afterwards.
local sx = KEYS[1]
redis.call('ZREMRANGEBYSCORE', sx, '-inf', ARGV[2])
local audit = audit_open(ARGV[6])
local out = {}
for _, m in ipairs(live_members(sx, ARGV[1], ARGV[4])) do
  if m.id ~= ARGV[5] then
    local tenant, subject = names_of(m.r)
    audit_picked(audit, #out, m.id, tenant, subject)
    out[#out + 1] = tagged(m.key, revoke_record(m.key, m.r, ARGV[3], m.id, sx))
  end
end
return out
