-- wrk script: POST /v1/sessions/verify with a random valid token per request.
--
-- Environment:
--   LOAD_TOKENS  file with one token per line (written by the preload example)
--   LOAD_KEY     API key, sent as "Authorization: Bearer ..." (the floor ignores it)
--   LOAD_CLIENT  optional JSON object sent as the request's "client" (binding runs)
-- Ends with one "LOAD_RESULT ..." line that scripts/load parses.

local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end

local tokens = {}
local headers = {}

function init(args)
  local path = os.getenv("LOAD_TOKENS") or error("LOAD_TOKENS is not set")
  local client = os.getenv("LOAD_CLIENT") or ""
  local tail = client == "" and '"}' or ('","client":' .. client .. '}')
  for line in io.lines(path) do
    if #line > 0 then
      tokens[#tokens + 1] = '{"token":"' .. line .. tail
    end
  end
  if #tokens == 0 then
    error("no tokens in " .. path)
  end
  headers["Content-Type"] = "application/json"
  headers["Authorization"] = "Bearer " .. (os.getenv("LOAD_KEY") or "none")
  math.randomseed(os.time() * 1000 + (id or 0))
end

function request()
  return wrk.format("POST", "/v1/sessions/verify", headers, tokens[math.random(#tokens)])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "LOAD_RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout))
end
