# frozen_string_literal: true

require "socket"

# The end-to-end specs start many cells and routers on ports from Loopback; two children told the
# same port once sent a router's requests for one cell to another (stop 23's CI failure: the cell
# that lost the bind race never answered, the one that won answered for both).
RSpec.describe "Loopback ports and readiness" do
  it "never hands out a port twice in one process" do
    ports = Loopback.free_ports(20) + Array.new(300) { Loopback.free_port }
    expect(ports.uniq.size).to eq(ports.size)
    expect(ports).to all(be_between(1, 65_535))
  end

  describe "Processes.http_ok?" do
    # A one-request-at-a-time HTTP server naming itself in X-Served-By.
    def serve(name)
      server = TCPServer.new("127.0.0.1", 0)
      thread = Thread.new do
        loop do
          client = server.accept
          nil while (line = client.gets) && line != "\r\n"
          client.write("HTTP/1.1 200 OK\r\nX-Served-By: #{name}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
          client.close
        end
      rescue IOError, SystemCallError
        nil
      end
      yield server.addr[1]
    ensure
      server&.close
      thread&.kill
    end

    it "accepts a health answer from the expected cell only" do
      serve("cell_b") do |port|
        expect(Processes.http_ok?(port, "/-/health")).to be(true)
        expect(Processes.http_ok?(port, "/-/health", served_by: "cell_b")).to be(true)
        expect(Processes.http_ok?(port, "/-/health", served_by: "cell_k")).to be(false)
      end
    end
  end
end
