-- wrk script: POST /v1/sessions for a new subject "load-<thread>-<n>" per request.
--
-- Environment:
--   LOAD_KEY     API key, sent as "Authorization: Bearer ..."
-- Ends with one "LOAD_RESULT ..." line that scripts/load parses.

local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end

local headers = {}
local n = 0

function init(args)
  headers["Content-Type"] = "application/json"
  headers["Authorization"] = "Bearer " .. (os.getenv("LOAD_KEY") or "none")
end

function request()
  n = n + 1
  local body = string.format('{"subject":"load-%d-%d"}', id or 0, n)
  return wrk.format("POST", "/v1/sessions", headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "LOAD_RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout))
end
