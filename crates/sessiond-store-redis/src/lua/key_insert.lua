-- key_insert.lua: adds an API key.
--
-- KEYS[1] the keys hash (id -> record JSON)  KEYS[2] the last-use hash
-- (id -> µs)  KEYS[3] the version counter (all three share one hash tag)
-- ARGV[1] id  ARGV[2] record JSON (written by Rust only)
-- ARGV[3] '1' for a first key (only into a store without keys), else '0'
--
-- Guarantees (a script runs alone, so nothing interleaves with it):
--  * a first key is written only while the keys hash is empty: of racing
--    first keys on any number of nodes at most one writes ({'taken'});
--  * never overwrites: a taken id answers {'exists'} and nothing is written;
--  * a stale last use of an earlier key with this id is dropped;
--  * every write moves the version on, in the same step.
-- No TTL: a key lives until it is deleted. Answers {'ok'}.
if ARGV[3] == '1' and redis.call('HLEN', KEYS[1]) > 0 then
  return {'taken'}
end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  return {'exists'}
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('INCR', KEYS[3])
return {'ok'}
