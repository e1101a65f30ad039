-- purge.lua: deletes one batch of records whose deadline is at or before now.
--
-- KEYS[1] expiry index
-- ARGV[1] now (us)  ARGV[2] batch size  ARGV[3] token key prefix
-- ARGV[4] id pointer prefix  ARGV[5] audit (common.lua): a picked event
--   per deleted record that was not revoked, numbered from its f
--
-- Guarantees: earliest deadline first (ties by id, as the index orders
-- equal scores); a record goes with its pointers and index entries in one
-- step. Index entries of records Redis already expired are dropped too.
-- The cost is the batch, never the size of the store.
-- Returns {entries scanned, deleted record...}.
local exp = KEYS[1]
local due = redis.call('ZRANGEBYSCORE', exp, '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local out = {#due}
local audit = audit_open(ARGV[5])
local picked = 0
for _, id in ipairs(due) do
  local ik = ARGV[4] .. id
  local rk, raw = follow(ik)
  if rk then
    local r = record_decode(raw)
    out[#out + 1] = raw
    if r.rev == '' then
      audit_picked(audit, picked, id, r.sx)
      picked = picked + 1
    end
    local pk = previous_key(r, ARGV[3])
    if pk and redis.call('GET', pk) == '>' .. rk then
      redis.call('DEL', pk)
    end
    redis.call('ZREM', r.sx, id)
    redis.call('DEL', rk)
  end
  redis.call('DEL', ik)
  redis.call('ZREM', exp, id)
end
return out
