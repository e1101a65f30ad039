-- user_delete.lua: removes a portal account and its entry in the
-- tenant's name index.
--
-- KEYS[1] user key  KEYS[2] the tenant's name index (same hash tag)
-- ARGV[1] name
--
-- Guarantees: the record and its index entry go together, so a listing
-- never names a user that is gone. Answers {'ok', 1} or {'ok', 0}.
local removed = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return {'ok', removed}
