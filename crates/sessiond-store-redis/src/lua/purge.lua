-- purge.lua: deletes one batch of records whose deadline is at or before now.
--
-- KEYS[1] the shard's expiry index (`<base>due`, see common.lua)
-- ARGV[1] now (us)  ARGV[2] batch size  ARGV[3] the shard's key base
-- ARGV[4] audit (common.lua): a picked event per deleted record that was
--   not revoked, numbered from its f
--
-- Guarantees: earliest deadline first, ties by id (the buckets are merged
-- by their exact earliest deadlines); a record goes with its pointers and
-- index entries in one step. Entries of records Redis already expired are
-- dropped too. The cost is the batch, never the size of the store.
-- Returns {entries taken, deleted record (tagged)...}.
local index, now, base = KEYS[1], ARGV[1], ARGV[3]
local batch = tonumber(ARGV[2])
local out = {0}
local audit = audit_open(ARGV[4])
local picked = 0
local taken = 0
while taken < batch do
  local top = redis.call('ZRANGEBYSCORE', index, '-inf', now, 'LIMIT', 0, 1)
  if #top == 0 then
    break
  end
  taken = taken + 1
  local first = redis.call('ZRANGEBYSCORE', base .. 'due:' .. top[1], '-inf', now, 'LIMIT', 0, 1)
  if #first == 0 then
    -- A bucket scored below what it holds (a keyspace edited by hand).
    due_rescore(base, top[1])
  else
    local id = first[1]
    local rk, raw = follow_id(base, id)
    if rk then
      local r = record_decode(raw)
      out[#out + 1] = tagged(rk, raw)
      local tenant, subject = names_of(r)
      if r.rev == '' then
        audit_picked(audit, picked, id, tenant, subject)
        picked = picked + 1
      end
      local pk = previous_key(r, base)
      if pk and redis.call('GET', pk) == '>' .. rk then
        redis.call('DEL', pk)
      end
      redis.call('ZREM', index_of(base, r), id)
      redis.call('DEL', rk)
    end
    redis.call('HDEL', ids_key(base, id), id)
    due_del(base, id)
  end
end
out[1] = taken
return out
