# frozen_string_literal: true

require "json"
require "net/http"
require "open3"
require "rbconfig"
require_relative "../../support/loopback"

# The GitLab-shaped application of spec/rails_app, run as the monolith runs: its database set up
# by a script inside the booted application, then served by a real Puma process (single mode,
# several threads) on a free loopback port. #stop (or exit) ends the process.
class RailsAppServer
  APP_ROOT = File.expand_path("../rails_app", __dir__)
  LIB = File.expand_path("../../lib", __dir__)
  BOOT_TIMEOUT = 90

  class Error < StandardError; end

  attr_reader :port

  # @param dir [String] a scratch directory for the SQLite database and the logs
  # @param threads [Integer] Puma threads
  def initialize(dir, threads: 4)
    @dir = dir
    @threads = threads
    @env = {
      "RUBYLIB" => LIB, "RAILS_ENV" => "production",
      "CELLS_APP_DB" => File.join(dir, "cells_app.sqlite3"), "CELLS_APP_LOG" => File.join(dir, "rails.log")
    }
  end

  # Creates the schema and inserts `rows` (see spec/rails_app/db/setup.rb).
  def load_rows(rows)
    path = File.join(@dir, "rows.json")
    File.write(path, JSON.generate(rows))
    setup("load", path)
  end

  # Deletes the groups, users and projects at these full paths while the server runs.
  def delete_rows(full_paths)
    setup("delete", *full_paths)
  end

  def start
    @port = Loopback.free_port
    @out = File.join(@dir, "puma.out")
    @pid = Process.spawn(@env.merge("PORT" => @port.to_s, "PUMA_THREADS" => @threads.to_s),
                         RbConfig.ruby, Gem.bin_path("puma", "puma"), "-C", "config/puma.rb", "config.ru",
                         chdir: APP_ROOT, out: @out, err: @out, pgroup: true)
    at_exit { stop }
    wait_until_serving
    self
  end

  def stop
    return unless @pid

    pid = @pid
    @pid = nil
    Process.kill("TERM", -pid)
    Process.wait(pid)
  rescue Errno::ESRCH, Errno::ECHILD
    nil
  end

  def log
    File.exist?(@out.to_s) ? File.read(@out) : ""
  end

  private

  def setup(*args)
    out, status = Open3.capture2e(@env, RbConfig.ruby, "db/setup.rb", *args, chdir: APP_ROOT)
    raise Error, "db/setup.rb #{args.first} failed (#{status.exitstatus}):\n#{out}" unless status.success?
  end

  def wait_until_serving
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + BOOT_TIMEOUT
    loop do
      raise Error, "Puma exited while booting:\n#{log}" if Process.waitpid(@pid, Process::WNOHANG)
      return if Loopback.port_open?(@port)
      raise Error, "Puma did not listen on #{@port} within #{BOOT_TIMEOUT} s:\n#{log}" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

      sleep 0.2
    end
  end
end
