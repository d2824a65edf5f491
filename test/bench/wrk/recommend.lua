-- bench:pipeline's REST load for wrk: POST /v1/recommendations for a different user per request (user-1..user-U,
-- U from BENCH_WRK_USERS), counting answers with a fallback (a non-empty "degradations") and non-200 answers per
-- thread; done() prints one JSON line with the counts, wrk's latency percentiles in microseconds and its own CPU time.
local users = tonumber(os.getenv("BENCH_WRK_USERS") or "1000")
local k = tonumber(os.getenv("BENCH_WRK_K") or "20")
local threads = {}
local next_id = 1

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  state = 7919 * id
  degraded = 0
  non200 = 0
  answered = 0
end

local function next_user()
  state = (state * 1103515245 + 12345) % 2147483648
  return "user-" .. (1 + state % users)
end

function request()
  local body = '{"user_id":"' .. next_user() .. '","k":' .. k .. '}'
  return wrk.format("POST", "/v1/recommendations", { ["content-type"] = "application/json" }, body)
end

function response(status, headers, body)
  answered = answered + 1
  if status ~= 200 then
    non200 = non200 + 1
  elseif not string.find(body, '"degradations":[]', 1, true) then
    degraded = degraded + 1
  end
end

-- utime + stime of this wrk process (every thread, its load threads ended by now) in clock ticks, from /proc (Linux);
-- -1 where it cannot be read.
local function cpu_ticks()
  local f = io.open("/proc/self/stat", "r")
  if not f then return -1 end
  local stat = f:read("*a")
  f:close()
  local close = stat:find("%)[^)]*$")
  if not close then return -1 end
  local fields = {}
  for field in stat:sub(close + 2):gmatch("%S+") do fields[#fields + 1] = field end
  local utime, stime = tonumber(fields[12]), tonumber(fields[13])
  if not utime or not stime then return -1 end
  return utime + stime
end

function done(summary, latency, requests)
  local d, n, a = 0, 0, 0
  for _, thread in ipairs(threads) do
    d = d + thread:get("degraded")
    n = n + thread:get("non200")
    a = a + thread:get("answered")
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"answered":%d,"duration_us":%d,"degraded":%d,"non200":%d,"socket_errors":%d,' ..
      '"p50_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d,"cpu_ticks":%d}\n',
    summary.requests, a, summary.duration, d, n, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max, cpu_ticks()))
end
