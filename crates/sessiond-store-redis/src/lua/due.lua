-- due.lua: the earliest entries of a shard's expiry index that are due.
--
-- KEYS[1] the shard's expiry index (`<base>due`, see common.lua)
-- ARGV[1] now (us)  ARGV[2] how many at most  ARGV[3] the shard's key base
--
-- Returns {id, deadline, ...} in purge's order (deadline, then id), for a
-- store over several shards to merge them before purging. Read-only.
local now, limit, base = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local entries = {}
for _, b in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  local found = redis.call('ZRANGEBYSCORE', base .. 'due:' .. b, '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit)
  for i = 1, #found, 2 do
    entries[#entries + 1] = {id = found[i], score = tonumber(found[i + 1]), text = found[i + 1]}
  end
end
sort_by_then_id(entries, 'score')
local out = {}
for i = 1, math.min(limit, #entries) do
  out[#out + 1] = entries[i].id
  out[#out + 1] = entries[i].text
end
return out
