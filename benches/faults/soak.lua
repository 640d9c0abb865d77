-- wrk script of script/soak:
--   FAULTS_OUT=DIR wrk -t2 -c32 -d600s -s benches/faults/soak.lua http://127.0.0.1:PORT/ -- NS1,NS2,... TAILS
--
-- ~70% of the requests go to hot paths (the given namespaces x 30 projects: a few hundred cache
-- prefixes, answered from the cache once learned); ~30% go to a path never requested before,
-- /tail-<k>/u<thread>-<n>/-/issues/1 with k in 0..TAILS-1 (many namespaces, every one a new cache
-- entry and a learn request): the long tail that must not grow the router's memory beyond its
-- cache capacity. Responses are counted by status per thread (no per-request state is kept);
-- done() writes DIR/summary.json.

local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

local namespaces, tails
sent = 0
unique = 0
codes = {}

function init(args)
  namespaces = {}
  for item in string.gmatch(args[1] or "", "[^,]+") do
    table.insert(namespaces, item)
  end
  tails = tonumber(args[2] or "")
  if #namespaces == 0 or not tails or tails < 1 then
    error("usage: wrk ... -s soak.lua URL -- NS1,NS2,... TAILS")
  end
  math.randomseed(tid * 104729 + os.time())
end

function request()
  sent = sent + 1
  local path
  if math.random(100) <= 70 then
    local ns = namespaces[math.random(#namespaces)]
    path = "/" .. ns .. "/p" .. math.random(0, 29) .. "/-/issues/" .. math.random(1, 1000)
  else
    unique = unique + 1
    path = "/tail-" .. math.random(0, tails - 1) .. "/u" .. tid .. "-" .. sent .. "/-/issues/1"
  end
  return wrk.format("GET", path, { ["X-Request-Id"] = "s" .. tid .. "-" .. sent })
end

function response(status, headers, body)
  local key = tostring(status)
  codes[key] = (codes[key] or 0) + 1
end

function done(summary, latency, requests)
  local statuses, per_thread = {}, {}
  local total_sent, total_unique = 0, 0
  for i, thread in ipairs(threads) do
    for k, v in pairs(thread:get("codes") or {}) do
      statuses[k] = (statuses[k] or 0) + v
    end
    total_sent = total_sent + (thread:get("sent") or 0)
    total_unique = total_unique + (thread:get("unique") or 0)
  end
  local parts = {}
  for k, v in pairs(statuses) do
    table.insert(parts, string.format('"%s":%d', k, v))
  end
  local e = summary.errors
  local out = string.format(
    '{"duration_us":%d,"requests":%d,"sent":%d,"unique":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},"statuses":{%s},' ..
    '"latency_ms":{"p50":%.3f,"p90":%.3f,"p99":%.3f,"max":%.3f}}\n',
    summary.duration, summary.requests, total_sent, total_unique, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout, table.concat(parts, ","),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000)
  local f = assert(io.open(os.getenv("FAULTS_OUT") .. "/summary.json", "w"))
  f:write(out)
  f:close()
end
