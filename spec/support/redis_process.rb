# frozen_string_literal: true

require "socket"
require "tmpdir"
require_relative "../../support/loopback"

# A real redis-server on a free loopback port with its own temporary directory, for specs of
# the routers' shared cache and purges. script/bootstrap installs it (Debian's redis-server).
class RedisProcess
  attr_reader :port

  def self.available?
    system("redis-server", "--version", out: File::NULL, err: File::NULL)
  end

  def initialize
    @dir = Dir.mktmpdir("cells-redis")
    @port = Loopback.free_port
    @pid = Process.spawn("redis-server", "--bind", "127.0.0.1", "--port", @port.to_s, "--save", "", "--appendonly", "no",
                         "--dir", @dir, out: File::NULL, err: File::NULL)
    wait_ready
  end

  def url
    "redis://127.0.0.1:#{@port}"
  end

  def stop
    return unless @pid

    Process.kill("TERM", @pid)
    Process.wait(@pid)
    @pid = nil
    FileUtils.rm_rf(@dir)
  end

  private

  def wait_ready
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 10
    loop do
      TCPSocket.new("127.0.0.1", @port).close
      return
    rescue SystemCallError
      raise "redis-server did not listen on #{@port} within 10 s" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

      sleep 0.02
    end
  end
end
