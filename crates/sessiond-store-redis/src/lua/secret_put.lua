-- secret_put.lua: compare-and-set replacement of a shared secret value.
--
-- KEYS[1] secret key
-- ARGV[1] the expected value  ARGV[2] the new value (opaque bytes, written
-- by Rust)
--
-- Guarantees (a script runs alone, so nothing interleaves with it):
--  * writes only over exactly the expected bytes, else answers
--    {'conflict'} and writes nothing;
--  * never creates: {'notfound'} when nothing is stored;
--  * keeps no TTL, as init set none.
-- Answers {'ok'}.
local cur = redis.call('GET', KEYS[1])
if not cur then
  return {'notfound'}
end
if cur ~= ARGV[1] then
  return {'conflict'}
end
redis.call('SET', KEYS[1], ARGV[2])
return {'ok'}
