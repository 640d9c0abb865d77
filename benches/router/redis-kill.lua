-- wrk script for script/redis-kill-figure: mostly cache hits on a warm set of prefixes, and one
-- request in `cold_every` a new prefix /cold-<router>-<thread>-<n>/x (a miss: a Redis read, then a
-- learn request), so that Redis being killed is met by requests that read it.
-- Arguments (after --): router tag, hot prefixes, cold_every.
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrk_common.lua")

setup = common.setup

function init(args)
  tag = args[1]
  hot = tonumber(args[2])
  cold_every = tonumber(args[3])
  sent, not_ok = 0, 0
end

function request()
  sent = sent + 1
  if sent % cold_every == 0 then
    return wrk.format("GET", "/cold-" .. tag .. "-" .. id .. "-" .. sent .. "/x")
  end
  return wrk.format("GET", "/hot-" .. (sent % hot) .. "/x")
end

function response(status, headers, body)
  if status ~= 200 then not_ok = not_ok + 1 end
end

function done(summary, latency, requests)
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"not_ok":%d,%s,' ..
    '"p50_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, common.sum("not_ok"), common.errors_json(summary),
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max))
end
