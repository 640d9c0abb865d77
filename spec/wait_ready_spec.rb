# frozen_string_literal: true

require "open3"
require "socket"

# support/wait-ready.sh, which script/bench-router, script/build-router-pgo,
# script/redis-kill-figure and script/router-instructions share: it waits for a server just started
# to answer with a 2xx, and otherwise says why it stopped waiting (the process died, the time ran
# out, the last status) for the caller's one-line failure.
RSpec.describe "support/wait-ready.sh" do
  helper = File.join(REPO_ROOT, "support", "wait-ready.sh")

  # A loopback server answering every request with `status` (after `delay` seconds), in a thread.
  def serve(status, delay: 0)
    server = TCPServer.new("127.0.0.1", 0)
    thread = Thread.new do
      loop do
        client = server.accept
        sleep delay
        client.readpartial(4096)
        client.write("HTTP/1.1 #{status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        client.close
      rescue IOError, SystemCallError
        break if server.closed?
      end
    end
    yield "http://127.0.0.1:#{server.addr[1]}/ready"
  ensure
    server&.close
    thread&.kill
  end

  # Runs `wait_ready URL [PID]` in bash with `env`; returns [status, WAIT_READY_WHY, seconds taken].
  def wait_ready(helper, *args, env: {})
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    out, err, status = Open3.capture3(env, "bash", "-c", '. "$0"; wait_ready "$@"; s=$?; echo "$WAIT_READY_WHY"; exit $s',
                                      helper, *args)
    expect(err).to eq("")
    [status.exitstatus, out.chomp, Process.clock_gettime(Process::CLOCK_MONOTONIC) - started]
  end

  it "returns 0 once the server answers with a 2xx, whatever 2xx" do
    %w[200 204].each do |code|
      serve(code) do |url|
        status, why, = wait_ready(helper, url, Process.pid.to_s)
        expect([status, why]).to eq([0, ""])
      end
    end
  end

  it "waits for a server that answers only later" do
    serve(200, delay: 0.5) do |url|
      status, _, took = wait_ready(helper, url, env: { "WAIT_READY_SECONDS" => "5" })
      expect(status).to eq(0)
      expect(took).to be >= 0.5
    end
  end

  it "gives up after WAIT_READY_SECONDS on a server that answers but not with a 2xx, naming its status" do
    serve(503) do |url|
      status, why, took = wait_ready(helper, url, env: { "WAIT_READY_SECONDS" => "1" })
      expect(status).to eq(1)
      expect(why).to eq("#{url} did not answer with a 2xx within 1 s (last status: 503)")
      expect(took).to be_between(0.9, 5)
    end
  end

  it "says when nothing answered at all" do
    port = Loopback.free_port
    status, why, = wait_ready(helper, "http://127.0.0.1:#{port}/", env: { "WAIT_READY_SECONDS" => "1" })
    expect(status).to eq(1)
    expect(why).to eq("http://127.0.0.1:#{port}/ did not answer with a 2xx within 1 s (last status: none)")
  end

  it "stops at once, saying so, when the process it waits for has exited" do
    dead = Process.spawn("true")
    Process.wait(dead)
    port = Loopback.free_port
    status, why, took = wait_ready(helper, "http://127.0.0.1:#{port}/", dead.to_s, env: { "WAIT_READY_SECONDS" => "10" })
    expect(status).to eq(1)
    expect(why).to eq("the process for http://127.0.0.1:#{port}/ (pid #{dead}) exited before it answered")
    expect(took).to be < 5
  end

  it "refuses a WAIT_READY_SECONDS that is not a whole number of seconds" do
    %w[0 1.5 ten].each do |seconds|
      status, why, = wait_ready(helper, "http://127.0.0.1:1/", env: { "WAIT_READY_SECONDS" => seconds })
      expect(status).to eq(1)
      expect(why).to eq("WAIT_READY_SECONDS must be a whole number of seconds >= 1, not '#{seconds}'")
    end
  end
end
