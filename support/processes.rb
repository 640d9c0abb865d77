# frozen_string_literal: true

require "json"
require "net/http"
require "rbconfig"
require_relative "loopback"

# Real processes on loopback, shared by the demo (demo/topology.rb), the fault scripts
# (benches/faults/harness.rb) and the end-to-end specs (spec/support/e2e_processes.rb): a Puma
# cell's or a router's command line, the router's TOML, and a child process that runs in its own
# process group (so a signal reaches Puma's workers too), is waited for until it answers, and is
# stopped TERM first, KILL when it lingers.
module Processes
  ROOT = File.expand_path("..", __dir__)
  # The router binary every real-process check runs: CELLS_ROUTER when set (script/test points it
  # at the profile-guided build the router ships as, script/build-router-pgo), else cargo's
  # release build.
  ROUTER_BIN = ENV.fetch("CELLS_ROUTER") { File.join(ROOT, "target", "release", "cells-router") }

  # A child that could not start or be stopped.
  class Error < StandardError; end

  module_function

  def now
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end

  # The command line of a Puma process serving `rackup` on 127.0.0.1:port.
  # @param threads [String] Puma's -t, e.g. "4:8"
  def puma(port:, rackup:, threads:, tag:)
    [RbConfig.ruby, Gem.bin_path("puma", "puma"), "--no-config", "-e", "production", "-b", "tcp://127.0.0.1:#{port}",
     "-t", threads, "--tag", tag, rackup]
  end

  # Whether GET path on 127.0.0.1:port answers 200 (a cell's or a router's health check) and,
  # given served_by, whether X-Served-By names that cell: a port some other process holds
  # answers too, and must not pass for the child that failed to bind it.
  def http_ok?(port, path, served_by: nil)
    Net::HTTP.start("127.0.0.1", port, open_timeout: 0.5, read_timeout: 2) do |h|
      resp = h.get(path)
      resp.code == "200" && (served_by.nil? || resp["x-served-by"] == served_by)
    end
  rescue SystemCallError, IOError, Net::OpenTimeout, Net::ReadTimeout
    false
  end

  # A cells-router configuration: top-level settings, then one table per section, then one
  # [[cells]] per cell. Strings are written as TOML basic strings (JSON's escapes are TOML's);
  # a nil setting is left out.
  # @param settings [Hash{String=>Object}]
  # @param sections [Hash{String=>Hash}] e.g. "cache" => { "ttl" => "60s" }
  # @param cells [Array<Array(String, String)>] name and URL of each cell, in order
  def router_toml(settings, sections, cells)
    line = ->((key, value)) { "#{key} = #{value.is_a?(String) ? JSON.generate(value) : value}\n" unless value.nil? }
    toml = settings.map(&line).join
    sections.each { |name, values| toml << "\n[#{name}]\n" << values.map(&line).join }
    cells.each { |name, url| toml << "\n[[cells]]\nname = #{JSON.generate(name)}\nurl = #{JSON.generate(url)}\n" }
    toml
  end

  # Stops children together: TERM to every one, then KILL to those still running after timeout.
  def stop_all(children, timeout:)
    live = children.select(&:running?)
    live.each { |c| c.signal("TERM") }
    deadline = now + timeout
    live.each { |c| c.wait_exit([deadline - now, 0].max) }
    live.each(&:kill_and_reap)
  end

  # A process in its own process group, its output appended to `log`.
  class Child
    attr_reader :name, :port, :log, :pid, :status

    # @param error [Class] what #wait_until_ready raises (each caller's own error class)
    def initialize(name:, port:, log:, error: Error)
      @name = name
      @port = port
      @log = log
      @error = error
    end

    # @param truncate [Boolean] start the log afresh instead of appending to it
    def spawn(env, cmd, truncate: false)
      raise @error, "#{name} is already running (pid #{pid})" if running?

      @status = nil
      @pid = Process.spawn(env, *cmd, chdir: ROOT, pgroup: true, in: File::NULL, out: [log, truncate ? "w" : "a"], err: [log, "a"])
      self
    end

    # Reaps the child if it exited (keeping its Process::Status).
    def running?
      return false unless @pid

      got = Process.waitpid2(@pid, Process::WNOHANG)
      return true unless got

      @pid = nil
      @status = got[1]
      false
    rescue Errno::ECHILD
      @pid = nil
      false
    end

    # Signals the whole process group.
    def signal(sig)
      Process.kill(sig, -@pid) if @pid
    rescue Errno::ESRCH, Errno::EPERM
      nil
    end

    # Waits up to timeout seconds for the child to exit by itself. @return [Boolean] whether it did
    def wait_exit(timeout)
      deadline = Processes.now + timeout
      loop do
        return true unless running?
        return false if Processes.now > deadline

        sleep 0.02
      end
    end

    # SIGKILL to the group, if the child still runs, and reaped.
    def kill_and_reap
      return unless running?

      signal("KILL")
      begin
        _, @status = Process.waitpid2(@pid)
      rescue Errno::ECHILD
        nil
      end
      @pid = nil
    end

    # TERM, then KILL after timeout. Idempotent.
    def stop(timeout:)
      return unless running?

      signal("TERM")
      kill_and_reap unless wait_exit(timeout)
    end

    def tail(lines = 20, indent: "    ")
      return "(no log)" unless log && File.exist?(log)

      File.readlines(log).last(lines).map { |l| "#{indent}#{l}" }.join
    end

    # Waits until the block (by default #ready?) holds, raising the caller's error with the log's
    # tail if the child exits or the time runs out.
    def wait_until_ready(timeout:, what: "ready on 127.0.0.1:#{port}", &ready)
      ready ||= method(:ready?)
      deadline = Processes.now + timeout
      until ready.call
        raise @error, "#{name} exited at start (#{@status}); #{log}:\n#{tail}" unless running?
        raise @error, "#{name} was not #{what} within #{timeout}s; #{log}:\n#{tail}" if Processes.now > deadline

        sleep 0.05
      end
      self
    end
  end
end
