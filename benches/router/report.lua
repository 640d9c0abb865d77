-- wrk script for the throughput runs: no request()/response() hooks (wrk keeps its fast path);
-- done() prints one machine-readable line after wrk's own report.
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrk_common.lua")

done = function(summary, latency, requests)
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,%s,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, common.errors_json(summary),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
