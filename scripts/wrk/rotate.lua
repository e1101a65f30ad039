-- wrk script: POST /v1/sessions/rotate or /v1/sessions/refresh, each preloaded token
-- used exactly once (a rotated-out token used again would be taken for theft and end
-- its session, so the run walks the tokens instead of picking at random).
--
-- Environment:
--   LOAD_TOKENS  file with one token per line (written by the preload example)
--   LOAD_KEY     API key, sent as "Authorization: Bearer ..."
--   LOAD_ROUTE   "rotate" or "refresh"
--   LOAD_PART    0 or 1: which half of the tokens this run uses (two runs, no overlap)
-- Thread t of T takes tokens t, t+T, t+2T, ... of its half. A run that uses up its half
-- starts over, and every request after that is a 401 (counted as an error in the summary):
-- make COUNT larger than twice the requests of one run.
-- Ends with one "LOAD_RESULT ..." line that scripts/load parses.

local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end

local tokens = {}
local headers = {}
local path
local next_index, step

function init(args)
  local file = os.getenv("LOAD_TOKENS") or error("LOAD_TOKENS is not set")
  local all = {}
  for line in io.lines(file) do
    if #line > 0 then
      all[#all + 1] = line
    end
  end
  local part = tonumber(os.getenv("LOAD_PART") or "0")
  local half = math.floor(#all / 2)
  for i = part * half + 1, (part + 1) * half do
    tokens[#tokens + 1] = '{"token":"' .. all[i] .. '"}'
  end
  if #tokens == 0 then
    error("no tokens in " .. file)
  end
  local route = os.getenv("LOAD_ROUTE") or error("LOAD_ROUTE is not set")
  path = "/v1/sessions/" .. route
  headers["Content-Type"] = "application/json"
  headers["Authorization"] = "Bearer " .. (os.getenv("LOAD_KEY") or "none")
  step = tonumber(os.getenv("LOAD_THREADS") or "2")
  next_index = (id or 1)
end

function request()
  local body = tokens[(next_index - 1) % #tokens + 1]
  next_index = next_index + step
  return wrk.format("POST", path, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "LOAD_RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout))
end
