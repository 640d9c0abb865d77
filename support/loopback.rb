# frozen_string_literal: true

require "socket"

# Loopback ports for the demo, the end-to-end specs and the load scripts, which all start cells
# and routers as real processes on 127.0.0.1.
module Loopback
  @handed_out = {}
  @lock = Mutex.new

  module_function

  # Ports that were free a moment ago: the kernel picks them, all at once so they differ, and
  # none this process handed out before. The kernel may give a port it gave a moment ago once
  # that socket is closed; two children told the same port would then have one of them fail to
  # bind while the other answers for both (a cell's router sent to the wrong cell).
  # @return [Array<Integer>]
  def free_ports(count)
    servers = []
    ports = []
    while ports.size < count
      server = TCPServer.new("127.0.0.1", 0)
      servers << server # held open until all are picked, so the kernel cannot repeat one
      port = server.addr[1]
      ports << port if @lock.synchronize { @handed_out.store(port, true) unless @handed_out.key?(port) }
    end
    ports
  ensure
    servers&.each(&:close)
  end

  # @return [Integer]
  def free_port
    free_ports(1).first
  end

  # Whether something accepts connections on the port.
  def port_open?(port)
    TCPSocket.new("127.0.0.1", port).close
    true
  rescue SystemCallError
    false
  end
end
