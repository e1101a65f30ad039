-- counter_release.lua: gives one failure back to every key's live record.
--
-- KEYS[1..n] counter keys (see counter_reserve.lua)
-- ARGV[1]    now (µs)
-- ARGV[2+3(i-1) ..] per key: free failures, base delay, max delay (µs)
--
-- Guarantees (a script runs alone, so nothing interleaves with it):
--  * the count goes down by one, never below zero, and the lock becomes
--    the one the remaining failures set at the last failure;
--  * a missing or forgotten record is left alone;
--  * the expiry and the TTL stay: a release is no failure.
-- Answers {'ok'}.
local now = tonumber(ARGV[1])
-- Every record is read before the first write, so a corrupt one refuses
-- the call whole.
local records = {}
for i = 1, #KEYS do
  records[i] = read_counter(KEYS[i], now) or false
end
for i = 1, #KEYS do
  local rec = records[i]
  if rec then
    local a = 2 + 3 * (i - 1)
    local c = math.max(rec.c - 1, 0)
    local delay = counter_delay(c, tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]))
    redis.call('HSET', KEYS[i], 'c', c, 'u', rec.l + delay)
  end
end
return {'ok'}
