# frozen_string_literal: true

# Issue 14 items 3, 5, 6 and 7 (last bullet) end to end: target/release/cells-router in front of
# Puma cells running the gem (spec/support/e2e_cells/config.ru), and a cell that never answers.
#   - a cell outage: the killed cell's entries stay, its requests get a fast 503 with Retry-After,
#     at most one learn request per prefix, and it serves within a probe interval of coming back;
#   - health and metrics on the internal listener only;
#   - a client that goes away while its cell works: one access line with 499, and its count.

require "spec_helper"
require "tmpdir"
require "fileutils"
require "socket"

RSpec.describe "cells-router in a cell outage", :e2e do
  owners = { "alpha" => "cell_a", "kilo" => "cell_k", "hotel" => "cell_h" }.freeze

  before(:all) do
    raise "#{E2E::ROUTER_BIN} is missing: build it first (`cargo build --release -p cells-router`)" unless File.executable?(E2E::ROUTER_BIN)

    @dir = Dir.mktmpdir("cells-outage")
    @router_bin = File.join(@dir, "cells-router")
    FileUtils.cp(E2E::ROUTER_BIN, @router_bin, preserve: true)
    env = { "E2E_CELLS" => owners.values.uniq.join(","), "E2E_DEFAULT" => "cell_a", "E2E_OWNERS" => owners.map { |k, v| "#{k}=#{v}" }.join(",") }
    cell = ->(name) { E2E::Cell.new(name: name, port: E2E.free_port, log: File.join(@dir, "#{name}.log"), env: env) }
    @a = cell.call("cell_a")
    @k = cell.call("cell_k")
    @hang = E2E::HangServer.new(name: "cell_h", port: E2E.free_port, log: File.join(@dir, "cell_h.log"))
    [@a, @k, @hang].each(&:start)
    [@a, @k, @hang].each(&:wait_until_ready)
    [@a, @k].each(&:warm_up)
  end

  after(:all) do
    E2E.stop_all
    FileUtils.rm_rf(@dir) if @dir
  end

  before { @routers = [] }

  after { @routers.each(&:stop) }

  def start_router(name, cells, **opts)
    router = E2E::Router.new(name: name, port: E2E.free_port, log: File.join(@dir, "#{name}.log"), cells: cells,
                             default_cell: "cell_a", dir: @dir, bin: @router_bin, **opts)
    @routers << router
    router.start.wait_until_ready
  end

  def logs(router)
    "\n  #{router.name} log:\n#{router.tail(12)}"
  end

  it "keeps the dead cell's entries, answers its requests at once with one learn per prefix, and serves within a probe interval of its restart" do
    router = start_router("router_outage", [@a, @k], breaker: { "probe_interval" => "200ms", "relearn_interval" => "30s" })
    projects = (0...4).map { |i| "/kilo/p#{i}" }
    projects.each do |p|
      resp = router.get("#{p}/-/issues")
      expect([resp.status, resp["x-served-by"]]).to eq([200, "cell_k"]), "#{p}: #{resp.describe}#{logs(router)}"
    end
    entries = router.metric("cells_router_cache_entries")

    @k.kill!
    learns_before = @a.learns.size
    started = E2E.now
    statuses = Hash.new(0)
    40.times do |i|
      resp = router.get("#{projects[i % 4]}/-/merge_requests/#{i}")
      statuses[resp.status] += 1
      next unless resp.status == 503

      expect(resp.json).to include("error" => "cell_unavailable")
      expect(resp["retry-after"]).to eq("1")
    end
    elapsed = E2E.now - started
    expect(statuses).to eq(502 => 1, 503 => 39), "#{statuses}#{logs(router)}"
    learns = @a.learns.size - learns_before
    expect(learns).to be_between(1, 4), "#{learns} learn requests for 4 prefixes during the outage"
    expect(elapsed).to be < 5, "40 requests for the dead cell took #{elapsed} s"
    expect(router.metric("cells_router_cache_entries")).to eq(entries)
    health = router.internal_get("/-/cells-router/health").json
    expect(health["cells"]).to include(include("name" => "cell_k", "breaker" => a_string_matching(/open/), "healthy" => false))

    @k.start.wait_until_ready
    ready = E2E.now
    resp = nil
    loop do
      resp = router.get("/kilo/p1/-/issues", headers: { "X-Request-Id" => "first-after-restart" })
      break unless resp.status == 503 && E2E.now - ready < 5
    end
    served_after = E2E.now - ready
    expect([resp.status, resp["x-served-by"], resp.trace["cache"]]).to eq([200, "cell_k", "hit"]), "#{resp.describe}#{logs(router)}"
    expect(served_after).to be < 1.0, "first request served #{served_after} s after the cell answered (probe interval 200 ms)"
    expect(@k.learns).to be_empty
    expect(router.metric("cells_router_cell_breaker_transitions_total", cell: "cell_k", to: "closed")).to eq(1)
    expect(router.internal_get("/-/cells-router/health").json["cells"]).to include(include("name" => "cell_k", "breaker" => "closed", "healthy" => true))
  end

  it "serves health and metrics on the internal listener only, and never forwards /-/cells-router/ paths" do
    router = start_router("router_internal", [@a])
    pages_before = @a.pages.size
    %w[/-/cells-router/health /-/cells-router/metrics /-/cells-router/anything].each do |path|
      resp = router.get(path)
      expect([resp.status, resp.json["error"]]).to eq([404, "not_found"]), "#{path}: #{resp.describe}"
    end
    expect(@a.pages.size).to eq(pages_before)
    health = router.internal_get("/-/cells-router/health")
    expect(health.status).to eq(200)
    expect(health.json).to include("router" => "router_internal", "cells" => [include("name" => "cell_a", "breaker" => "closed")])
    expect(router.internal_get("/-/cells-router/metrics").body).to include("cells_router_requests_total")
    expect(router.metric("cells_router_requests_total", cell: "none", status: "404")).to eq(3)
  end

  it "logs and counts a request whose client went away while its cell was working, as 499" do
    router = start_router("router_499", [@a, @hang], timeouts: { "learn" => "500ms", "request" => "30s" })
    # The learn answer for /hotel names cell_h, which reads the request and never answers.
    sock = TCPSocket.new("127.0.0.1", router.port)
    sock.write("GET /hotel/project/-/issues HTTP/1.1\r\nHost: x\r\n\r\n")
    deadline = E2E.now + 10
    sleep 0.02 until File.read(@hang.log).include?("/hotel/project/-/issues") || E2E.now > deadline
    expect(File.read(@hang.log)).to include("/hotel/project/-/issues"), "the request never reached cell_h#{logs(router)}"
    sock.close
    line = nil
    until line || E2E.now > deadline
      line = File.foreach(router.log).map do |l|
               JSON.parse(l)
      rescue StandardError
        nil
             end.compact
                 .find { |l| l["target"] == "cells_router::access" && l["path"] == "/hotel/project/-/issues" }
      sleep 0.02 unless line
    end
    expect(line).not_to be_nil, "no access line for the abandoned request#{logs(router)}"
    expect(line).to include("status" => 499, "cell" => "cell_h")
    expect(line["error"]).to include("closed")
    expect(router.metric("cells_router_requests_total", cell: "cell_h", status: "499")).to eq(1)
  end
end
