-- wrk script for script/bench-router's paced pass: every connection waits a fixed time after each
-- answer before it sends again (wrk's delay() hook, milliseconds), so the router and the floor are
-- offered the same request rate instead of each running as fast as it can. CPU per request then
-- compares the two at one load: saturated, a slower process batches more work per wake-up, which
-- blurs a per-request comparison. Same report line as report.lua.
-- Argument: the wait in milliseconds (wrk ... URL -- 1).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")

local pace_ms = 1

function init(args)
  pace_ms = tonumber(args[1] or "1") or error("paced.lua: the wait must be a number of milliseconds, not " .. tostring(args[1]))
end

function delay()
  return pace_ms
end
