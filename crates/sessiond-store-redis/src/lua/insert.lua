-- insert.lua: adds a new record with its pointers and index entries,
-- enforcing the subject's session limit in the same step.
--
-- KEYS[1] record key  KEYS[2] id pointer  KEYS[3] subject index
-- KEYS[4] expiry index  KEYS[5..] token pointers (current, previous)
-- ARGV[1] now (us)  ARGV[2] stale-before (us)  ARGV[3] 'none'|'deny'|'evict'
-- ARGV[4] limit  ARGV[5] revocation JSON for evictions  ARGV[6] TTL (ms)
-- ARGV[7] record key prefix of the subject  ARGV[8] id  ARGV[9] deadline (us)
-- ARGV[10] revocation JSON of the new record or ''  ARGV[11] audit
-- (common.lua): its known events, and a picked event per eviction
-- ARGV[12..] HSET pairs
--
-- Guarantees (a script runs alone, so nothing interleaves with it):
--  * never overwrites: a known id or token hash answers {'collision'} and
--    nothing is written;
--  * the limit counts live sessions at the caller's now; 'deny' answers
--    {'limit'} and writes nothing; 'evict' revokes the oldest by
--    (created_at, id) until there is room, together with the insert;
--  * subject index entries whose records Redis already expired are dropped
--    on the way, so the index stays small without a scan.
-- Answers {'ok', evicted record...}.
local rk, ik, sx, exp = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
if redis.call('EXISTS', rk) == 1 or redis.call('EXISTS', ik) == 1 then
  return {'collision'}
end
for i = 5, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    return {'collision'}
  end
end

local now, mode, id, deadline = ARGV[1], ARGV[3], ARGV[8], ARGV[9]
local audit = audit_open(ARGV[11])
redis.call('ZREMRANGEBYSCORE', sx, '-inf', ARGV[2])
local out = {'ok'}
if mode ~= 'none' then
  local max = tonumber(ARGV[4])
  local live = live_members(sx, now, ARGV[7])
  if #live >= max then
    if mode == 'deny' then
      return {'limit'}
    end
    table.sort(live, function(a, b)
      if a.created ~= b.created then
        return a.created < b.created
      end
      return less_bytes(a.id, b.id)
    end)
    for i = 1, #live + 1 - math.max(max, 1) do
      audit_picked(audit, i - 1, live[i].id, sx)
      out[#out + 1] = revoke_record(live[i].key, live[i].id, sx, ARGV[5])
    end
  end
end

local ttl = ARGV[6]
redis.call('HSET', rk, unpack(ARGV, 12))
if ARGV[10] ~= '' then
  redis.call('HSET', rk, 'rev', ARGV[10])
else
  redis.call('ZADD', sx, deadline, id)
end
redis.call('PEXPIRE', rk, ttl)
redis.call('SET', ik, rk, 'PX', ttl)
for i = 5, #KEYS do
  redis.call('SET', KEYS[i], rk, 'PX', ttl)
end
redis.call('ZADD', exp, deadline, id)
audit_known(audit)
return out
