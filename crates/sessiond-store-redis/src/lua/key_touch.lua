-- key_touch.lua: records a use of an API key, keeping the latest.
--
-- KEYS[1] the keys hash  KEYS[2] the last-use hash (one hash tag)
-- ARGV[1] id  ARGV[2] the use, in µs since the epoch (decimal)
--
-- Guarantees: nothing is written for a missing key (a touch racing a
-- delete cannot leave a last use behind); an earlier use never replaces a
-- later one, so racing touches from several nodes keep the latest. µs
-- since 1970 stay below 2^53 until the year 2255, so Lua's numbers compare
-- them exactly. The version does not move. Answers {'ok'}.
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return {'ok'}
end
local cur = redis.call('HGET', KEYS[2], ARGV[1])
if not cur or tonumber(cur) < tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
end
return {'ok'}
