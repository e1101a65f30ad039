-- secret_init.lua: stores a shared secret value unless one is stored.
--
-- KEYS[1] secret key
-- ARGV[1] the value: opaque bytes (a secret set or a sealed record, from Rust)
--
-- Guarantees (a script runs alone, so nothing interleaves with it):
--  * writes ARGV[1] only when the key does not exist: of racing inits on
--    any number of nodes exactly one writes (first writer wins);
--  * answers with what is stored afterwards, so every racer learns the
--    winner's set in the same step (a separate GET could see a later put);
--  * Lua strings are byte strings: the set is never re-encoded.
-- No TTL: sets never expire. Answers {'stored', set}.
local cur = redis.call('GET', KEYS[1])
if cur then
  return {'stored', cur}
end
redis.call('SET', KEYS[1], ARGV[1])
return {'stored', ARGV[1]}
