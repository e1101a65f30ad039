-- update.lua: compare-and-set replacement of a record.
--
-- KEYS[1] id pointer  KEYS[2] record key (from the new record's tenant and
-- subject)  KEYS[3] subject index  KEYS[4] expiry index
-- KEYS[5..] token pointers of the new record (current, previous)
-- ARGV[1] expected version  ARGV[2] token pointer prefix  ARGV[3] fallback
-- TTL (ms)  ARGV[4] id  ARGV[5] new deadline (us)  ARGV[6] revocation JSON
-- or ''  ARGV[7] audit (common.lua): its known events  ARGV[8..] HSET pairs
--
-- Guarantees: writes only over the expected version ({'conflict', v}
-- otherwise), never takes a token hash another record holds
-- ({'collision'}), and re-indexes in the same step: token pointers the
-- record no longer has are deleted, the new ones set, the subject and expiry
-- indexes follow the new deadline and revocation. {'notfound'} when there
-- is no record; {'moved'} when tenant or subject would change (the key
-- layout puts a subject's records in its hash slot, so they cannot).
local ik, rk, sx, exp = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local cur_rk = redis.call('GET', ik)
if not cur_rk then
  return {'notfound'}
end
local cur = redis.call('HMGET', cur_rk, 'v', 'exp_us', 'th', 'ph')
if not cur[1] then
  return {'notfound'}
end
if cur[1] ~= ARGV[1] then
  return {'conflict', cur[1]}
end
if cur_rk ~= rk then
  return {'moved'}
end
for i = 5, #KEYS do
  local owner = redis.call('GET', KEYS[i])
  if owner and owner ~= rk then
    return {'collision'}
  end
end

local id, deadline, rev = ARGV[4], ARGV[5], ARGV[6]
local ttl = shifted_ttl(rk, tonumber(cur[2]), tonumber(deadline), tonumber(ARGV[3]))
for _, h in ipairs({cur[3], cur[4]}) do
  if h and h ~= '' then
    local k = ARGV[2] .. h
    local kept = false
    for i = 5, #KEYS do
      if KEYS[i] == k then
        kept = true
      end
    end
    if not kept then
      redis.call('DEL', k)
    end
  end
end

redis.call('HSET', rk, unpack(ARGV, 8))
if rev == '' then
  redis.call('HDEL', rk, 'rev')
  redis.call('ZADD', sx, deadline, id)
else
  redis.call('HSET', rk, 'rev', rev)
  redis.call('ZREM', sx, id)
end
redis.call('PEXPIRE', rk, ttl)
redis.call('PEXPIRE', ik, ttl)
for i = 5, #KEYS do
  redis.call('SET', KEYS[i], rk, 'PX', ttl)
end
redis.call('ZADD', exp, deadline, id)
audit_known(audit_open(ARGV[7]))
return {'ok'}
