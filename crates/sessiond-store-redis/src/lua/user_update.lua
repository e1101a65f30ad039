-- user_update.lua: compare-and-set replacement of a portal account.
--
-- KEYS[1] user key
-- ARGV[1] expected version  ARGV[2] new version  ARGV[3] record JSON
-- (written by Rust only)
--
-- Guarantees (a script runs alone, so nothing interleaves with it):
--  * writes the whole record only over the expected version, else answers
--    {'conflict', stored version} and writes nothing;
--  * never creates: {'notfound'} when there is no such account;
--  * versions are compared as the decimal text Rust writes, exactly (no
--    Lua number, which would round past 2^53).
-- The name index needs no change: the key, hence the name, is the same.
-- Answers {'ok'}.
local cur = redis.call('HGET', KEYS[1], 'v')
if not cur then
  return {'notfound'}
end
if cur ~= ARGV[1] then
  return {'conflict', cur}
end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'body', ARGV[3])
return {'ok'}
