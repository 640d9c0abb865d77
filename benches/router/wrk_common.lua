-- What the wrk scripts of script/bench-router and script/redis-kill-figure share: each thread
-- numbered and remembered (so done() can add up per-thread counters), and wrk's error counts as
-- the JSON object every script's report line carries.
-- Load it from a script with:
--   local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrk_common.lua")
-- It defines no globals: a script without request()/response() hooks keeps wrk's fast path.
local M = {}

local threads = {}
local next_id = 0

-- For a script's setup(): gives the thread its number (global `id` in the thread's state).
function M.setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

-- The sum over all threads of a per-thread global counter (0 where a thread never set it).
function M.sum(name)
  local total = 0
  for _, t in ipairs(threads) do total = total + (t:get(name) or 0) end
  return total
end

-- wrk's socket error counts as `"errors":{...}`.
function M.errors_json(summary)
  local e = summary.errors
  return string.format('"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}',
    e.connect, e.read, e.write, e.status, e.timeout)
end

return M
