-- revoke.lua: revokes one record by id.
--
-- KEYS[1] id bucket
-- ARGV[1] revocation segment (record.rs)  ARGV[2] audit (common.lua): its
--   known events are stored when the record is revoked  ARGV[3] the
--   shard's key base  ARGV[4] id
--
-- Guarantees: a live or expired, not yet revoked record becomes a
-- tombstone (revocation set, version + 1, out of the subject index) and is
-- returned (tagged); an absent or already revoked one is left alone and nil
-- is returned, so exactly one of two racing revocations reports it.
local base, id = ARGV[3], ARGV[4]
local rk, raw = follow_id(base, id)
if not rk then
  return nil
end
local r = record_decode(raw)
if r.rev ~= '' then
  return nil
end
audit_known(audit_open(ARGV[2]))
return tagged(rk, revoke_record(rk, r, ARGV[1], id, index_of(base, r)))
