-- wrk script for the flood: every request is a new path /bench-<thread>-<n>/x, so every request
-- misses the router's cache and teaches it a new prefix /bench-<thread>-<n>.
-- Arguments (after --): paths per thread, marker directory. Each thread sends its share, then stops
-- itself and leaves a marker file so the script can end wrk at once (wrk otherwise sleeps -d).
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrk_common.lua")

setup = common.setup

function init(args)
  quota = tonumber(args[1])
  marker_dir = args[2]
  sent, answered, not_ok = 0, 0, 0
end

function request()
  sent = sent + 1
  return wrk.format("GET", "/bench-" .. id .. "-" .. sent .. "/x")
end

function response(status, headers, body)
  answered = answered + 1
  if status ~= 200 then not_ok = not_ok + 1 end
  if answered == quota then
    local f = io.open(marker_dir .. "/flood-done-" .. id, "w")
    if f then f:write(answered, "\n"); f:close() end
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  io.write(string.format(
    'BENCH_JSON {"answered":%d,"sent":%d,"not_ok":%d,"requests":%d,"duration_us":%d,%s,' ..
    '"p50_us":%d,"p99_us":%d}\n',
    common.sum("answered"), common.sum("sent"), common.sum("not_ok"), summary.requests, summary.duration,
    common.errors_json(summary), latency:percentile(50), latency:percentile(99)))
end
