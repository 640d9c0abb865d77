# frozen_string_literal: true

require "json"
require "open3"
require "shellwords"
require "timeout"
require "tmpdir"

# script/bench-router in its smoke mode (BENCH_QUICK=1: 2 s runs at 32 connections, a
# 100,000-path flood against a 10,000-entry cache): it starts the upstream nginx, nginx as a
# proxy, the router and the hyper floor (router/examples/bare_proxy.rs), measures them all, floods
# the router, cleans up, and writes the figures.
RSpec.describe "script/bench-router" do
  script = File.join(REPO_ROOT, "script", "bench-router")
  # The profile-guided build (script/build-router-pgo, which script/test runs first) when it is
  # there, else cargo's release build: the script would otherwise build the missing one itself.
  # Named by BENCH_BUILD alone (script/test exports CELLS_ROUTER for the real-process specs).
  builds = { "pgo" => %w[target pgo release], "release" => %w[target release] }.transform_values { |d| File.join(REPO_ROOT, *d) }
  build = builds.find { |_, d| File.executable?(File.join(d, "cells-router")) && File.executable?(File.join(d, "examples", "bare_proxy")) }&.first

  before(:context) do
    skip "neither build of cells-router and the floor is there (script/build-router-pgo, or cargo build --release)" unless build
    missing = %w[wrk nginx curl].reject { |t| system("command -v #{t} >/dev/null 2>&1") }
    skip "not installed: #{missing.join(", ")}" unless missing.empty?

    @dir = Dir.mktmpdir("bench-router")
    @json_path = File.join(@dir, "bench-router.json")
    # `--json DIR` writes DIR/bench-router.json
    Timeout.timeout(120) do
      env = { "BENCH_QUICK" => "1", "BENCH_BUILD" => build, "CELLS_ROUTER" => nil, "BARE_PROXY" => nil }
      @stdout, @stderr, @status = Open3.capture3(env, script, "--json", @dir, chdir: REPO_ROOT)
    end
    @figures = File.exist?(@json_path) ? JSON.parse(File.read(@json_path)) : nil
  end

  after(:context) { FileUtils.remove_entry(@dir) if @dir }

  it "exits 0 and writes the JSON figures" do
    expect(@status.exitstatus).to eq(0), "stdout:\n#{@stdout}\nstderr:\n#{@stderr}"
    expect(@figures).to be_a(Hash)
    expect(@figures["settings"]).to include("quick" => true, "duration_s" => 2, "connections" => [32], "threads" => 2, "rounds" => 1,
                                            "paced_rounds" => 1, "paced_connections" => 16, "pace_ms" => 1)
    # Router and floor from the one build asked for.
    expect(@figures["settings"]).to include("build" => build, "router" => File.join(builds[build], "cells-router"),
                                            "floor" => File.join(builds[build], "examples", "bare_proxy"))
    expect(@figures["problems"]).to eq([])
  end

  it "measures the upstream, nginx and the router with positive rates and latencies, and their ratios" do
    run = @figures["runs"].first
    expect(run["connections"]).to eq(32)
    %w[direct nginx router router_logs floor].each do |side|
      f = run["sides"].fetch(side)
      expect(f["rps"]).to be > 0, "#{side}: #{f.inspect}"
      expect(f["requests"]).to be > 0
      expect(f["p50_us"]).to be > 0
      expect(f["p99_us"]).to be >= f["p50_us"]
      expect(f["errors"]).to eq(0)
    end
    ratios = run["ratios"]
    expect(ratios["router_over_nginx_rps"]).to be_within(0.001).of(run["sides"]["router"]["rps"] / run["sides"]["nginx"]["rps"])
    expect(ratios["router_p50_minus_direct_us"]).to eq(run["sides"]["router"]["p50_us"] - run["sides"]["direct"]["p50_us"])
    expect(ratios["router_over_nginx_rps_by_round"].size).to eq(1)
    sides = run["sides"]
    expect(ratios["floor_over_nginx_rps"]).to be_within(0.001).of(sides["floor"]["rps"] / sides["nginx"]["rps"])
    expect(ratios["router_over_floor_rps"]).to be_within(0.001).of(sides["router"]["rps"] / sides["floor"]["rps"])
    expect(ratios["router_over_floor_rps_by_round"]).to eq([ratios["router_over_floor_rps"]])
    expect(@stdout).to include("hyper floor / nginx:", "router / floor:")
    expect(@stdout).to include("router / nginx throughput:", "p50 - direct p50 (saturated", "CPU us per request")
    # The CPU each proxy spent per request, user and system: the reason for any throughput gap.
    %w[nginx router floor].each do |side|
      cpu = run["sides"][side]["cpu_us_per_request"]
      expect(cpu["user"] + cpu["system"]).to be > 0, "#{side}: #{cpu.inspect}"
    end
    # Issue 14's CPU figure: the router's CPU per request over the floor's, from the runs back to back.
    # (schedstat's run time, to the nanosecond: about the ticks' user + system, which are samples)
    cpu_us = ->(side) { run["sides"][side]["cpu_us_per_request"]["run"] }
    %w[router floor].each do |side|
      c = run["sides"][side]["cpu_us_per_request"]
      expect(c["run"]).to be_within(0.2 * c["run"]).of(c["user"] + c["system"]), "#{side}: #{c.inspect}"
    end
    expect(ratios["router_over_floor_cpu"]["by_round"].first).to be_within(0.001).of(cpu_us.("router") / cpu_us.("floor"))
    expect(ratios["router_over_floor_cpu"]["median"]).to eq(ratios["router_over_floor_cpu"]["by_round"].first)
    expect(@figures["targets"]["32"]).to have_key("cpu_within_5pct_of_floor")
    expect(@stdout).to include("CPU per request router / floor:")
  end

  # The router and the floor of a paced pass (one round, quick mode): both served the paced load
  # without errors, with a CPU time each, and router / floor is their ratio.
  def expect_paced_pair(pair)
    expect(pair).to include("connections" => 16, "pace_ms" => 1)
    router, floor = pair["sides"].values_at("router", "floor")
    [router, floor].each do |f|
      expect(f["errors"]).to eq(0)
      expect(f["rounds_cpu_us"].size).to eq(1)
      expect(f["rounds_cpu_us"].first).to be > 0
      # 16 connections each waiting 1 ms after an answer: at most 16,000 requests/s (wrk's
      # timers add to the wait), the same rate offered to both.
      expect(f["rps"]).to be_between(1000, 16_000)
    end
    expect(pair["router_over_floor_rps"]).to be_within(0.001).of(router["rps"] / floor["rps"])
    expect(pair["router_over_floor_cpu"]["by_round"]).to eq([(router["rounds_cpu_us"].first / floor["rounds_cpu_us"].first).round(3)])
    [router, floor]
  end

  it "compares the router's CPU per request with the floor's at one paced request rate" do
    expect_paced_pair(@figures["paced"])
    expect(@figures["targets"]["paced"]).to have_key("cpu_within_5pct_of_floor")
    expect(@stdout).to include("paced (16 connections, each waiting 1 ms")
  end

  it "measures the router and the floor side by side, under the same paced load over the same seconds" do
    router, floor = expect_paced_pair(@figures["together"])
    # Both CPU times taken over (nearly) the same 2 s: the windows overlap by at least 90%.
    r0, r1 = router["cpu_window_s"]
    f0, f1 = floor["cpu_window_s"]
    expect(r1 - r0).to be_between(1.9, 3)
    expect(([r1, f1].min - [r0, f0].max) / [r1 - r0, f1 - f0].max).to be >= 0.9
    expect(@figures["targets"]["together"]).to have_key("cpu_within_5pct_of_floor")
    expect(@stdout).to include("side by side (the same paced load on the router and the floor at once")
  end

  it "refuses a paced setting that is not a positive integer, naming it" do
    _out, err, status = Open3.capture3({ "BENCH_PACE_MS" => "0.5" }, script, chdir: REPO_ROOT)
    expect(status.exitstatus).to eq(2)
    expect(err).to eq("bench-router: BENCH_PACE_MS must be a positive integer, not '0.5'\n")
  end

  it "measures the latency each proxy adds at light load, one connection" do
    light = @figures["light"]
    expect(light["connections"]).to eq(1)
    %w[direct nginx router].each do |side|
      f = light["sides"].fetch(side)
      expect(f["rps"]).to be > 0, "#{side}: #{f.inspect}"
      expect(f["p50_us"]).to be > 0
      expect(f["errors"]).to eq(0)
    end
    expect(light["router_added_p50_us"]).to eq(light["sides"]["router"]["p50_us"] - light["sides"]["direct"]["p50_us"])
    expect(@figures["targets"]["light"]).to have_key("added_p50_at_most_50us")
    expect(@stdout).to include("light load (1 connection", "added p50 over direct:")
  end

  it "served the measured router runs from one learned prefix" do
    @figures["router_metrics"].each do |side, m|
      expect(m["learn_requests"]).to eq(1), side
      expect(m["hits"]).to be > 1000, side
    end
  end

  it "floods the router with distinct paths and its cache stays within capacity" do
    flood = @figures["flood"]
    expect(flood).to include("paths" => 100_000, "capacity" => 10_000)
    expect(flood["stopped_by"]).to eq("requests").or eq("time")
    expect(flood["answered"]).to be > 10_000
    expect(flood["not_ok"]).to eq(0)
    # every answered path was a new prefix: one learn request each
    expect(flood["learn_requests"]).to be >= flood["answered"] - 100
    expect(flood["entries"]["end"]).to be_between(1, 10_000)
    expect(flood["entries"]["max_sampled"]).to be <= 10_000
    rss = flood["rss_kib"]
    expect(rss["start"]).to be > 0
    expect(rss["peak"]).to be >= rss["start"]
    expect(rss["peak"]).to be >= rss["end"]
  end

  it "stops every process it started and removes its run directory" do
    run_dir = @figures["settings"]["run_dir"]
    expect(run_dir).to start_with("/")
    # nginx (-p RUN_DIR/), the routers (--config RUN_DIR/...) and wrk (RUN_DIR in its arguments)
    leftovers = `pgrep -af #{Shellwords.escape(run_dir)} 2>/dev/null`.lines.reject { |l| l.include?("pgrep") }
    expect(leftovers).to eq([])
    # the floor is started with addresses only: find it by its listening port
    floor_port = @figures["settings"]["floor_port"]
    expect(floor_port).to be_a(Integer)
    floors = `pgrep -af #{Shellwords.escape("bare_proxy 127.0.0.1:#{floor_port} ")} 2>/dev/null`.lines.reject { |l| l.include?("pgrep") }
    expect(floors).to eq([])
    expect(File.exist?(run_dir)).to be(false)
  end
end
