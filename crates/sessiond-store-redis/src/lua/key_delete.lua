-- key_delete.lua: removes an API key and its last use.
--
-- KEYS[1] the keys hash  KEYS[2] the last-use hash  KEYS[3] the version
-- counter (one hash tag)  ARGV[1] id
--
-- Guarantees: the record and its last use go together; the version moves
-- on only when a key was removed. Answers {'ok', 1} or {'ok', 0}.
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then
  return {'ok', 0}
end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('INCR', KEYS[3])
return {'ok', 1}
