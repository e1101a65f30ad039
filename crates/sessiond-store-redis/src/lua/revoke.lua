-- revoke.lua: revokes one record by id.
--
-- KEYS[1] id pointer
-- ARGV[1] revocation segment (record.rs)  ARGV[2] audit (common.lua): its
--   known events are stored when the record is revoked
--
-- Guarantees: a live or expired, not yet revoked record becomes a
-- tombstone (revocation set, version + 1, out of the subject index) and is
-- returned; an absent or already revoked one is left alone and nil is
-- returned, so exactly one of two racing revocations reports it.
local rk, raw = follow(KEYS[1])
if not rk then
  return nil
end
local r = record_decode(raw)
if r.rev ~= '' then
  return nil
end
audit_known(audit_open(ARGV[2]))
return revoke_record(rk, r, ARGV[1])
