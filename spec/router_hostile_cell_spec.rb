# frozen_string_literal: true

require "spec_helper"
require "tmpdir"
require "fileutils"

# Issue 14, items 2 and 4, with real processes: Puma cells running the gem (spec/support/e2e_cells/config.ru)
# behind target/release/cells-router.
#
# - A hostile cell among three honest ones answers learn requests claiming `/`, route families
#   (`/api/v4/projects`, `/users`, `/-`, ...) and others' namespaces for itself, and tags every page it
#   serves with cache headers claiming the same: no request meant for an honest cell's namespace may
#   reach it, and no route cache entry covering one may point at it.
# - The learn endpoint is private: the router's learn requests carry the token (the cells check it, so
#   every learn that works proves it), clients asking the router for the learn path get 404 and no cell
#   sees them, and a cell asked directly without the token answers 401.
RSpec.describe "cells-router with a hostile cell and a private learn endpoint", :e2e do
  owners = { "alpha" => "cell_a", "bravo" => "cell_b", "charlie" => "cell_c", "hotel" => "cell_h" }.freeze

  before(:all) do
    raise "#{E2E::ROUTER_BIN} is missing: build it first (`cargo build --release -p cells-router`)" unless File.executable?(E2E::ROUTER_BIN)

    @dir = Dir.mktmpdir("cells-e2e-hostile")
    bin = File.join(@dir, "cells-router")
    FileUtils.cp(E2E::ROUTER_BIN, bin, preserve: true)
    env = { "E2E_CELLS" => owners.values.join(","), "E2E_DEFAULT" => "cell_a", "E2E_OWNERS" => owners.map { |k, v| "#{k}=#{v}" }.join(",") }
    cell = ->(name, extra = {}) { E2E::Cell.new(name: name, port: E2E.free_port, log: File.join(@dir, "#{name}.log"), env: env.merge(extra)) }
    @cells = %w[cell_a cell_b cell_c].to_h { |n| [n, cell.call(n)] }
    @hostile = cell.call("cell_h", "E2E_LEARN" => "hostile")
    all = [*@cells.values, @hostile]
    all.each(&:start)
    all.each(&:wait_until_ready)
    # Short TTL: entries expire during the run and are learned again, so the hostile cell keeps being asked.
    @router = E2E::Router.new(name: "router_hostile", port: E2E.free_port, log: File.join(@dir, "router.log"), cells: all,
                              default_cell: "cell_a", dir: @dir, bin: bin, cache: { "ttl" => "1s" })
    @router.start.wait_until_ready
  end

  after(:all) do
    E2E.stop_all
    FileUtils.rm_rf(@dir) if @dir
  end

  def logs
    "\nrouter log:\n#{@router.tail(15)}"
  end

  it "never serves a request meant for an honest cell's namespace from the hostile cell" do
    honest_paths = lambda do |i|
      ["/alpha/p#{i}/-/issues", "/bravo/p#{i}/-/tree/main", "/charlie/p#{i}", "/groups/bravo/-/epics", "/alpha/p#{i}/-/merge_requests/#{i}"]
    end
    hostile_served = 0
    checked = 0
    # The router sends a cell whose answer it refused to the back of the queue for 5 s: run for 16 s,
    # so that the hostile cell is asked first again several times.
    until_t = E2E.now + 16
    round = 0
    while E2E.now < until_t && round < 400
      honest_paths.call(round).each do |path|
        resp = @router.get(path)
        owner = owners.fetch(path.sub(%r{\A/groups/}, "/").split("/")[1])
        expect([resp.status, resp["x-served-by"]]).to eq([200, owner]), "#{path}: #{resp.describe}#{logs}"
        checked += 1
      end
      # Requests that reach the hostile cell, so that its cache headers are read.
      resp = @router.get("/hotel/p#{round}/-/issues")
      hostile_served += 1 if resp["x-served-by"] == "cell_h"
      sleep 1.1 if (round % 10) == 9 # past the TTL: learned again
      round += 1
    end
    expect(checked).to be >= 150
    expect(hostile_served).to be > 0
    expect(@hostile.learns.size).to be >= 3, "the hostile cell was asked #{@hostile.learns.size} times"
    # Nothing was served by the hostile cell but its own namespace.
    stray = @hostile.pages.reject { |r| r["path"].start_with?("/hotel") }
    expect(stray).to eq([])
    expect(@router.metric("cells_router_rejected_answers_total", origin: "header")).to be > 10
  end

  it "learns with the token: every cell's learn endpoint checks it, and the router's learns succeed" do
    expect(@router.get("/charlie/token-check").then { |r| [r.status, r["x-served-by"]] }).to eq([200, "cell_c"])
    learned = @cells.values.flat_map(&:learns).select { |r| r["path_info"] == "/charlie/token-check" }
    expect(learned).not_to be_empty
    expect(learned.map { |r| r["status"] }.uniq).to eq([200])
    expect(File.read(@router.log)).not_to include(E2E::LEARN_TOKEN)
  end

  it "answers 404 to clients asking for the learn path, and no cell sees the request" do
    before_counts = @cells.values.sum { |c| c.records.size } + @hostile.records.size
    ["/api/v4/cells/learn", "/api/v4/cells/learn.json", "/api/v4/cells/learn/", "/api/v4/cells/%6Cearn", "/api/v4/cells/learn/x"].each do |path|
      resp = @router.get("#{path}?method=GET&path_info=%2Fbravo%2Fsecret", headers: { "X-Gitlab-Cell-Learn-Token" => E2E::LEARN_TOKEN })
      expect(resp.status).to eq(404), "#{path}: #{resp.describe}"
      expect(resp.json).to include("error" => "not_found")
    end
    after_counts = @cells.values.sum { |c| c.records.size } + @hostile.records.size
    expect(after_counts).to eq(before_counts)
  end

  it "gets 401 from a cell asked directly without the token, 200 with it" do
    cell = @cells.fetch("cell_b")
    query = "#{E2E::LEARN_PATH}?method=GET&path_info=%2Fbravo%2Fx"
    resp = cell.get(query)
    expect(resp.status).to eq(401)
    expect(resp.json).to eq("error" => "unauthorized", "message" => "the learn endpoint needs a valid X-Gitlab-Cell-Learn-Token header")
    expect(cell.get(query, headers: { "X-Gitlab-Cell-Learn-Token" => "wrong" }).status).to eq(401)
    resp = cell.get(query, headers: { "X-Gitlab-Cell-Learn-Token" => E2E::LEARN_TOKEN })
    expect([resp.status, resp.json["cell"]]).to eq([200, "cell_b"])
  end
end
