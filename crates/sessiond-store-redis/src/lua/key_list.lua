-- key_list.lua: every API key and every last use, read in one step.
--
-- KEYS[1] the keys hash  KEYS[2] the last-use hash (one hash tag)
--
-- One script so both hashes are read at the same instant: a key deleted
-- between two separate reads could otherwise show another key's use.
-- Answers {'ok', {id, json, …}, {id, µs, …}}.
return {'ok', redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}
