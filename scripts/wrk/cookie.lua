-- wrk script: GET a path with a session cookie, a random preloaded one per request,
-- as a browser (or a proxy's forward-auth subrequest) sends it.
--
-- Environment:
--   LOAD_TOKENS  file with one cookie value per line (sessiond tokens from the preload
--                example, or the tower-sessions peer's session ids)
--   LOAD_COOKIE  the cookie's name ("__Host-sessiond" for sessiond, "id" for the peer)
--   LOAD_PATH    the path ("/auth/verify", "/")
--   LOAD_USER_AGENT, LOAD_FORWARDED_FOR  optional: sent as User-Agent and X-Forwarded-For
--                (the browser's, as a proxy passes them on to forward auth)
--   LOAD_NO_COOKIE  "1": send no cookie at all (a crawler reading pages); LOAD_TOKENS
--                and LOAD_COOKIE are then not read
-- Ends with one "LOAD_RESULT ..." line that scripts/load parses.

local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end

local cookies = {}
local path

function init(args)
  if os.getenv("LOAD_NO_COOKIE") == "1" then
    path = os.getenv("LOAD_PATH") or error("LOAD_PATH is not set")
    cookies[1] = {}
    return
  end
  local file = os.getenv("LOAD_TOKENS") or error("LOAD_TOKENS is not set")
  local name = os.getenv("LOAD_COOKIE") or error("LOAD_COOKIE is not set")
  path = os.getenv("LOAD_PATH") or error("LOAD_PATH is not set")
  local agent = os.getenv("LOAD_USER_AGENT") or ""
  local forwarded = os.getenv("LOAD_FORWARDED_FOR") or ""
  for line in io.lines(file) do
    if #line > 0 then
      local headers = { Cookie = name .. "=" .. line }
      if agent ~= "" then headers["User-Agent"] = agent end
      if forwarded ~= "" then headers["X-Forwarded-For"] = forwarded end
      cookies[#cookies + 1] = headers
    end
  end
  if #cookies == 0 then
    error("no cookie values in " .. file)
  end
  math.randomseed(os.time() * 1000 + (id or 0))
end

function request()
  return wrk.format("GET", path, cookies[math.random(#cookies)])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "LOAD_RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout))
end
