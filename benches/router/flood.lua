-- wrk script for the flood: every request is a new path /bench-<thread>-<n>/x, so every request
-- misses the router's cache and teaches it a new prefix /bench-<thread>-<n>.
-- Arguments (after --): paths per thread, marker directory. Each thread sends its share, then stops
-- itself and leaves a marker file so the script can end wrk at once (wrk otherwise sleeps -d).
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

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
  local answered_all, not_ok_all, sent_all = 0, 0, 0
  for _, t in ipairs(threads) do
    answered_all = answered_all + (t:get("answered") or 0)
    not_ok_all = not_ok_all + (t:get("not_ok") or 0)
    sent_all = sent_all + (t:get("sent") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"answered":%d,"sent":%d,"not_ok":%d,"requests":%d,"duration_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"p50_us":%d,"p99_us":%d}\n',
    answered_all, sent_all, not_ok_all, summary.requests, summary.duration,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
