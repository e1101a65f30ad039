-- counter_reserve.lua: counts one failure on every key unless one of them
-- is locked (see CounterStore in sessiond-core for the semantics).
--
-- KEYS[1..n] counter keys (hashes: c count, l last failure, u lock end,
--            e expiry; times in unix microseconds)
-- ARGV[1]    now (µs)
-- ARGV[2+4(i-1) ..] per key: free failures, base delay, max delay and
--            forget-after (µs)
--
-- Guarantees (a script runs alone, so nothing interleaves with it):
--  * every lock is read before anything is written: a locked key refuses
--    the whole call and nothing is counted, so racing reserves on any
--    number of nodes get exactly the allowance left;
--  * a record past its expiry counts as missing (counting restarts at 1);
--  * each counted key gets a TTL of forget-after from now, so Redis drops
--    forgotten records by itself (relative to the call, so no clock of
--    Redis' is compared with the caller's).
-- Answers {'counted', c1, …} or {'locked', u1 or nil, …}.
local now = tonumber(ARGV[1])
local records, locks, locked = {}, {}, false
for i = 1, #KEYS do
  local rec = read_counter(KEYS[i], now)
  records[i] = rec
  if rec and now < rec.u then
    locks[i] = rec.u
    locked = true
  else
    -- false: a nil element in the reply without ending the Lua array.
    locks[i] = false
  end
end
if locked then
  return {'locked', unpack(locks)}
end
local counts = {}
for i = 1, #KEYS do
  local a = 2 + 4 * (i - 1)
  local free, base, max = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local forget = tonumber(ARGV[a + 3])
  local c = 1
  if records[i] then
    c = math.min(records[i].c + 1, 4294967295)
  end
  redis.call('HSET', KEYS[i], 'c', c, 'l', now,
    'u', now + counter_delay(c, free, base, max), 'e', now + forget)
  redis.call('PEXPIRE', KEYS[i], math.max(1, math.ceil(forget / 1000)))
  counts[i] = c
end
return {'counted', unpack(counts)}
