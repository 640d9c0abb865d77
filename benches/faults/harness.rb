# frozen_string_literal: true

require "fileutils"
require "json"
require "optparse"
require "net/http"
require "rbconfig"
require "socket"
require_relative "ownership"
require_relative "../../support/processes"

module Faults
  ROOT = Processes::ROOT
  ROUTER_BIN = Processes::ROUTER_BIN
  CELL_RU = File.join(ROOT, "benches", "faults", "cell.ru")

  class HarnessError < Processes::Error; end

  module_function

  # The router configuration of both scripts: the cells on loopback, cell_0 the default cell.
  #
  # @param cells [Array<Array(String, Integer)>] name and port of each cell
  # @param internal_port [Integer] the internal listener's port (health and metrics)
  def router_toml(name, port, cells, ttl:, capacity:, internal_port:)
    settings = { "name" => name, "listen" => "127.0.0.1:#{port}", "internal_listen" => "127.0.0.1:#{internal_port}",
                 "default_cell" => "cell_0", "learn_path" => "/api/v4/cells/learn" }
    sections = {
      "cache" => { "ttl" => ttl, "capacity" => capacity, "stale_grace" => "300s" },
      "timeouts" => { "connect" => "1s", "learn" => "2s", "request" => "60s", "shutdown" => "5s" },
      # A down cell is probed on the counting cells' own stats endpoint (not recorded as traffic).
      "breaker" => { "probe" => "http", "probe_path" => "/-/faults/stats", "probe_interval" => "250ms" }
    }
    Processes.router_toml(settings, sections, cells.map { |cell, p| [cell, "http://127.0.0.1:#{p}"] })
  end

  # One line of a verdict.
  def check(name, ok, detail)
    { "name" => name, "ok" => ok ? true : false, "detail" => detail }
  end

  # Writes a report as JSON to path, or to path/default_name when path is a directory.
  def write_figures(path, default_name, report)
    return unless path

    path = File.join(path, default_name) if File.directory?(path)
    FileUtils.mkdir_p(File.dirname(path))
    File.write(path, JSON.pretty_generate(report))
    puts "figures: #{path}"
  end

  # Writes the figures and removes the work directory of a passing run unless it is to be kept.
  # @return [Integer] the exit status: 0 pass, 1 fail
  def conclude(report, json:, name:, dir:, keep:)
    write_figures(json, name, report)
    passed = report["verdict"] == "pass"
    FileUtils.rm_rf(dir) if passed && !keep
    passed ? 0 : 1
  end

  # Runs a script's main: its exit status, 2 for bad arguments, 3 when it could not run.
  def script_main(name)
    yield
  rescue OptionParser::ParseError => e
    warn "#{name}: #{e.message}"
    2
  rescue HarnessError => e
    warn "#{name}: #{e.message}"
    3
  end

  # Starts, restarts and stops the counting cells, the router and wrk on 127.0.0.1, each in its own
  # process group (support/processes.rb, shared with the demo and the end-to-end specs), and cleans
  # every one of them up on exit, SIGINT, SIGTERM or an exception.
  class Harness
    # A child with the command it was started with, to start it again the same way.
    class Child < Processes::Child
      attr_reader :kind, :env, :cmd

      def initialize(name:, kind:, port:, log:)
        super(name: name, port: port, log: log, error: HarnessError)
        @kind = kind
      end

      def spawn(env, cmd, **opts)
        @env = env
        @cmd = cmd
        super
      end
    end

    START_TIMEOUT = 30

    attr_reader :dir, :children

    # A harness on a fresh work directory, with wrk present and the router built.
    def self.prepare(dir)
      ensure_wrk
      FileUtils.rm_rf(dir)
      harness = new(dir: dir)
      harness.ensure_router
      harness
    end

    # @param dir [String] work directory (logs, configs, id files)
    # @param out [IO] progress lines
    def initialize(dir:, out: $stderr)
      @dir = dir
      @out = out
      @children = {}
      FileUtils.mkdir_p(dir)
      install_cleanup
    end

    def progress(line)
      @out.puts("[#{format("%6.1f", elapsed)}s] #{line}")
      @out.flush
    end

    def elapsed
      @started ||= now
      now - @started
    end

    def now
      Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end

    # Wall clock in milliseconds, the clock the wrk scripts stamp responses with.
    def self.wall_ms
      Process.clock_gettime(Process::CLOCK_REALTIME, :millisecond)
    end

    # Builds the router unless the binary exists.
    def ensure_router
      return ROUTER_BIN if File.executable?(ROUTER_BIN)

      progress("building cells-router (cargo build --release -p cells-router)")
      ok = system("cargo", "build", "--release", "-p", "cells-router", chdir: ROOT, out: :err)
      raise HarnessError, "cargo build --release -p cells-router failed" unless ok && File.executable?(ROUTER_BIN)

      ROUTER_BIN
    end

    def self.ensure_wrk
      return if system("wrk", "-v", out: File::NULL, err: File::NULL) || system("command -v wrk >/dev/null 2>&1")

      raise HarnessError, "wrk is not installed (apt-get install wrk)"
    end

    # @return [Array<Integer>] n distinct free loopback ports
    def free_ports(n)
      Loopback.free_ports(n)
    end

    # Starts the three counting cells and the router (with the TOML router_toml makes).
    # @return [Integer] the router's port
    def start_topology(router_name, ids_log: ->(_cell) {}, log_level: "warn", **cache)
      *cell_ports, router_port, @internal_port = free_ports(CELLS.size + 2)
      CELLS.zip(cell_ports).each { |name, port| start_cell(name, port, ids_log: ids_log.call(name)) }
      config = Faults.router_toml(router_name, router_port, CELLS.zip(cell_ports), internal_port: @internal_port, **cache)
      start_router(router_port, config, log_level: log_level)
      router_port
    end

    # The router's internal listener port (/-/cells-router/health and /metrics), once started.
    attr_reader :internal_port

    # Starts a counting cell; waits until it answers.
    def start_cell(name, port, ids_log: nil, mode: "normal", slow_ms: nil, threads: 8)
      env = { "CELL_NAME" => name, "FAULT_MODE" => mode, "RACK_ENV" => "production", "FAULT_MODE_FILE" => mode_file(name) }
      env["FAULT_LOG"] = ids_log if ids_log
      env["FAULT_SLOW_MS"] = slow_ms.to_s if slow_ms
      cmd = Processes.puma(port: port, rackup: CELL_RU, threads: "#{threads}:#{threads}", tag: "faults-#{name}")
      child = spawn_child(name, :cell, port, env, cmd)
      wait_ready(child, "/-/faults/stats")
      child
    end

    # SIGKILL a child's process group and reap it.
    def kill(name, signal = "KILL")
      child = @children.fetch(name)
      child.signal(signal)
      child.kill_and_reap unless child.wait_exit(5)
    end

    # Starts a killed child again, same command, same port; waits until it answers.
    def restart(name)
      child = @children.fetch(name)
      raise HarnessError, "#{name} is still running (pid #{child.pid})" if child.running?

      spawn_child(name, child.kind, child.port, child.env, child.cmd)
      if child.kind == :cell
        wait_ready(@children[name], "/-/faults/stats")
      else
        wait_ready(@children[name], "/-/cells-router/health", port: @internal_port)
      end
    end

    # @param log_level [String] the router's --log-level (EnvFilter syntax)
    def start_router(port, config, log_level: "warn")
      path = File.join(dir, "router.toml")
      File.write(path, config)
      cmd = [ensure_router, "--config", path, "--log-format", "json", "--log-level", log_level]
      child = spawn_child("router", :router, port, {}, cmd)
      wait_ready(child, "/-/cells-router/health", port: @internal_port)
      child
    end

    # Runs wrk in its own process group; returns its exit status. Output goes to dir/wrk.out.
    def run_wrk(args, timeout:, env: {})
      log = File.join(dir, "wrk.out")
      child = Child.new(name: "wrk", kind: :wrk, port: nil, log: log).spawn(env, ["wrk", *args], truncate: true)
      @children["wrk"] = child
      yield child if block_given?
      status = wait_for(child, timeout)
      raise HarnessError, "wrk did not finish within #{timeout}s" unless status

      status
    end

    # Waits for a child to exit by itself; its Process::Status, or nil when it did not exit within
    # timeout seconds.
    def wait_for(child, timeout)
      child.wait_exit(timeout) ? child.status : nil
    end

    # Whether a child has exited (reaps it and keeps its status).
    def exited?(child)
      !child.running?
    end

    # @return [Hash, nil] parsed JSON of GET path on the child's port
    def get_json(port, path, timeout: 5)
      res = http(port, Net::HTTP::Get.new(path), timeout)
      res.is_a?(Net::HTTPSuccess) ? JSON.parse(res.body) : nil
    end

    def get_text(port, path, timeout: 5)
      res = http(port, Net::HTTP::Get.new(path), timeout)
      raise HarnessError, "GET #{path} on #{port}: #{res.code}" unless res.is_a?(Net::HTTPSuccess)

      res.body
    end

    # Switches a cell's mode through its FAULT_MODE_FILE (atomic rename): the cell picks it up at
    # its next request, even when its threads are all busy (a control request would queue).
    def set_mode(name, mode, slow_ms: nil)
      @children.fetch(name)
      path = mode_file(name)
      File.write("#{path}.tmp", [mode, slow_ms].compact.join(" ") + "\n")
      File.rename("#{path}.tmp", path)
    end

    def mode_file(name) = File.join(dir, "mode-#{name}")

    # OpenMetrics text -> {"name{labels}" => value}
    def self.parse_metrics(text)
      text.each_line.with_object({}) do |line, acc|
        next if line.start_with?("#") || line.strip.empty?

        key, value = line.strip.split(/\s+(?=\S+\z)/, 2)
        number = Float(value, exception: false)
        acc[key] = number if number
      end
    end

    # Sum of every sample of a metric family whose labels include all of `labels`.
    def self.metric_sum(metrics, name, labels = {})
      metrics.sum do |key, value|
        family, rest = key.split("{", 2)
        next 0 unless family == name

        rest ||= ""
        labels.all? { |k, v| rest.include?(%(#{k}="#{v}")) } ? value : 0
      end
    end

    # Stops every child: SIGTERM to each process group, SIGKILL after 5 s.
    def stop_all
      Processes.stop_all(@children.values, timeout: 5)
    end

    def last_lines(path, n = 15)
      return "(no log)" unless path && File.exist?(path)

      File.readlines(path).last(n).join
    end

    private

    def spawn_child(name, kind, port, env, cmd)
      child = Child.new(name: name, kind: kind, port: port, log: File.join(dir, "#{name}.log")).spawn(env, cmd)
      @children[name] = child
      progress("started #{name} (pid #{child.pid}) on 127.0.0.1:#{port}") if port
      child
    end

    def wait_ready(child, path, port: child.port)
      child.wait_until_ready(timeout: START_TIMEOUT, what: "answering #{path}") { Processes.http_ok?(port, path) }
    end

    def http(port, request, timeout)
      Net::HTTP.start("127.0.0.1", port, open_timeout: timeout, read_timeout: timeout) { |h| h.request(request) }
    end

    def install_cleanup
      owner = Process.pid
      at_exit { stop_all if Process.pid == owner }
      %w[INT TERM HUP].each do |sig|
        trap(sig) do
          # Trap context: no Mutex, so just signal the groups; at_exit reaps.
          @children.each_value { |c| c.signal("TERM") }
          exit(128 + Signal.list.fetch(sig))
        end
      end
    end
  end
end
