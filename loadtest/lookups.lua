-- wrk script: single lookups of random Vietnamese mobile numbers (almost all clean, so this
-- measures the filter's negative path). Usage:
--   CALLGUARD_KEY=cg_... wrk -t2 -c50 -d10s -s loadtest/lookups.lua http://127.0.0.1:8080
local key = os.getenv("CALLGUARD_KEY") or error("set CALLGUARD_KEY to a client key")
local prefixes = {"32", "33", "34", "35", "36", "37", "38", "39", "70", "76", "77", "78",
                  "79", "81", "82", "83", "84", "85", "86", "88", "90", "91", "93", "94",
                  "96", "97", "98"}

function setup(thread)
  thread:set("seed", math.random(1, 1e9))
end

function init(args)
  math.randomseed(seed)
  wrk.headers["Authorization"] = "Bearer " .. key
end

function request()
  local number = "0" .. prefixes[math.random(#prefixes)] .. string.format("%07d", math.random(0, 9999999))
  return wrk.format("GET", "/v1/numbers/" .. number)
end

function done(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read
                 + summary.errors.write + summary.errors.timeout
  io.write(string.format("requests %d, non-2xx or socket errors %d\n", summary.requests, errors))
  io.write(string.format("latency p50 %.2f ms, p99 %.2f ms\n",
                         latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
