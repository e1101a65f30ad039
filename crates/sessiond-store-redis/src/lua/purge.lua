-- purge.lua: deletes one batch of records whose deadline is at or before now.
--
-- KEYS[1] expiry index
-- ARGV[1] now (us)  ARGV[2] batch size  ARGV[3] token pointer prefix
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
  local rk = redis.call('GET', ik)
  if rk then
    local f = redis.call('HMGET', rk, 'body', 'v', 'rev', 'seen', 'idle', 'client', 'th', 'ph', 'sx')
    if f[1] then
      out[#out + 1] = {f[1], f[2], f[3], f[4], f[5], f[6]}
      if not f[3] then
        audit_picked(audit, picked, id, f[9])
        picked = picked + 1
      end
      for _, h in ipairs({f[7], f[8]}) do
        if h and h ~= '' and redis.call('GET', ARGV[3] .. h) == rk then
          redis.call('DEL', ARGV[3] .. h)
        end
      end
      redis.call('ZREM', f[9], id)
      redis.call('DEL', rk)
    end
    redis.call('DEL', ik)
  end
  redis.call('ZREM', exp, id)
end
return out
