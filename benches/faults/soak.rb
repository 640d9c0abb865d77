# frozen_string_literal: true

require "optparse"
require "json"
require_relative "harness"

module Faults
  # script/soak: a bounded run of mixed cached and uncached traffic with a long tail of distinct
  # paths through cells-router (small cache capacity), sampling the router's memory, open file
  # descriptors and cache entries. See script/soak.
  class Soak
    CONNECTIONS = 32
    THREADS = 2
    TAILS = 5000
    # Allowances of the verdict: memory at the end <= memory after warm-up x 1.2 + 5 MiB;
    # descriptors at the end <= after warm-up x 1.2 + 16 (client and pooled cell connections come
    # and go with the load; a leak grows without bound).
    MEM_FACTOR = 1.2
    MEM_SLACK_KIB = 5 * 1024
    FD_FACTOR = 1.2
    FD_SLACK = 16
    # A cache with at least this share of its capacity in use counts as full.
    SATURATED = 0.9

    def self.main(argv)
      Faults.script_main("script/soak") { parse_and_run(argv) }
    end

    def self.parse_and_run(argv)
      opts = { seconds: 600, capacity: 20_000, json: nil, keep: false, dir: nil, interval: nil }
      analyze = nil
      OptionParser.new do |o|
        o.banner = "usage: script/soak [--seconds N] [--capacity N] [--interval S] [--json FILE|DIR] [--keep] [--dir DIR]\n" \
                   "       script/soak --analyze DIR [--json FILE]"
        o.on("--seconds N", Integer, "length of the load (default 600)") { |v| opts[:seconds] = v }
        o.on("--capacity N", Integer, "router cache capacity (default 20000)") { |v| opts[:capacity] = v }
        o.on("--interval S", Float, "seconds between samples (default min(10, seconds/10))") { |v| opts[:interval] = v }
        o.on("--json FILE", "write the figures as JSON to FILE (or DIR/soak.json)") { |v| opts[:json] = v }
        o.on("--keep", "keep the work directory even when the run passes") { opts[:keep] = true }
        o.on("--dir DIR", "work directory (default tmp/faults/soak-<pid>)") { |v| opts[:dir] = v }
        o.on("--analyze DIR", "only judge the samples of an earlier run (its DIR/run.json)") { |v| analyze = v }
      end.parse!(argv)
      raise OptionParser::InvalidArgument, "unexpected arguments: #{argv.join(" ")}" unless argv.empty?
      return new(**opts.merge(dir: analyze, keep: true)).reanalyze if analyze
      raise OptionParser::InvalidArgument, "--seconds must be 5..86400, not #{opts[:seconds]}" unless (5..86_400).cover?(opts[:seconds])
      raise OptionParser::InvalidArgument, "--capacity must be positive, not #{opts[:capacity]}" unless opts[:capacity].positive?
      raise OptionParser::InvalidArgument, "--interval must be 0.5..60" if opts[:interval] && !(0.5..60).cover?(opts[:interval])

      new(**opts).run
    end

    def initialize(seconds:, capacity:, json:, keep:, dir:, interval:)
      @seconds = seconds
      @capacity = capacity
      @interval = interval || [10.0, [1.0, seconds / 10.0].max].min
      @warmup = [[seconds / 5.0, 2.0].max, 60.0].min
      @json = json && File.expand_path(json)
      @keep = keep
      @dir = File.expand_path(dir || File.join(ROOT, "tmp", "faults", "soak-#{Process.pid}"))
      @samples = []
    end

    def run
      h = Harness.prepare(@dir)
      router_port = h.start_topology("router_soak", ttl: "60s", capacity: @capacity)
      @router_pid = h.children["router"].pid
      args = ["-t#{THREADS}", "-c#{CONNECTIONS}", "-d#{@seconds}s", "--timeout", "10s", "-s",
              File.join(ROOT, "benches", "faults", "soak.lua"), "http://127.0.0.1:#{router_port}/", "--",
              NAMESPACES.keys.join(","), TAILS.to_s]
      h.progress("wrk #{THREADS} threads #{CONNECTIONS} connections for #{@seconds} s; capacity #{@capacity}; " \
                 "sampling every #{@interval} s, warm-up #{@warmup} s")
      sample(h, router_port, 0.0, "start")
      status = h.run_wrk(args, env: { "FAULTS_OUT" => @dir }, timeout: @seconds + 60) do |wrk|
        t0 = h.now
        n = 1
        until h.exited?(wrk)
          due = t0 + (n * @interval)
          if h.now >= due
            sample(h, router_port, h.now - t0, "load")
            n += 1
          end
          sleep [[due - h.now, 0.05].max, 0.25].min
        end
        @load_seconds = h.now - t0
      end
      raise HarnessError, "wrk failed (#{status}):\n#{File.read(File.join(@dir, "wrk.out"))}" unless status.success?

      sample(h, router_port, @load_seconds, "after load")
      @summary = JSON.parse(File.read(File.join(@dir, "summary.json")))
      h.stop_all
      File.write(run_file, JSON.generate("seconds" => @seconds, "capacity" => @capacity, "interval" => @interval, "warmup" => @warmup,
                                         "load_seconds" => @load_seconds, "samples" => @samples, "summary" => @summary))
      conclude
    end

    # Judges the samples of an earlier run again (its run.json).
    def reanalyze
      path = run_file
      raise HarnessError, "#{path} is missing: not the work directory of a finished run" unless File.exist?(path)

      run = JSON.parse(File.read(path))
      @seconds, @capacity, @interval, @warmup, @load_seconds, @samples, @summary =
        run.values_at("seconds", "capacity", "interval", "warmup", "load_seconds", "samples", "summary")
      conclude
    end

    private

    def run_file = File.join(@dir, "run.json")

    def conclude
      report = analyze
      print_report(report)
      Faults.conclude(report, json: @json, name: "soak.json", dir: @dir, keep: @keep)
    end

    def sample(h, _port, at, phase)
      status = File.read("/proc/#{@router_pid}/status")
      rss = status[/^VmRSS:\s+(\d+) kB/, 1].to_i
      fds = Dir.children("/proc/#{@router_pid}/fd").size
      metrics = Harness.parse_metrics(h.get_text(h.internal_port, "/-/cells-router/metrics", timeout: 10))
      s = { "t" => at.round(1), "phase" => phase, "rss_kib" => rss, "fds" => fds,
            "entries" => Harness.metric_sum(metrics, "cells_router_cache_entries").to_i,
            "hits" => Harness.metric_sum(metrics, "cells_router_cache_lookups_total", "result" => "hit").to_i,
            "misses" => Harness.metric_sum(metrics, "cells_router_cache_lookups_total", "result" => "miss").to_i,
            "requests" => Harness.metric_sum(metrics, "cells_router_requests_total").to_i }
      @samples << s
      h.progress(format("t=%6.1f s  rss %7.1f MiB  fds %4d  entries %6d  requests %9d", s["t"], rss / 1024.0, fds,
                        s["entries"], s["requests"]))
    rescue Errno::ENOENT, Errno::ESRCH
      raise HarnessError, "the router (pid #{@router_pid}) is gone; its log:\n#{h.last_lines(h.children["router"].log)}"
    end

    def analyze
      load = @samples.select { |s| s["phase"] == "load" }
      # The baseline: the first sample after the warm-up once the cache is (nearly) full, so that
      # filling the cache up to its capacity does not count as growth.
      after_warmup = load.select { |s| s["t"] >= @warmup - 1e-6 }
      warm = after_warmup.find { |s| s["entries"] >= @capacity * SATURATED } || after_warmup.first || load.first || @samples.first
      last = load.last || @samples.last
      max_entries = @samples.map { |s| s["entries"] }.max
      mem_bound = ((warm["rss_kib"] * MEM_FACTOR) + MEM_SLACK_KIB).round
      fd_bound = ((warm["fds"] * FD_FACTOR) + FD_SLACK).round
      after = @samples.last
      statuses = @summary["statuses"]
      non2xx = statuses.reject { |code, _| code.start_with?("2") }.values.sum
      errors = @summary["errors"].slice("connect", "read", "write", "timeout")
      hits = after["hits"]
      misses = after["misses"]
      checks = [
        check("memory flat", last["rss_kib"] <= mem_bound,
              "end #{kib(last["rss_kib"])} <= #{kib(warm["rss_kib"])} x #{MEM_FACTOR} + 5 MiB = #{kib(mem_bound)}"),
        check("file descriptors flat", last["fds"] <= fd_bound, "end #{last["fds"]} <= #{warm["fds"]} x #{FD_FACTOR} + #{FD_SLACK} = #{fd_bound}"),
        check("cache within capacity", max_entries <= @capacity, "max #{max_entries} <= #{@capacity}"),
        check("every request answered 2xx", non2xx.zero? && errors.values.all?(&:zero?),
              "statuses #{statuses.inspect}, socket errors #{errors.inspect}")
      ]
      {
        "script" => "soak", "seconds" => @seconds, "load_seconds" => @load_seconds&.round(1), "capacity" => @capacity,
        "interval_s" => @interval, "warmup_s" => @warmup,
        "wrk" => { "threads" => THREADS, "connections" => CONNECTIONS }.merge(@summary.slice("requests", "sent", "unique", "errors", "statuses", "latency_ms")),
        "cache" => { "hits" => hits, "misses" => misses, "hit_ratio" => (hits.to_f / [hits + misses, 1].max).round(3),
                     "max_entries" => max_entries, "saturated" => max_entries >= (@capacity * SATURATED) },
        "start" => warm, "end" => last, "after_load" => after,
        "bounds" => { "rss_kib" => mem_bound, "fds" => fd_bound, "entries" => @capacity },
        "samples" => @samples, "checks" => checks,
        "verdict" => checks.all? { |c| c["ok"] } ? "pass" : "fail", "work_dir" => @dir
      }
    end

    def check(...) = Faults.check(...)

    def kib(v) = format("%.1f MiB", v / 1024.0)

    def print_report(r)
      puts
      puts "soak: #{r["load_seconds"]} s of load, capacity #{r["capacity"]}, wrk #{THREADS} threads #{CONNECTIONS} connections"
      puts format("  %8s  %-10s  %10s  %5s  %8s  %10s", "t (s)", "phase", "RSS (MiB)", "fds", "entries", "requests")
      r["samples"].each do |s|
        mark = if s.equal?(r["start"])
                 "  <- start (after warm-up)"
               else
                 (s.equal?(r["end"]) ? "  <- end" : "")
               end
        puts format("  %8.1f  %-10s  %10.1f  %5d  %8d  %10d%s", s["t"], s["phase"], s["rss_kib"] / 1024.0, s["fds"], s["entries"],
                    s["requests"], mark)
      end
      w = r["wrk"]
      puts "  requests #{w["requests"]} (sent #{w["sent"]}, #{w["unique"]} to never-seen paths), statuses #{w["statuses"].inspect}, " \
           "cache hit ratio #{r["cache"]["hit_ratio"]}, max entries #{r["cache"]["max_entries"]}#{r["cache"]["saturated"] ? " (saturated)" : ""}"
      r["checks"].each { |c| puts "  [#{c["ok"] ? "ok" : "FAIL"}] #{c["name"]}: #{c["detail"]}" }
      puts "verdict: #{r["verdict"].upcase}#{r["verdict"] == "pass" ? "" : " (work directory kept: #{@dir})"}"
    end
  end
end
