-- event_prune.lua: bounds one tenant's audit events by age and count.
--
-- KEYS[1] the set of tenants with events  KEYS[2] the tenant's sorted set
-- (one hash tag)  ARGV[1] the tenant  ARGV[2] how many to keep at most
-- ARGV[3] the age cut: the smallest id an event young enough can have
--
-- Guarantees: events with ids below the cut go, then the oldest beyond the
-- count; a tenant left with none leaves the tenant set, in the same step,
-- so a racing append (which adds it back) cannot be lost. Running it again
-- removes nothing. Answers {'ok', removed}.
local removed = redis.call('ZREMRANGEBYLEX', KEYS[2], '-', '(' .. ARGV[3])
local left = redis.call('ZCARD', KEYS[2])
local keep = tonumber(ARGV[2])
if left > keep then
  removed = removed + redis.call('ZREMRANGEBYRANK', KEYS[2], 0, left - keep - 1)
  left = keep
end
if left == 0 then
  redis.call('SREM', KEYS[1], ARGV[1])
end
return {'ok', removed}
