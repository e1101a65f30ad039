-- update.lua: compare-and-set replacement of a record.
--
-- KEYS[1] id bucket  KEYS[2] the new record's key (its current token's
-- key)  KEYS[3] subject index (from the new record's tenant and subject)
-- KEYS[4] expiry bucket  KEYS[5] the new record's previous token's key,
-- when it has one
-- ARGV[1] expected version  ARGV[2] the shard's key base  ARGV[3] fallback
-- TTL (ms)  ARGV[4] id  ARGV[5] new deadline (us)  ARGV[6] '1' when the
-- new record stays out of the subject index (revoked, or anonymous), else
-- ''  ARGV[7] audit (common.lua): its known
-- events  ARGV[8] the record (record.rs)
--
-- Guarantees: writes only over the expected version ({'conflict', v}
-- otherwise), never takes a token hash another record holds
-- ({'collision'}), and re-indexes in the same step: a rotation moves the
-- record to its new token's key, token keys the record no longer has are
-- deleted, the new ones set, the subject and expiry indexes follow the new
-- deadline and revocation. {'notfound'} when there is no record;
-- {'moved'} when tenant or subject would change (the subject index and the
-- events name them, so they cannot).
local rk, sx = KEYS[2], KEYS[3]
local base, id, deadline = ARGV[2], ARGV[4], ARGV[5]
local cur_rk, raw = follow_id(base, id)
if not cur_rk then
  return {'notfound'}
end
local cur = record_decode(raw)
if cur.v ~= tonumber(ARGV[1]) then
  return {'conflict', string.format('%d', cur.v)}
end
if index_of(base, cur) ~= sx then
  return {'moved'}
end
local cur_pk = previous_key(cur, base)
local own = '>' .. cur_rk
for i = 1, #KEYS do
  if i == 2 or i >= 5 then
    local held = redis.call('GET', KEYS[i])
    if held and KEYS[i] ~= cur_rk and not (KEYS[i] == cur_pk and held == own) then
      return {'collision'}
    end
  end
end

local ttl = shifted_ttl(cur_rk, deadline_of(cur), tonumber(deadline), tonumber(ARGV[3]))
-- The old keys go first: a rotation turns the old record key into the
-- previous token's pointer.
redis.call('DEL', cur_rk)
if cur_pk and redis.call('GET', cur_pk) == own then
  redis.call('DEL', cur_pk)
end
redis.call('SET', rk, ARGV[8], 'PX', ttl)
ids_set(base, id, rk)
for i = 5, #KEYS do
  redis.call('SET', KEYS[i], '>' .. rk, 'PX', ttl)
end
if ARGV[6] == '' then
  redis.call('ZADD', sx, deadline, id)
else
  redis.call('ZREM', sx, id)
end
due_set(base, id, deadline)
audit_known(audit_open(ARGV[7]))
return {'ok'}
