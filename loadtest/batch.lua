-- wrk script: batch lookups, POST /v1/lookups with CALLGUARD_BATCH (default 1000, the limit)
-- random Vietnamese mobiles in E.164 (+84...) a request; almost all are clean. Each thread
-- builds 32 different bodies before it starts and sends them in turn, so the client's Lua
-- costs nothing per request. Prints numbers/s (numbers in 2xx answers over the run).
-- Usage:
--   CALLGUARD_KEY=cg_... wrk -t2 -c10 -d10s --latency -s loadtest/batch.lua http://127.0.0.1:8080
local key = os.getenv("CALLGUARD_KEY") or error("set CALLGUARD_KEY to a client key")
local batch = tonumber(os.getenv("CALLGUARD_BATCH") or "1000") or error("CALLGUARD_BATCH must be a number")
local prefixes = {"32", "33", "34", "35", "36", "37", "38", "39", "70", "76", "77", "78",
                  "79", "81", "82", "83", "84", "85", "86", "88", "90", "91", "93", "94",
                  "96", "97", "98"}
local bodies = {}
local next_body = 1

function setup(thread)
  thread:set("seed", math.random(1, 1e9))
end

function init(args)
  math.randomseed(seed)
  wrk.method = "POST"
  wrk.headers["Authorization"] = "Bearer " .. key
  wrk.headers["Content-Type"] = "application/json"
  for b = 1, 32 do
    local numbers = {}
    for i = 1, batch do
      numbers[i] = string.format("\"+84%s%07d\"", prefixes[math.random(#prefixes)],
                                 math.random(0, 9999999))
    end
    bodies[b] = "{\"numbers\": [" .. table.concat(numbers, ", ") .. "]}"
  end
end

function request()
  local body = bodies[next_body]
  next_body = next_body % #bodies + 1
  return wrk.format(nil, "/v1/lookups", nil, body)
end

function done(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read
                 + summary.errors.write + summary.errors.timeout
  local ok = summary.requests - summary.errors.status
  io.write(string.format("requests %d, non-2xx or socket errors %d\n", summary.requests, errors))
  io.write(string.format("numbers/s %.0f (%d a request)\n",
                         ok * batch / (summary.duration / 1e6), batch))
  io.write(string.format("latency p50 %.2f ms, p99 %.2f ms\n",
                         latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
