-- Helpers prepended to every script (scripts.rs joins them), so each script
-- file is read as one unit with the same vocabulary.
--
-- Numbers: times are unix microseconds, exact in a Lua double until 2255.
-- Lua's own number-to-string conversion keeps only 14 digits, so numbers that
-- must reach Redis as text are either passed through as the strings the
-- caller sent or handed to redis.call, which formats them exactly.

-- The record layout of record.rs: a head of fixed-width numbers, then
-- u16-length segments, then the body, which starts with the tenant and the
-- subject (segments too) and which only Rust reads beyond them. Scripts
-- change the head and the segments and copy the body.
local LAYOUT = 3
local POINTER = 62 -- '>'
local HEAD = '<BI8i8i8i8i8'
local SEGMENTS = {'prev', 'rev', 'client'}

-- A record's fields: v, seen, idle, abs, created (numbers; times in
-- microseconds), the SEGMENTS (strings; rev is '' while live, prev '' without
-- a previous token) and body.
local function record_decode(raw)
  local r = {}
  local _, pos
  _, r.v, r.seen, r.idle, r.abs, r.created, pos = struct.unpack(HEAD, raw)
  for _, name in ipairs(SEGMENTS) do
    local len
    len, pos = struct.unpack('<H', raw, pos)
    r[name] = string.sub(raw, pos, pos + len - 1)
    pos = pos + len
  end
  r.body = string.sub(raw, pos)
  return r
end

local function record_encode(r)
  local parts = {struct.pack(HEAD, LAYOUT, r.v, r.seen, r.idle, r.abs, r.created)}
  for _, name in ipairs(SEGMENTS) do
    parts[#parts + 1] = struct.pack('<H', #r[name]) .. r[name]
  end
  parts[#parts + 1] = r.body
  return table.concat(parts)
end

-- A record's tenant and subject ('' for an anonymous record), from the
-- start of its body.
local function names_of(r)
  local tlen, pos = struct.unpack('<H', r.body)
  local tenant = string.sub(r.body, pos, pos + tlen - 1)
  local slen
  slen, pos = struct.unpack('<H', r.body, pos + tlen)
  return tenant, string.sub(r.body, pos, pos + slen - 1)
end

-- The subject index key a record in the shard of `base` names (keys.rs'
-- record_index): `<base>u:<tenant>/<subject>`.
local function index_of(base, r)
  local tenant, subject = names_of(r)
  return base .. 'u:' .. tenant .. '/' .. subject
end

-- The earlier of a record's deadlines (microseconds).
local function deadline_of(r)
  return math.min(r.idle, r.abs)
end

-- A record as scripts return it: the token hash its key ends with (32
-- bytes), then the record (record.rs' decode_tagged).
local function tagged(rk, raw)
  return string.sub(rk, -32) .. raw
end

-- The key of a record's previous token, or nil when it has none.
local function previous_key(r, base)
  if r.prev == '' then
    return nil
  end
  return base .. 't:' .. string.sub(r.prev, 1, 32)
end

-- The bucket of an id: its first two characters (keys.rs' bucket).
local function bucket(id)
  return string.sub(id, 1, 2)
end

-- The id bucket (a hash of id -> raw token hash) that holds `id`.
local function ids_key(base, id)
  return base .. 'ids:' .. bucket(id)
end

-- The record under token key `rk`, as its key and its value; nil when
-- there is none or it is of another layout.
local function record_at(rk)
  local raw = redis.call('GET', rk)
  if not raw or string.byte(raw, 1) ~= LAYOUT then
    return nil
  end
  return rk, raw
end

-- The record of an id, as its key and its value; nil when the id is not
-- known or its record is gone (dropped by Redis' TTL before purge came)
-- or of another layout.
local function follow_id(base, id)
  local h = redis.call('HGET', ids_key(base, id), id)
  if not h then
    return nil
  end
  return record_at(base .. 't:' .. h)
end

-- The record a previous token's pointer (`>` and a record key) leads to,
-- as its key and its value; nil when either is missing or of another
-- layout.
local function follow(pk)
  local p = redis.call('GET', pk)
  if not p or string.byte(p, 1) ~= POINTER then
    return nil
  end
  return record_at(string.sub(p, 2))
end

-- Records `id`'s token key `rk` in its id bucket.
local function ids_set(base, id, rk)
  redis.call('HSET', ids_key(base, id), id, string.sub(rk, -32))
end

-- The expiry index: deadlines in buckets (`<base>due:<bucket>`, a sorted
-- set of id -> deadline, small enough for Redis' listpack form), and
-- `<base>due`, each bucket scored by its earliest deadline. Every change
-- of a bucket rewrites its score, so the score is exact and purge can
-- merge the buckets in deadline order. Equal deadlines order by id within
-- a bucket and by bucket name (the ids' first two characters) across
-- them: by id throughout.
local function due_rescore(base, b)
  local first = redis.call('ZRANGE', base .. 'due:' .. b, 0, 0, 'WITHSCORES')
  if #first == 0 then
    redis.call('ZREM', base .. 'due', b)
  else
    redis.call('ZADD', base .. 'due', first[2], b)
  end
end

local function due_set(base, id, deadline)
  local b = bucket(id)
  redis.call('ZADD', base .. 'due:' .. b, deadline, id)
  due_rescore(base, b)
end

local function due_del(base, id)
  local b = bucket(id)
  redis.call('ZREM', base .. 'due:' .. b, id)
  due_rescore(base, b)
end

-- Byte-wise string order, as Rust compares session ids. Lua's `<` on
-- strings follows the C locale collation, which we do not want to trust.
local function less_bytes(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then
      return x < y
    end
  end
  return #a < #b
end

-- Sorts entries (tables with `id`) by the number under `field`, then by id.
local function sort_by_then_id(entries, field)
  table.sort(entries, function(a, b)
    if a[field] ~= b[field] then
      return a[field] < b[field]
    end
    return less_bytes(a.id, b.id)
  end)
end

-- The subject's live sessions at `now` (a string of microseconds): in the
-- subject index with a deadline after now, record present, not revoked.
-- Entries whose record is gone (dropped by Redis' TTL) are removed here, so
-- stale entries never accumulate and never need a scan.
local function live_members(sx, now, base)
  local ids = redis.call('ZRANGEBYSCORE', sx, '(' .. now, '+inf')
  local live = {}
  for _, id in ipairs(ids) do
    local key, raw = follow_id(base, id)
    if not key then
      redis.call('ZREM', sx, id)
    else
      local r = record_decode(raw)
      if r.rev == '' then
        live[#live + 1] = {created = r.created, id = id, key = key, raw = raw, r = r}
      end
    end
  end
  return live
end

-- Marks a live record revoked: the tombstone keeps its token keys and TTL
-- (so a late use reads as "revoked"), gains a version and leaves its
-- subject's index `sx`. Returns the record as it is afterwards.
local function revoke_record(key, r, rev, id, sx)
  r.rev = rev
  r.v = r.v + 1
  local raw = record_encode(r)
  redis.call('SET', key, raw, 'KEEPTTL')
  redis.call('ZREM', sx, id)
  return raw
end

-- The TTL (ms) after a record's deadline moves from old_exp to new_exp
-- (microseconds): the remaining TTL shifted by the same amount. This keeps
-- the relation "TTL = deadline + slack" set at insert without reading a
-- clock, whatever clock the caller uses.
local function shifted_ttl(rk, old_exp, new_exp, fallback)
  local pttl = redis.call('PTTL', rk)
  if pttl < 0 then
    return fallback
  end
  local ttl = pttl + math.floor((new_exp - old_exp) / 1000)
  if ttl < 1 then
    ttl = 1
  end
  return ttl
end

-- The live failure counter at `key` at `now` (a number of microseconds) as
-- {c, l, u, e} numbers, or nil when there is none or it is past its expiry.
-- A record that is not four numbers raises an error (before any write: the
-- counter scripts read every key first), not a missing record.
local function read_counter(key, now)
  local f = redis.call('HMGET', key, 'c', 'l', 'u', 'e')
  if not f[1] then
    return nil
  end
  local rec = {c = tonumber(f[1]), l = tonumber(f[2]), u = tonumber(f[3]), e = tonumber(f[4])}
  if not (rec.c and rec.l and rec.u and rec.e) then
    error('corrupt counter record at ' .. key)
  end
  if now > rec.e then
    return nil
  end
  return rec
end

-- The lock `count` failures set (µs), as CounterRule::delay_after: nothing
-- up to `free`, then `base` doubled per further failure, at most `max`.
-- Past 60 doublings the cap has long been reached (and 2^n stays exact).
local function counter_delay(count, free, base, max)
  local over = count - free
  if over <= 0 then
    return 0
  end
  if over > 60 then
    return max
  end
  return math.min(max, base * 2 ^ (over - 1))
end

-- Audit events stored by the script that makes the change they record
-- (see audit.rs in this crate for the argument, and sessiond-core's
-- Audit). The argument is '' when there are none, else JSON:
--   t  the set of tenants with events   p  events key prefix (+ tenant)
--   k  {tenant, member, ...} of known events
--   h  the JSON head of picked events, absent when none, with
--   i  their id prefix and f  the sequence number of the first.
-- Only strings and small integers are decoded, which cjson reads exactly.
local function audit_open(arg)
  if arg == '' then
    return nil
  end
  return cjson.decode(arg)
end

-- Adds one `<id> <json>` member to the tenant's events.
local function audit_put(a, tenant, member)
  redis.call('ZADD', a.p .. tenant, 0, member)
  redis.call('SADD', a.t, tenant)
end

-- Stores the known events.
local function audit_known(a)
  if not a then
    return
  end
  for i = 1, #a.k, 2 do
    audit_put(a, a.k[i], a.k[i + 1])
  end
end

-- Stores the picked event number `n` (from 0) of the record with id `id`
-- of `tenant` and `subject` ('' for an anonymous record).
local function audit_picked(a, n, id, tenant, subject)
  if not (a and a.h) then
    return
  end
  local event_id = a.i .. string.format('%08x', (a.f + n) % 4294967296)
  -- An anonymous record (empty subject) names nobody: no subject.
  local named = ''
  if subject ~= '' then
    named = ',"subject":' .. cjson.encode(subject)
  end
  local json = a.h .. ',"tenant":' .. cjson.encode(tenant) .. ',"session_id":' .. cjson.encode(id)
    .. named .. '}'
  audit_put(a, tenant, event_id .. ' ' .. json)
end
