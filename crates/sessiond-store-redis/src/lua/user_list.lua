-- user_list.lua: a tenant's portal accounts, sorted by name.
--
-- KEYS[1] the tenant's name index  ARGV[1] user key prefix of the tenant
--
-- Read-only, one snapshot: the index and the records are read in one step,
-- so a concurrent insert is listed whole or not at all. Every name has the
-- score 0, so ZRANGE orders them byte-wise, as Rust compares strings. The
-- record keys are built here rather than declared, as the session scripts
-- do; they share the index's hash tag, so they live in its slot.
-- Answers {name, version, body, name, version, body, ...}; a name whose
-- record is missing (never written so; only by hand) gets nil for both.
local names = redis.call('ZRANGE', KEYS[1], 0, -1)
local out = {}
for _, name in ipairs(names) do
  local f = redis.call('HMGET', ARGV[1] .. name, 'v', 'body')
  out[#out + 1] = name
  out[#out + 1] = f[1] or false
  out[#out + 1] = f[2] or false
end
return out
