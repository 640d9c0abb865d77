# frozen_string_literal: true

# script/bench-router's report: reads the run directory (settings.json, <side>-<connections>.json
# from wrk's report.lua, the router metrics and the flood figures), prints the table, the ratios
# and the targets, and writes everything as JSON when a path is given.
#
# Usage: ruby benches/router/report.rb RUN_DIR [JSON_OUT]
# Exit status 1 when a run had errors or the flood pushed the cache past its capacity.

require "json"
require_relative "../support/stats"

dir, json_out = ARGV
abort "usage: report.rb RUN_DIR [JSON_OUT]" unless dir && File.directory?(dir)

BASE_SIDES = %w[direct nginx router router_logs floor].freeze
LABELS = {
  "router_shared" => "cells-router (shared tier)",
  "direct" => "upstream directly",
  "nginx" => "nginx proxy",
  "router" => "cells-router (logs off)",
  "router_logs" => "cells-router (logs on)",
  "floor" => "hyper floor (bare_proxy)"
}.freeze
TARGET_ADDED_P50_US = 50
TARGET_RSS_KIB = 100 * 1024
# Issue 14: the router's CPU per request within 5% of the hyper floor's.
TARGET_CPU_OVER_FLOOR = 1.05

def read_json(path)
  JSON.parse(File.read(path))
rescue Errno::ENOENT, JSON::ParserError => e
  abort "bench-router: cannot read #{path}: #{e.message}"
end

settings = read_json(File.join(dir, "settings.json"))
# With the shared tier (BENCH_SHARED, on by default when redis-server is installed): its side too.
SIDES = (settings["shared"] ? BASE_SIDES + ["router_shared"] : BASE_SIDES).freeze
problems = []

# One side's figures from one wrk run; `cpu`: the CPU time its process spent meanwhile, if taken.
def figures(w, problems, label, cpu = nil)
  seconds = w["duration_us"] / 1e6
  errors = w["errors"].values.sum
  problems << "#{label}: #{w["errors"]}" if errors.positive?
  f = { "requests" => w["requests"], "seconds" => seconds.round(3), "rps" => (w["requests"] / seconds).round(1),
        "p50_us" => w["p50_us"], "p90_us" => w["p90_us"], "p99_us" => w["p99_us"], "mean_us" => w["mean_us"], "errors" => errors }
  if cpu && w["requests"].positive?
    per_request = ->(ticks) { (ticks * 1e6 / cpu["ticks_per_s"] / w["requests"]).round(2) }
    f["cpu_us_per_request"] = { "user" => per_request.(cpu["user_ticks"]), "system" => per_request.(cpu["system_ticks"]) }
    # schedstat's run time: user + system to the nanosecond (the ticks above are samples).
    f["cpu_us_per_request"]["run"] = (cpu["run_ns"] / 1e3 / w["requests"]).round(3) if cpu["run_ns"]&.positive?
    f["cpu_window_s"] = cpu["window_s"] if cpu["window_s"]
  end
  f
end

# A side's rounds (`name-r<i>.json`), and the round that is its median by `key`, whose figures
# stand for the side; `rounds_<key>` lists every round's, `rounds_cpu_us` every round's CPU
# microseconds per request (schedstat's run time; the ticks' user + system without it) where the
# CPU time was taken.
def median_round(dir, name, key, problems)
  files = Dir[File.join(dir, "#{name}-r*.json")].grep(/-r\d+\.json\z/).sort_by { |f| f[/-r(\d+)\.json\z/, 1].to_i }
  abort "bench-router: no runs for #{name} in #{dir}" if files.empty?
  rounds = files.map do |f|
    cpu_file = f.sub(/\.json\z/, ".cpu.json")
    figures(read_json(f), problems, File.basename(f, ".json"), File.exist?(cpu_file) ? read_json(cpu_file) : nil)
  end
  middle = rounds.sort_by { |r| r[key] }[(rounds.size - 1) / 2]
  cpu = rounds.map { |r| (c = r["cpu_us_per_request"]) && (c["run"] || (c["user"] + c["system"]).round(2)) }
  middle.merge("rounds_#{key}" => rounds.map { |r| r[key] }, "rounds_cpu_us" => cpu)
end

# CPU per request, router / floor: each round's ratio of the two back-to-back runs, and their
# median (machine drift between rounds cancels out of each ratio).
def cpu_ratio(router, floor)
  by_round = router["rounds_cpu_us"].zip(floor["rounds_cpu_us"]).map { |a, b| (a / b).round(3) }
  { "median" => Stats.median(by_round).round(3), "by_round" => by_round }
end

runs = settings["connections"].map do |c|
  sides = SIDES.to_h { |side| [side, median_round(dir, "#{side}-#{c}", "rps", problems)] }
  d, n, r, rl, fl, rs = sides.values_at(*SIDES)
  by_round = ->(a, b) { a["rounds_rps"].zip(b["rounds_rps"]).map { |x, y| (x / y).round(3) } }
  {
    "connections" => c,
    "sides" => sides,
    "ratios" => {
      "router_over_nginx_rps" => (r["rps"] / n["rps"]).round(3),
      "router_over_nginx_rps_by_round" => by_round.(r, n),
      "router_logs_over_nginx_rps" => (rl["rps"] / n["rps"]).round(3),
      # The floor splits the gap: hyper's share (floor / nginx) and the router's own (router / floor).
      "floor_over_nginx_rps" => (fl["rps"] / n["rps"]).round(3),
      "floor_over_nginx_rps_by_round" => by_round.(fl, n),
      "router_over_floor_rps" => (r["rps"] / fl["rps"]).round(3),
      "router_over_floor_rps_by_round" => by_round.(r, fl),
      "router_over_floor_cpu" => cpu_ratio(r, fl),
      "router_p50_minus_direct_us" => r["p50_us"] - d["p50_us"],
      "router_logs_p50_minus_direct_us" => rl["p50_us"] - d["p50_us"],
      "nginx_p50_minus_direct_us" => n["p50_us"] - d["p50_us"],
      # The shared tier on cache hits: memory only, so this should be noise around 1.
      "router_shared_over_router_rps" => rs && (rs["rps"] / r["rps"]).round(3),
      "router_shared_over_router_rps_by_round" => rs && by_round.(rs, r)
    }
  }
end

LIGHT_SIDES = %w[direct nginx router].freeze
light_sides = LIGHT_SIDES.to_h { |side| [side, median_round(dir, "#{side}-light", "p50_us", problems)] }
light = {
  "connections" => 1,
  "sides" => light_sides,
  "router_added_p50_us" => light_sides["router"]["p50_us"] - light_sides["direct"]["p50_us"],
  "nginx_added_p50_us" => light_sides["nginx"]["p50_us"] - light_sides["direct"]["p50_us"],
  "router_added_p50_us_by_round" => light_sides["router"]["rounds_p50_us"].zip(light_sides["direct"]["rounds_p50_us"]).map { |a, b| a - b },
  "nginx_added_p50_us_by_round" => light_sides["nginx"]["rounds_p50_us"].zip(light_sides["direct"]["rounds_p50_us"]).map { |a, b| a - b }
}

# The router and the floor under one paced load (`<side>-<pass>-r<i>.json`): each side's median
# round, and router / floor by rate and by CPU per request.
def paced_pair(dir, pass, settings, problems)
  sides = %w[router floor].to_h { |side| [side, median_round(dir, "#{side}-#{pass}", "rps", problems)] }
  {
    "connections" => settings["paced_connections"],
    "pace_ms" => settings["pace_ms"],
    "sides" => sides,
    # The same offered rate on both sides: about 1 (else the CPU comparison is not at one load).
    "router_over_floor_rps" => (sides["router"]["rps"] / sides["floor"]["rps"]).round(3),
    "router_over_floor_cpu" => cpu_ratio(sides["router"], sides["floor"])
  }
end

paced = paced_pair(dir, "paced", settings, problems)
# Side by side: the same paced load on both at once, so each round's ratio is of the same seconds.
together = paced_pair(dir, "together", settings, problems)

router_metrics = (%w[router router_logs] + (settings["shared"] ? ["router_shared"] : [])).to_h { |s| [s, read_json(File.join(dir, "#{s}-metrics.json"))] }
router_metrics.each do |side, m|
  # One learn request for the one prefix, and every measured request a cache hit.
  problems << "#{side}: #{m["learn_requests"]} learn requests for one cached prefix" unless m["learn_requests"] == 1
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
problems << "flood: #{fw["not_ok"]} answers were not 200" if fw["not_ok"].positive?
problems << "flood: wrk errors #{fw["errors"]}" if flood["errors"].positive?
over = [fr["entries"]["end"], fr["entries"]["max_sampled"]].max
problems << "flood: #{over} cache entries for a capacity of #{flood["capacity"]}" if over > flood["capacity"]

targets = runs.to_h do |run|
  [run["connections"].to_s, {
    "throughput_at_least_nginx" => run["ratios"]["router_over_nginx_rps"] >= 1.0,
    "cpu_within_5pct_of_floor" => run["ratios"]["router_over_floor_cpu"]["median"] <= TARGET_CPU_OVER_FLOOR
  }]
end
targets["paced"] = { "cpu_within_5pct_of_floor" => paced["router_over_floor_cpu"]["median"] <= TARGET_CPU_OVER_FLOOR }
targets["together"] = { "cpu_within_5pct_of_floor" => together["router_over_floor_cpu"]["median"] <= TARGET_CPU_OVER_FLOOR }
targets["light"] = { "added_p50_at_most_50us" => light["router_added_p50_us"] <= TARGET_ADDED_P50_US }
targets["flood"] = {
  "entries_within_capacity" => over <= flood["capacity"],
  "rss_under_100MiB" => fr["rss_kib"]["peak"] < TARGET_RSS_KIB
}

fmt_us = ->(us) { us >= 1000 ? format("%.2f ms", us / 1000.0) : "#{us} us" }
yes_no = ->(b) { b ? "yes" : "NO" }
rounds = ->(ratios) { ratios.map { |x| format("%.2f", x) }.join(" ") }
# One table row per side: requests/s, p50, p99.
print_sides = lambda do |sides|
  puts format("  %-26s %12s %10s %10s", "", "requests/s", "p50", "p99")
  sides.each do |side, f|
    puts format("  %-26s %12.0f %10s %10s", LABELS.fetch(side), f["rps"], fmt_us.(f["p50_us"]), fmt_us.(f["p99_us"]))
  end
end
puts "cells-router load benchmark (wrk #{settings["threads"]} threads, #{settings["duration_s"]} s per run, " \
     "median of #{settings["rounds"] || 1} interleaved rounds, " \
     "#{settings["cores"]} cores, nginx #{settings["nginx"]}, upstream nginx workers #{settings["upstream_workers"]}, " \
     "proxy nginx workers #{settings["proxy_workers"]})"
runs.each do |run|
  puts
  puts "#{run["connections"]} connections"
  print_sides.(run["sides"])
  ra = run["ratios"]
  t = targets[run["connections"].to_s]
  puts format("  router / nginx throughput:  %.2f (logs on %.2f; by round %s)   target >= 1.00: %s",
              ra["router_over_nginx_rps"], ra["router_logs_over_nginx_rps"],
              rounds.(ra["router_over_nginx_rps_by_round"]), yes_no.(t["throughput_at_least_nginx"]))
  puts format("  hyper floor / nginx: %.2f (by round %s); router / floor: %.2f (by round %s)",
              ra["floor_over_nginx_rps"], rounds.(ra["floor_over_nginx_rps_by_round"]),
              ra["router_over_floor_rps"], rounds.(ra["router_over_floor_rps_by_round"]))
  puts format("  p50 - direct p50 (saturated: queueing, not per-request work): router %s, logs on %s, nginx %s",
              fmt_us.(ra["router_p50_minus_direct_us"]), fmt_us.(ra["router_logs_p50_minus_direct_us"]),
              fmt_us.(ra["nginx_p50_minus_direct_us"]))
  if ra["router_shared_over_router_rps"]
    puts format("  shared tier on / off (cache hits): %.2f (by round %s)", ra["router_shared_over_router_rps"],
                rounds.(ra["router_shared_over_router_rps_by_round"]))
  end
  cpu = run["sides"].filter_map do |side, f|
    c = f["cpu_us_per_request"] or next
    format("%s %.1f (user %.1f, system %.1f)", side, c["run"] || (c["user"] + c["system"]), c["user"], c["system"])
  end
  unless cpu.empty?
    puts "  CPU us per request in the median round (the process under test; user/system split sampled by ticks): " \
         "#{cpu.join("; ")}"
  end
  puts format("  CPU per request router / floor: %.3f (median of back-to-back rounds %s)   target <= %.2f: %s",
              ra["router_over_floor_cpu"]["median"], rounds.(ra["router_over_floor_cpu"]["by_round"]),
              TARGET_CPU_OVER_FLOOR, yes_no.(t["cpu_within_5pct_of_floor"]))
end
puts
puts "paced (#{paced["connections"]} connections, each waiting #{paced["pace_ms"]} ms after an answer: one offered rate)"
paced["sides"].each do |side, f|
  c = f["cpu_us_per_request"]
  puts format("  %-26s %12.0f requests/s, CPU us per request by round %s (median round: user %.1f, system %.1f)",
              LABELS.fetch(side), f["rps"], f["rounds_cpu_us"].map { |x| format("%.2f", x) }.join(" "), c["user"], c["system"])
end
puts format("  CPU per request router / floor: %.3f (median of back-to-back rounds %s; rates router / floor %.3f)   " \
            "target <= %.2f: %s",
            paced["router_over_floor_cpu"]["median"], rounds.(paced["router_over_floor_cpu"]["by_round"]),
            paced["router_over_floor_rps"], TARGET_CPU_OVER_FLOOR, yes_no.(targets["paced"]["cpu_within_5pct_of_floor"]))
puts
puts "side by side (the same paced load on the router and the floor at once, one wrk thread each: the same seconds measured)"
together["sides"].each do |side, f|
  puts format("  %-26s %12.0f requests/s, CPU us per request by round %s",
              LABELS.fetch(side), f["rps"], f["rounds_cpu_us"].map { |x| format("%.2f", x) }.join(" "))
end
puts format("  CPU per request router / floor: %.3f (median of the rounds %s; rates router / floor %.3f)   target <= %.2f: %s",
            together["router_over_floor_cpu"]["median"], rounds.(together["router_over_floor_cpu"]["by_round"]),
            together["router_over_floor_rps"], TARGET_CPU_OVER_FLOOR, yes_no.(targets["together"]["cpu_within_5pct_of_floor"]))
puts
puts "light load (1 connection, 1 wrk thread)"
print_sides.(light["sides"])
puts format("  added p50 over direct: router %s (by round %s), nginx %s   target <= 50 us: %s",
            fmt_us.(light["router_added_p50_us"]), light["router_added_p50_us_by_round"].join(" "),
            fmt_us.(light["nginx_added_p50_us"]), yes_no.(targets["light"]["added_p50_at_most_50us"]))
puts
puts "flood: #{flood["answered"]} of #{flood["paths"]} distinct paths in #{flood["seconds"]} s " \
     "(#{flood["rps"].round} req/s, stopped by #{flood["stopped_by"] == "requests" ? "request count" : "the time bound"}), " \
     "cache capacity #{flood["capacity"]}"
rss = fr["rss_kib"]
puts format("  RSS start %.1f MiB, peak %.1f MiB (VmHWM), end %.1f MiB   target < 100 MiB: %s",
            rss["start"] / 1024.0, rss["peak"] / 1024.0, rss["end"] / 1024.0, yes_no.(targets["flood"]["rss_under_100MiB"]))
puts "  cache entries at the end #{fr["entries"]["end"]}, largest sampled #{fr["entries"]["max_sampled"]}; " \
     "learn requests #{fr["learn_requests"]}   entries <= capacity: #{yes_no.(targets["flood"]["entries_within_capacity"])}"

unless problems.empty?
  puts
  puts "problems:"
  problems.each { |p| puts "  #{p}" }
end

if json_out && !json_out.empty?
  out = { "settings" => settings, "runs" => runs, "paced" => paced, "together" => together, "light" => light,
          "router_metrics" => router_metrics, "flood" => flood,
          "targets" => targets, "problems" => problems }
  File.write(json_out, JSON.pretty_generate(out) + "\n")
  puts
  puts "figures written to #{json_out}"
end
exit(problems.empty? ? 0 : 1)
