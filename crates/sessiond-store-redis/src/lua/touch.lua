-- touch.lua: records a use without changing the version.
--
-- KEYS[1] id pointer  KEYS[2] expiry index
-- ARGV[1] last seen (us)  ARGV[2] idle deadline (us)  ARGV[3] client
-- segment (record.rs)  ARGV[4] token key prefix  ARGV[5] fallback TTL (ms)
--
-- Guarantees: writes only when the record exists, is not revoked and the
-- new last-seen time is later than the stored one (touches never move time
-- backwards, and of two racing touches the later one wins). The deadline,
-- the TTLs of the record and its pointers, and both indexes move together.
-- Returns 1 when it wrote, 0 otherwise.
local ik, exp = KEYS[1], KEYS[2]
local rk, raw = follow(ik)
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
redis.call('PEXPIRE', ik, ttl)
local pk = previous_key(r, ARGV[4])
if pk then
  redis.call('PEXPIRE', pk, ttl)
end
redis.call('ZADD', exp, deadline, r.id)
redis.call('ZADD', r.sx, 'XX', deadline, r.id)
return 1
