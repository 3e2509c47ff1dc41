-- wrk script: POST /v1/reports of random Vietnamese mobiles. This WRITES reports: run it
-- against a test deployment, never production.
-- Each request has a reporter of its own ("loadtest-<run>-<thread>-<n>"), so the limit of
-- 20 reports a reporter a day is never what stops it. The limit per key is: 200 reports a
-- second, bursts of 2000, per key and replica (service/config.py); beyond it the service
-- answers 429. done() counts 201, 429 and other answers apart. To measure past that limit,
-- give several keys separated by commas; requests take them in turn.
-- Usage:
--   CALLGUARD_KEY=cg_...[,cg_...] wrk -t2 -c50 -d10s --latency -s loadtest/reports.lua http://127.0.0.1:8080
local keys = {}
for key in (os.getenv("CALLGUARD_KEY") or error("set CALLGUARD_KEY to a client key")):gmatch("[^,%s]+") do
  keys[#keys + 1] = "Bearer " .. key
end
local categories = {"impersonation_authority", "impersonation_military", "fake_recruitment",
                    "online_loan", "account_takeover", "gift_romance", "investment", "other"}
local prefixes = {"32", "33", "34", "35", "36", "37", "38", "39", "70", "76", "77", "78",
                  "79", "81", "82", "83", "84", "85", "86", "88", "90", "91", "93", "94",
                  "96", "97", "98"}
local threads = {}
local sent = 0
created, limited, other = 0, 0, 0

function setup(thread)
  thread:set("id", #threads + 1)
  thread:set("run", os.time())
  thread:set("seed", math.random(1, 1e9))
  threads[#threads + 1] = thread
end

function init(args)
  math.randomseed(seed)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  sent = sent + 1
  local number = "0" .. prefixes[math.random(#prefixes)] .. string.format("%07d", math.random(0, 9999999))
  local body = string.format(
    "{\"number\": \"%s\", \"category\": \"%s\", \"reporter\": \"loadtest-%d-%d-%d\"}",
    number, categories[math.random(#categories)], run, id, sent)
  return wrk.format(nil, "/v1/reports", {["Authorization"] = keys[sent % #keys + 1]}, body)
end

function response(status, headers, body)
  if status == 201 then
    created = created + 1
  elseif status == 429 then
    limited = limited + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local total_created, total_limited, total_other = 0, 0, 0
  for _, thread in ipairs(threads) do
    total_created = total_created + thread:get("created")
    total_limited = total_limited + thread:get("limited")
    total_other = total_other + thread:get("other")
  end
  local seconds = summary.duration / 1e6
  local socket = summary.errors.connect + summary.errors.read + summary.errors.write
                 + summary.errors.timeout
  io.write(string.format("201 created %d (%.0f/s), 429 rate-limited %d (%.0f/s), other %d, socket errors %d\n",
                         total_created, total_created / seconds, total_limited,
                         total_limited / seconds, total_other, socket))
  io.write(string.format("latency (all answers) p50 %.2f ms, p99 %.2f ms\n",
                         latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
