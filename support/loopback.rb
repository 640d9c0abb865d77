# frozen_string_literal: true

require "socket"

# Loopback ports for the demo, the end-to-end specs and the load scripts, which all start cells
# and routers as real processes on 127.0.0.1.
module Loopback
  module_function

  # Ports that were free a moment ago: the kernel picks them, all at once so they differ.
  # @return [Array<Integer>]
  def free_ports(count)
    servers = Array.new(count) { TCPServer.new("127.0.0.1", 0) }
    servers.map { |s| s.addr[1] }
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
