-- touch.lua: records a use without changing the version.
--
-- KEYS[1] id bucket  KEYS[2] expiry bucket
-- ARGV[1] last seen (us)  ARGV[2] idle deadline (us)  ARGV[3] client
-- segment (record.rs)  ARGV[4] the shard's key base  ARGV[5] fallback TTL
-- (ms)  ARGV[6] id
--
-- Guarantees: writes only when the record exists, is not revoked and the
-- new last-seen time is later than the stored one (touches never move time
-- backwards, and of two racing touches the later one wins). The deadline,
-- the TTLs of the record and its previous token's pointer, and both
-- indexes move together. Returns 1 when it wrote, 0 otherwise.
local base, id = ARGV[4], ARGV[6]
local rk, raw = follow_id(base, id)
if not rk then
  return 0
end
local r = record_decode(raw)
local seen = tonumber(ARGV[1])
if r.rev ~= '' or r.seen >= seen then
  return 0
end
local old_deadline = deadline_of(r)
r.seen, r.idle, r.client = seen, tonumber(ARGV[2]), ARGV[3]
local deadline = deadline_of(r)
local ttl = shifted_ttl(rk, old_deadline, deadline, tonumber(ARGV[5]))
redis.call('SET', rk, record_encode(r), 'PX', ttl)
local pk = previous_key(r, base)
if pk then
  redis.call('PEXPIRE', pk, ttl)
end
due_set(base, id, deadline)
redis.call('ZADD', index_of(base, r), 'XX', deadline, id)
return 1
