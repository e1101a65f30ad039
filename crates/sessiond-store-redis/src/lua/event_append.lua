-- event_append.lua: stores a batch of audit events, all in one step.
--
-- KEYS[1] the set of tenants with events
-- KEYS[1 + i] the sorted set of the tenant of event i (all share the tag
--   {events}, so one script may change them together)
-- ARGV[2i - 1] the tenant of event i  ARGV[2i] its member: the 35-byte
--   event id, a space, the event's JSON (written by Rust only)
--
-- Every member has score 0, so a sorted set orders them by bytes, and as
-- ids are fixed width and the space sorts below every id byte, by id.
--
-- Guarantees (a script runs alone, so a reader sees the batch whole or
-- not at all):
--  * an event whose id is stored is skipped, whatever its JSON, so a batch
--    retried after a lost reply is not stored twice;
--  * the tenant set names every tenant that has events.
-- No TTL: events go only by event_prune.lua. Answers {'ok', written}.
local written = 0
for i = 2, #KEYS do
  local tenant, member = ARGV[2 * (i - 1) - 1], ARGV[2 * (i - 1)]
  local id = string.sub(member, 1, 35)
  local taken = redis.call('ZRANGEBYLEX', KEYS[i], '[' .. id .. ' ', '(' .. id .. '!', 'LIMIT', 0, 1)
  if #taken == 0 then
    redis.call('ZADD', KEYS[i], 0, member)
    redis.call('SADD', KEYS[1], tenant)
    written = written + 1
  end
end
return {'ok', written}
