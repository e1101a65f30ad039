-- user_insert.lua: adds a portal account and its entry in the tenant's
-- name index.
--
-- KEYS[1] user key  KEYS[2] the tenant's name index (same hash tag)
-- ARGV[1] name  ARGV[2] version  ARGV[3] record JSON (written by Rust only)
--
-- Guarantees (a script runs alone, so nothing interleaves with it):
--  * never overwrites: a taken key answers {'exists'} and nothing is written;
--  * the record and its index entry are written together or not at all;
--  * no TTL: an account lives until it is removed.
-- Answers {'ok'}.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {'exists'}
end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'body', ARGV[3])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
return {'ok'}
