# frozen_string_literal: true

# script/bench-router's report: reads the run directory (settings.json, <side>-<connections>.json
# from wrk's report.lua, the router metrics and the flood figures), prints the table, the ratios
# and the targets, and writes everything as JSON when a path is given.
#
# Usage: ruby benches/router/report.rb RUN_DIR [JSON_OUT]
# Exit status 1 when a run had errors or the flood pushed the cache past its capacity.

require "json"

dir, json_out = ARGV
abort "usage: report.rb RUN_DIR [JSON_OUT]" unless dir && File.directory?(dir)

SIDES = %w[direct nginx router router_logs].freeze
LABELS = {
  "direct" => "upstream directly",
  "nginx" => "nginx proxy",
  "router" => "cells-router (logs off)",
  "router_logs" => "cells-router (logs on)"
}.freeze
TARGET_ADDED_P50_US = 50
TARGET_RSS_KIB = 100 * 1024

def read_json(path)
  JSON.parse(File.read(path))
rescue Errno::ENOENT, JSON::ParserError => e
  abort "bench-router: cannot read #{path}: #{e.message}"
end

settings = read_json(File.join(dir, "settings.json"))
problems = []

runs = settings["connections"].map do |c|
  sides = SIDES.to_h do |side|
    w = read_json(File.join(dir, "#{side}-#{c}.json"))
    seconds = w["duration_us"] / 1e6
    errors = w["errors"].values.sum
    problems << "#{side} c=#{c}: #{w['errors']}" if errors.positive?
    [side, {
      "requests" => w["requests"],
      "seconds" => seconds.round(3),
      "rps" => (w["requests"] / seconds).round(1),
      "p50_us" => w["p50_us"],
      "p90_us" => w["p90_us"],
      "p99_us" => w["p99_us"],
      "mean_us" => w["mean_us"],
      "errors" => errors
    }]
  end
  d, n, r, rl = sides.values_at(*SIDES)
  {
    "connections" => c,
    "sides" => sides,
    "ratios" => {
      "router_over_nginx_rps" => (r["rps"] / n["rps"]).round(3),
      "router_logs_over_nginx_rps" => (rl["rps"] / n["rps"]).round(3),
      "router_p50_minus_direct_us" => r["p50_us"] - d["p50_us"],
      "router_logs_p50_minus_direct_us" => rl["p50_us"] - d["p50_us"],
      "nginx_p50_minus_direct_us" => n["p50_us"] - d["p50_us"]
    }
  }
end

router_metrics = %w[router router_logs].to_h { |s| [s, read_json(File.join(dir, "#{s}-metrics.json"))] }
router_metrics.each do |side, m|
  # One learn request for the one prefix, and every measured request a cache hit.
  problems << "#{side}: #{m['learn_requests']} learn requests for one cached prefix" unless m["learn_requests"] == 1
end

fw = read_json(File.join(dir, "flood-wrk.json"))
fr = read_json(File.join(dir, "flood-router.json"))
flood_seconds = fw["duration_us"] / 1e6
flood = {
  "paths" => settings["flood_paths"],
  "capacity" => settings["flood_capacity"],
  "answered" => fw["answered"],
  "not_ok" => fw["not_ok"],
  "errors" => fw["errors"].values.sum,
  "seconds" => flood_seconds.round(2),
  "rps" => (fw["answered"] / flood_seconds).round(1),
  "p50_us" => fw["p50_us"],
  "p99_us" => fw["p99_us"],
  "stopped_by" => fr["stopped_by"],
  "rss_kib" => fr["rss_kib"],
  "entries" => fr["entries"],
  "learn_requests" => fr["learn_requests"],
  "misses" => fr["misses"],
  "hits" => fr["hits"]
}
problems << "flood: #{fw['not_ok']} answers were not 200" if fw["not_ok"].positive?
problems << "flood: wrk errors #{fw['errors']}" if flood["errors"].positive?
over = [fr["entries"]["end"], fr["entries"]["max_sampled"]].max
problems << "flood: #{over} cache entries for a capacity of #{flood['capacity']}" if over > flood["capacity"]

targets = runs.to_h do |run|
  ra = run["ratios"]
  [run["connections"].to_s, {
    "throughput_at_least_nginx" => ra["router_over_nginx_rps"] >= 1.0,
    "added_p50_at_most_50us" => ra["router_p50_minus_direct_us"] <= TARGET_ADDED_P50_US
  }]
end
targets["flood"] = {
  "entries_within_capacity" => over <= flood["capacity"],
  "rss_under_100MiB" => fr["rss_kib"]["peak"] < TARGET_RSS_KIB
}

fmt_us = ->(us) { us >= 1000 ? format("%.2f ms", us / 1000.0) : "#{us} us" }
yes_no = ->(b) { b ? "yes" : "NO" }
puts "cells-router load benchmark (wrk #{settings['threads']} threads, #{settings['duration_s']} s per run, " \
     "#{settings['cores']} cores, nginx #{settings['nginx']}, upstream nginx workers #{settings['upstream_workers']}, " \
     "proxy nginx workers #{settings['proxy_workers']})"
runs.each do |run|
  puts
  puts "#{run['connections']} connections"
  puts format("  %-26s %12s %10s %10s", "", "requests/s", "p50", "p99")
  run["sides"].each do |side, f|
    puts format("  %-26s %12.0f %10s %10s", LABELS.fetch(side), f["rps"], fmt_us.(f["p50_us"]), fmt_us.(f["p99_us"]))
  end
  ra = run["ratios"]
  t = targets[run["connections"].to_s]
  puts format("  router / nginx throughput:  %.2f (logs on %.2f)   target >= 1.00: %s",
              ra["router_over_nginx_rps"], ra["router_logs_over_nginx_rps"], yes_no.(t["throughput_at_least_nginx"]))
  puts format("  router p50 - direct p50:    %s (logs on %s; nginx %s)   target <= 50 us: %s",
              fmt_us.(ra["router_p50_minus_direct_us"]), fmt_us.(ra["router_logs_p50_minus_direct_us"]),
              fmt_us.(ra["nginx_p50_minus_direct_us"]), yes_no.(t["added_p50_at_most_50us"]))
end
puts
puts "flood: #{flood['answered']} of #{flood['paths']} distinct paths in #{flood['seconds']} s " \
     "(#{flood['rps'].round} req/s, stopped by #{flood['stopped_by'] == 'requests' ? 'request count' : 'the time bound'}), " \
     "cache capacity #{flood['capacity']}"
rss = fr["rss_kib"]
puts format("  RSS start %.1f MiB, peak %.1f MiB (VmHWM), end %.1f MiB   target < 100 MiB: %s",
            rss["start"] / 1024.0, rss["peak"] / 1024.0, rss["end"] / 1024.0, yes_no.(targets["flood"]["rss_under_100MiB"]))
puts "  cache entries at the end #{fr['entries']['end']}, largest sampled #{fr['entries']['max_sampled']}; " \
     "learn requests #{fr['learn_requests']}   entries <= capacity: #{yes_no.(targets['flood']['entries_within_capacity'])}"

unless problems.empty?
  puts
  puts "problems:"
  problems.each { |p| puts "  #{p}" }
end

if json_out && !json_out.empty?
  out = { "settings" => settings, "runs" => runs, "router_metrics" => router_metrics, "flood" => flood,
          "targets" => targets, "problems" => problems }
  File.write(json_out, JSON.pretty_generate(out) + "\n")
  puts
  puts "figures written to #{json_out}"
end
exit(problems.empty? ? 0 : 1)
