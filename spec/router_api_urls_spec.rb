# frozen_string_literal: true

require "spec_helper"
require "tmpdir"
require "fileutils"
require "socket"
require_relative "support/gitlab_documented_api"
require_relative "support/grape_oracle"
require_relative "support/routes_rails_oracle"

# Issue 14, item 1: GitLab's documented REST API URLs (router/tests/data/gitlab_api_urls.txt:
# ids as URL-encoded full paths, `%2F` in file paths, branch and tag names, `@scope%2fpkg`,
# go-gitlab's `%2E`) through target/release/cells-router to Puma cells running the gem, whose
# classifier knows those routes as GitLab declares them (spec/support/gitlab_documented_api.rb,
# extracted with GrapeRoutes) and applies the GitLab rules. Each request must reach the entity's
# cell exactly once, with the very target the client sent, and the learn answer must be cached:
# the second pass is served without a learn request.
RSpec.describe "cells-router: GitLab's documented API URLs through Puma cells", :e2e do
  list = File.join(REPO_ROOT, "router", "tests", "data", "gitlab_api_urls.txt")
  cases = File.readlines(list, chomp: true).reject { |l| l.strip.empty? || l.start_with?("#") }.map do |line|
    fields, doc = line.split("#", 2)
    method, target, owner = fields.split
    { method: method, target: target, owner: owner, doc: doc.to_s.strip }
  end
  owners = { "alpha" => "cell_a", "bravo" => "cell_b", "7" => "cell_a", "5" => "cell_a", "42" => "cell_b", "24" => "cell_b", "9" => "cell_b" }.freeze
  cell_for = ->(owner) { owner == "default" ? "cell_0" : owners.fetch(owner) }

  before(:all) do
    raise "#{E2E::ROUTER_BIN} is missing: build it first (`cargo build --release -p cells-router`)" unless File.executable?(E2E::ROUTER_BIN)

    @dir = Dir.mktmpdir("cells-api-urls")
    bin = File.join(@dir, "cells-router")
    FileUtils.cp(E2E::ROUTER_BIN, bin, preserve: true)
    # The cells' route table: the documented API first (Grape is mounted before the web routes
    # claim anything under /api), then the corpus' GitLab-shaped web routes.
    api = Gitlab::Cells::Learn::GrapeRoutes.extract(GitlabDocumentedApi.build)
    web = JSON.parse(File.read(File.join(CORPUS_DIR, "gitlabish-routes.json")))
    routes = File.join(@dir, "routes.json")
    File.write(routes, JSON.generate((api + web).each_with_index.map { |r, i| r.merge("index" => i) }))
    env = { "E2E_CELLS" => "cell_0,cell_a,cell_b", "E2E_DEFAULT" => "cell_0", "E2E_ROUTES" => routes,
            "E2E_OWNERS" => owners.map { |k, v| "#{k}=#{v}" }.join(",") }
    @cells = %w[cell_0 cell_a cell_b].to_h { |n| [n, E2E::Cell.new(name: n, port: E2E.free_port, log: File.join(@dir, "#{n}.log"), env: env)] }
    @cells.each_value(&:start)
    @cells.each_value(&:wait_until_ready)
    @router = E2E::Router.new(name: "router_api", port: E2E.free_port, log: File.join(@dir, "router.log"), cells: @cells.values,
                              default_cell: "cell_0", dir: @dir, bin: bin)
    @router.start.wait_until_ready
  end

  after(:all) do
    E2E.stop_all
    FileUtils.rm_rf(@dir) if @dir
  end

  # One request on its own connection, the target written byte for byte (Net::HTTP would
  # re-encode nothing, but a raw socket leaves no doubt). @return [Array(Integer, Hash)]
  def raw_request(method, target)
    sock = TCPSocket.new("127.0.0.1", @router.port)
    sock.write("#{method} #{target} HTTP/1.1\r\nHost: gitlab.example.com\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    text = sock.read
    head = text.split("\r\n\r\n", 2).first
    status = head[%r{\AHTTP/1\.1 (\d{3})}, 1].to_i
    headers = head.lines.drop(1).to_h do |l|
      k, v = l.split(":", 2)
      [k.strip.downcase, v.to_s.strip]
    end
    [status, headers]
  ensure
    sock&.close
  end

  it "reads a list of documented shapes, most of them with encoded / or ." do
    expect(cases.size).to be >= 40
    expect(cases.count { |c| c[:target] =~ /%2[fFeE]/ }).to be >= 30
    expect(cases.map { |c| c[:method] }.uniq).to include("GET", "HEAD", "POST", "PUT", "DELETE")
  end

  it "knows every listed path from the documented API routes (the classifier sees them as GitLab does)" do
    classifier = Gitlab::Cells::Learn::Classifier.new(
      routes: JSON.generate(Gitlab::Cells::Learn::GrapeRoutes.extract(GitlabDocumentedApi.build).each_with_index.map { |r, i| r.merge("index" => i) })
    )
    unrouted = cases.reject { |c| classifier.recognize(c[:method], c[:target].split("?").first) }
    expect(unrouted.map { |c| "#{c[:method]} #{c[:target]}" }).to eq([])
  end

  # The entity the router caches on is the one the cell's API sees: for every listed URL Grape's
  # own router (the request through the API as a Rack app) extracts the parameters the
  # classifier extracts, `id` = `alpha/gitlab` for `alpha%2Fgitlab` included.
  it "extracts, for every listed URL, the parameters Grape's own router extracts" do
    api = GitlabDocumentedApi.build
    classifier = Gitlab::Cells::Learn::Classifier.new(
      routes: JSON.generate(Gitlab::Cells::Learn::GrapeRoutes.extract(api).each_with_index.map { |r, i| r.merge("index" => i) })
    )
    failures = cases.filter_map do |c|
      grape = GrapeOracle.ask(api, c[:method], c[:target])
      ours = classifier.recognize(c[:method], c[:target].split("?").first)
      strip = ->(params) { params.reject { |k, _| k == "format" } }
      next if grape.kind == :route && ours && strip.call(grape.params) == strip.call(ours.params)

      "#{c[:method]} #{c[:target]}: Grape #{grape.kind} #{grape.params.inspect}, ours #{ours&.params.inspect}"
    end
    expect(failures).to eq([])
  end

  it "forwards each once, unchanged, to its owner's cell, and serves the second pass from the cache" do
    failures = []
    2.times do |pass|
      cases.each do |c|
        before = @cells.transform_values { |cell| cell.pages.size }
        learns_before = @cells.values.sum { |cell| cell.learns.size }
        status, headers = raw_request(c[:method], c[:target])
        want = cell_for.call(c[:owner])
        who = "pass #{pass}: #{c[:method]} #{c[:target]} (#{c[:doc]})"
        new_pages = @cells.flat_map { |name, cell| cell.pages.drop(before[name]).map { |p| [name, p] } }
        learned = @cells.values.sum { |cell| cell.learns.size } - learns_before
        trace = headers["x-cells-router-trace"].to_s
        failures << "#{who}: status #{status}, trace #{trace}" unless status == 200
        failures << "#{who}: #{new_pages.size} cell requests #{new_pages.map(&:first)}" unless new_pages.size == 1
        name, page = new_pages.first
        failures << "#{who}: served by #{name}, owner is #{want}" if name && name != want
        # PATH_INFO as Puma hands it to Rack: the target's path, escapes untouched.
        failures << "#{who}: the cell got #{page["path"].inspect}" if page && page["path"] != c[:target].split("?").first
        failures << "#{who}: method #{page["method"]}" if page && page["method"] != c[:method]
        next if c[:owner] == "default"

        failures << "#{who}: learned again (#{learned}), trace #{trace}" if pass == 1 && (learned != 0 || !trace.include?("cache=hit"))
      end
    end
    expect(failures).to eq([]), failures.first(20).join("\n")
  end

  # Issue 14, item 7: a malformed chunked request body is the client's fault, whatever the cell
  # (Puma here) has seen of it by then.
  it "answers a malformed or cut-off chunked upload 400 invalid_request_body, not 502" do
    head = "POST /api/v4/projects/alpha%2Fgitlab/uploads HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    [["5\r\nhello\r\n", "ZZ\r\nxx\r\n0\r\n\r\n"], ["", "nothex\r\n"], ["5\r\nhello\r\n", "5\r\nhelloXX"]].each do |first, bad|
      sock = TCPSocket.new("127.0.0.1", @router.port)
      sock.write(head + first)
      sleep 0.2
      sock.write(bad)
      sock.close_write if bad.end_with?("XX")
      text = sock.read.to_s
      expect(text).to start_with("HTTP/1.1 400 "), "#{first.inspect} then #{bad.inspect}: #{text[0, 300]}"
      expect(text).to include('"error":"invalid_request_body"')
    ensure
      sock&.close
    end
  end
end
