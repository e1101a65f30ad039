-- insert.lua: adds a new record with its id, index and deadline entries,
-- enforcing the subject's session limit in the same step.
--
-- KEYS[1] record key (its current token's key)  KEYS[2] id bucket
-- KEYS[3] subject index  KEYS[4] expiry bucket  KEYS[5] previous token's
-- key, when the record has one
-- ARGV[1] now (us)  ARGV[2] stale-before (us)  ARGV[3] 'none'|'deny'|'evict'
-- ARGV[4] limit  ARGV[5] revocation segment for evictions  ARGV[6] TTL (ms)
-- ARGV[7] the shard's key base  ARGV[8] id  ARGV[9] deadline (us)
-- ARGV[10] '1' when the new record stays out of the subject index
-- (revoked, or anonymous), else ''  ARGV[11] audit
-- (common.lua): its known events, and a picked event per eviction
-- ARGV[12] the record (record.rs)
--
-- Guarantees (a script runs alone, so nothing interleaves with it):
--  * never overwrites: a known id or token hash answers {'collision'} and
--    nothing is written;
--  * the limit counts live sessions at the caller's now; 'deny' answers
--    {'limit'} and writes nothing; 'evict' revokes the oldest by
--    (created_at, id) until there is room, together with the insert;
--  * subject index entries whose records Redis already expired are dropped
--    on the way, so the index stays small without a scan.
-- Answers {'ok', evicted record (tagged)...}.
local rk, sx = KEYS[1], KEYS[3]
local now, mode, base, id, deadline = ARGV[1], ARGV[3], ARGV[7], ARGV[8], ARGV[9]
if redis.call('HEXISTS', KEYS[2], id) == 1 then
  return {'collision'}
end
for i = 1, #KEYS do
  if (i == 1 or i >= 5) and redis.call('EXISTS', KEYS[i]) == 1 then
    return {'collision'}
  end
end

local audit = audit_open(ARGV[11])
redis.call('ZREMRANGEBYSCORE', sx, '-inf', ARGV[2])
local out = {'ok'}
if mode ~= 'none' then
  local max = tonumber(ARGV[4])
  local live = live_members(sx, now, base)
  if #live >= max then
    if mode == 'deny' then
      return {'limit'}
    end
    sort_by_then_id(live, 'created')
    for i = 1, #live + 1 - math.max(max, 1) do
      local tenant, subject = names_of(live[i].r)
      audit_picked(audit, i - 1, live[i].id, tenant, subject)
      out[#out + 1] = tagged(live[i].key, revoke_record(live[i].key, live[i].r, ARGV[5], live[i].id, sx))
    end
  end
end

local ttl = ARGV[6]
redis.call('SET', rk, ARGV[12], 'PX', ttl)
if ARGV[10] == '' then
  redis.call('ZADD', sx, deadline, id)
end
ids_set(base, id, rk)
for i = 5, #KEYS do
  redis.call('SET', KEYS[i], '>' .. rk, 'PX', ttl)
end
due_set(base, id, deadline)
audit_known(audit)
return out
