-- touch.lua: records a use without changing the version.
--
-- KEYS[1] id pointer  KEYS[2] expiry index
-- ARGV[1] last seen (us)  ARGV[2] last seen (RFC 3339)  ARGV[3] idle
-- deadline (RFC 3339)  ARGV[4] idle deadline (us)  ARGV[5] client JSON
-- ARGV[6] token pointer prefix  ARGV[7] fallback TTL (ms)
--
-- Guarantees: writes only when the record exists, is not revoked and the
-- new last-seen time is later than the stored one (touches never move time
-- backwards, and of two racing touches the later one wins). The deadline,
-- the TTLs of the record and its pointers, and both indexes move together.
-- Returns 1 when it wrote, 0 otherwise.
local ik, exp = KEYS[1], KEYS[2]
local rk = redis.call('GET', ik)
if not rk then
  return 0
end
local f = redis.call('HMGET', rk, 'rev', 'seen_us', 'exp_us', 'abs_us', 'th', 'ph', 'sx', 'id')
if not f[2] or f[1] then
  return 0
end
if tonumber(f[2]) >= tonumber(ARGV[1]) then
  return 0
end
-- The strings, not numbers, are stored, so no digit is lost.
local deadline = f[4]
if tonumber(ARGV[4]) < tonumber(f[4]) then
  deadline = ARGV[4]
end
local ttl = shifted_ttl(rk, tonumber(f[3]), tonumber(deadline), tonumber(ARGV[7]))
redis.call('HSET', rk, 'seen', ARGV[2], 'seen_us', ARGV[1], 'idle', ARGV[3], 'client', ARGV[5], 'exp_us', deadline)
redis.call('PEXPIRE', rk, ttl)
redis.call('PEXPIRE', ik, ttl)
redis.call('PEXPIRE', ARGV[6] .. f[5], ttl)
if f[6] ~= '' then
  redis.call('PEXPIRE', ARGV[6] .. f[6], ttl)
end
redis.call('ZADD', exp, deadline, f[8])
redis.call('ZADD', f[7], 'XX', deadline, f[8])
return 1
