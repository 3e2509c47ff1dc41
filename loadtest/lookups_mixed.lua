-- wrk script: single lookups, a share of them of listed numbers, the rest random Vietnamese
-- mobiles (almost all clean). A listed number costs a database read; a clean one does not.
--   CALLGUARD_LISTED   a file of listed numbers, one a line, in any form the API takes; a CSV
--                      is read by its first column (a header line "number" is skipped), so
--                      the file you imported will do
--   CALLGUARD_LISTED_SHARE  the share of lookups drawn from it, 0 to 1 (default 0.1)
-- Usage:
--   CALLGUARD_KEY=cg_... CALLGUARD_LISTED=listed.csv CALLGUARD_LISTED_SHARE=0.1 \
--     wrk -t2 -c50 -d10s --latency -s loadtest/lookups_mixed.lua http://127.0.0.1:8080
local key = os.getenv("CALLGUARD_KEY") or error("set CALLGUARD_KEY to a client key")
local listed_path = os.getenv("CALLGUARD_LISTED") or error("set CALLGUARD_LISTED to a file of listed numbers")
local share = tonumber(os.getenv("CALLGUARD_LISTED_SHARE") or "0.1")
  or error("CALLGUARD_LISTED_SHARE must be a number from 0 to 1")
local prefixes = {"32", "33", "34", "35", "36", "37", "38", "39", "70", "76", "77", "78",
                  "79", "81", "82", "83", "84", "85", "86", "88", "90", "91", "93", "94",
                  "96", "97", "98"}
local listed = {}

-- Path-safe: "+84 912..." becomes "%2B84%20912...".
local function escape(text)
  return (text:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

function setup(thread)
  thread:set("seed", math.random(1, 1e9))
end

function init(args)
  math.randomseed(seed)
  wrk.headers["Authorization"] = "Bearer " .. key
  local file = io.open(listed_path, "r") or error("cannot read " .. listed_path)
  for line in file:lines() do
    local number = line:match("^%s*\"?([^,;\t\"]*)")
    if number ~= "" and number ~= "number" then
      listed[#listed + 1] = escape(number)
    end
  end
  file:close()
  if #listed == 0 and share > 0 then
    error(listed_path .. " holds no numbers")
  end
end

function request()
  local path
  if math.random() < share then
    path = listed[math.random(#listed)]
  else
    path = "0" .. prefixes[math.random(#prefixes)] .. string.format("%07d", math.random(0, 9999999))
  end
  return wrk.format("GET", "/v1/numbers/" .. path)
end

function done(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read
                 + summary.errors.write + summary.errors.timeout
  io.write(string.format("listed share %.2f\n", share))
  io.write(string.format("requests %d, non-2xx or socket errors %d\n", summary.requests, errors))
  io.write(string.format("latency p50 %.2f ms, p99 %.2f ms\n",
                         latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
