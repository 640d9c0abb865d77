-- wrk script of script/fault-load:
--   wrk -t2 -c32 -d60s --timeout 10s -s benches/faults/fault_load.lua http://127.0.0.1:PORT/ -- OUTDIR NS1,NS2,...
--
-- Every request carries a unique X-Request-Id "t<thread>-<n>" and a path under one of the given
-- namespaces. Each thread streams two files into OUTDIR (buffered; memory stays bounded):
--   sent-<thread>.log  "<id> <path>"                                 one line per request generated
--   resp-<thread>.log  "<ms> <status> <id|-> <cell|-> <error|-> <errcell|->"   one line per response
-- where ms is the wall clock (CLOCK_REALTIME, milliseconds) when the response was complete, id the
-- X-Request-Id the cell echoed, cell its X-Faults-Cell header, error/errcell the router's JSON error
-- code and the cell its message names ("cell cell_1 could not be reached").
-- done() writes OUTDIR/summary.json: wrk's counters, latency percentiles and per-thread counts.

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } faults_timespec;
  int clock_gettime(int clock_id, faults_timespec *tp);
]]
local timespec = ffi.new("faults_timespec")

local function now_ms()
  ffi.C.clock_gettime(0, timespec) -- CLOCK_REALTIME
  return tonumber(timespec.tv_sec) * 1000 + math.floor(tonumber(timespec.tv_nsec) / 1000000)
end

-- main state: number the threads
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

-- thread state
local outdir, namespaces, sent_log, resp_log
sent = 0
received = 0

local function split(s)
  local list = {}
  for item in string.gmatch(s, "[^,]+") do
    table.insert(list, item)
  end
  return list
end

function init(args)
  outdir = args[1]
  namespaces = split(args[2] or "")
  if not outdir or #namespaces == 0 then
    error("usage: wrk ... -s fault_load.lua URL -- OUTDIR NS1,NS2,...")
  end
  math.randomseed(tid * 7919 + os.time())
  sent_log = assert(io.open(outdir .. "/sent-" .. tid .. ".log", "w"))
  resp_log = assert(io.open(outdir .. "/resp-" .. tid .. ".log", "w"))
  sent_log:setvbuf("full", 65536)
  resp_log:setvbuf("full", 65536)
end

local function path_for()
  local ns = namespaces[math.random(#namespaces)]
  local shape = math.random(100)
  local project = "p" .. math.random(0, 59)
  if shape <= 60 then
    return "/" .. ns .. "/" .. project .. "/-/issues/" .. math.random(1, 5000)
  elseif shape <= 80 then
    return "/" .. ns .. "/" .. project .. "/-/merge_requests/" .. math.random(1, 500)
  elseif shape <= 90 then
    return "/groups/" .. ns .. "/-/issues"
  else
    return "/" .. ns .. "/sub" .. math.random(0, 4) .. "/" .. project .. "/-/tree/main"
  end
end

function request()
  sent = sent + 1
  local id = "t" .. tid .. "-" .. sent
  local path = path_for()
  sent_log:write(id, " ", path, "\n")
  return wrk.format("GET", path, { ["X-Request-Id"] = id })
end

function response(status, headers, body)
  received = received + 1
  local id = headers["x-request-id"] or headers["X-Request-Id"] or "-"
  local cell = headers["x-faults-cell"] or headers["X-Faults-Cell"] or "-"
  local err, errcell = "-", "-"
  if status >= 300 and body then
    err = string.match(body, '"error":"([%w_]+)"') or "-"
    errcell = string.match(body, "cell ([%w_.%-]+) ") or "-"
  end
  resp_log:write(now_ms(), " ", status, " ", id, " ", cell, " ", err, " ", errcell, "\n")
end

-- main state
function done(summary, latency, requests)
  local per_thread = {}
  for i, thread in ipairs(threads) do
    table.insert(per_thread, string.format('{"thread":%d,"sent":%d,"received":%d}', i, thread:get("sent") or 0,
      thread:get("received") or 0))
  end
  local e = summary.errors
  local out = string.format(
    '{"duration_us":%d,"requests":%d,"bytes":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_ms":{"p50":%.3f,"p90":%.3f,"p99":%.3f,"max":%.3f},"threads":[%s]}\n',
    summary.duration, summary.requests, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    table.concat(per_thread, ","))
  local dir = os.getenv("FAULTS_OUT")
  local f = assert(io.open(dir .. "/summary.json", "w"))
  f:write(out)
  f:close()
end
