# frozen_string_literal: true

require "spec_helper"
require "tmpdir"
require "fileutils"
require "stringio"

# The router as processes on loopback, judged by what the cells recorded: Puma cells running the
# gem's learn endpoint and middleware, target/release/cells-router, a cell that never answers.
# Helpers: spec/support/e2e_processes.rb; the cells: spec/support/e2e_cells/config.ru (and the
# demo's SQLite cells, demo/cell/config.ru, for the seed's flows).
RSpec.describe "cells-router end to end", :e2e do
  # A copy of the binary: another build may replace target/release/cells-router while this runs.
  before(:all) do
    raise "#{E2E::ROUTER_BIN} is missing: build it first (`cargo build --release -p cells-router`; script/test does)" unless File.executable?(E2E::ROUTER_BIN)

    @bin_dir = Dir.mktmpdir("cells-e2e-bin")
    @router_bin = File.join(@bin_dir, "cells-router")
    FileUtils.cp(E2E::ROUTER_BIN, @router_bin, preserve: true)
  end

  after(:all) do
    E2E.stop_all
    FileUtils.rm_rf(@bin_dir) if @bin_dir
  end

  # The request flows of the seed's sequence diagrams, replayed by demo/topology.rb's own code in
  # this process (four SQLite-backed Puma cells, router_us and router_eu). Demo::Topology checks
  # every step against the cells' request logs; on top of that, each step's hops as the cells
  # recorded them must be exactly these: "learn->X" (some cell's learn endpoint answered cell X),
  # "CELL STATUS" (CELL served the request with STATUS).
  describe "the seed's flows (demo/topology.rb's cells and routers)" do
    hops = {
      "eu-user-project" => [["learn->cell_eu0", "cell_eu0 200"]], # logged in
      "eu-user-not-signed-in" => [["cell_eu0 302"], ["learn->cell_us0", "cell_us0 200"]], # not logged in
      "same-prefix" => [["cell_eu0 200"], ["cell_eu0 200"]], # cached prefix: no learn
      "us-project-from-eu" => [["learn->cell_us0", "cell_us0 200"], ["cell_us0 200"]], # other region's cell
      "root-redirect" => [["learn->cell_eu1", "cell_eu0 302"], ["learn->cell_eu0", "cell_eu0 200"], # `/` never cached
                          ["learn->cell_eu1", "cell_eu0 302"], ["learn->cell_eu1", "cell_eu1 302"]],
      "private-project-404" => [["cell_eu0 404"]],
      "profile-exact" => [["learn->cell_us0", "cell_us0 200"], ["cell_us0 200"], ["learn->cell_us0", "cell_us0 200"]],
      "organization-from-eu" => [["learn->cell_us1", "cell_us1 200"]], # router_eu learns, writes the shared cache
      # router_us reads the shared cache; after the move's purge it learns again: no 421
      "organization-moved" => [["cell_us1 200"], ["learn->cell_eu1", "cell_eu1 200"], ["cell_eu1 200"]],
      "organization-moved-eu" => [["cell_eu1 200"]] # router_eu reads router_us's new answer from the shared cache
    }.freeze

    before(:all) do
      require_relative "../demo/topology"
      @out = Dir.mktmpdir("cells-e2e-demo")
      @io = StringIO.new
      @topology = Demo::Topology.new(out: @out, ports: :auto, io: @io, router_bin: @router_bin)
      begin
        @topology.start
        @results = @topology.replay(Demo::Flows::ALL).to_h { |r| [r[:flow].id, r] }
      rescue StandardError => e
        raise "the demo topology failed: #{e.class}: #{e.message}\n#{@io.string}"
      end
    end

    after(:all) do
      @topology&.stop
      FileUtils.rm_rf(@out) if @out
    end

    it "replays every flow with no difference from what the seed says (Demo::Topology's hop checks)" do
      expect(@topology.failures).to eq([]), "differences:\n#{@topology.failures.join("\n")}\n#{@io.string}"
      expect(@results.keys).to match_array(hops.keys)
    end

    hops.each do |id, expected|
      it "#{id}: each step's hops, as the cells recorded them" do
        result = @results.fetch(id) { raise "Demo::Flows::ALL has no flow #{id}" }
        recorded = result[:steps].map do |step|
          hops = step[:lines].map do |line|
            if line["path"] == E2E::LEARN_PATH
              named = JSON.parse(line["learn"].to_s)["cell"]
              ["learn->#{named}", line["cell"] == named]
            else
              ["#{line["cell"]} #{line["status"]}", false]
            end
          end
          # A cell naming itself, or a prefix over a reserved path (/users), is confirmed by the next cell
          # giving the same answer (router/README.md, Trust rules): that second learn request is part of the same hop.
          hops.each_with_index.reject { |(hop, _), i| i.positive? && hop.start_with?("learn->") && hops[i - 1][0] == hop }.map { |(hop, _), _| hop }
        end
        expect(recorded).to eq(expected), "#{id}: cells recorded #{recorded.inspect}, expected #{expected.inspect}"
        result[:steps].each do |step|
          pages = step[:lines].reject { |l| l["path"] == E2E::LEARN_PATH }.map { |l| l["path"] }
          expect(pages.uniq).to eq([step[:path].split("?").first]), "#{id}: the cells recorded pages #{pages.inspect} for #{step[:path]}"
        end
      end
    end

    it "root-redirect: every request for / asked a cell again (the answer says cacheable:false)" do
      steps = @results.fetch("root-redirect")[:steps].select { |s| s[:path] == "/" }
      expect(steps.size).to eq(3)
      steps.each do |step|
        learns = step[:lines].select { |l| l["path"] == E2E::LEARN_PATH }
        answers = learns.map { |l| JSON.parse(l["learn"]) }
        # One learn request, or two when the first cell asked named itself (confirmed by a second cell).
        confirmed = learns.size == 2 && answers[0] == answers[1]
        expect(learns.size == 1 || confirmed).to be(true), "GET / produced #{learns.size} learn requests: #{step[:lines].inspect}"
        expect(answers.first).to include("path" => "/", "exact" => true, "cacheable" => false)
        expect(step[:trace]["cache"]).to eq("bypass")
      end
    end
  end

  describe "faults" do
    owners = { "alpha" => "cell_a", "bravo" => "cell_b", "crowd" => "cell_b", "golf" => "cell_g", "uniform" => "cell_u",
               "hotel" => "cell_h", "kilo" => "cell_k" }.freeze

    before(:all) do
      @dir = Dir.mktmpdir("cells-e2e")
      @crowd_release = File.join(@dir, "release-crowd")
      env = { "E2E_CELLS" => owners.values.uniq.join(","), "E2E_DEFAULT" => "cell_a",
              "E2E_OWNERS" => owners.map { |k, v| "#{k}=#{v}" }.join(","), "E2E_HOLD_LEARN" => "/crowd=#{@crowd_release}" }
      cell = ->(name, extra = {}) { E2E::Cell.new(name: name, port: E2E.free_port, log: File.join(@dir, "#{name}.log"), env: env.merge(extra)) }
      @cells = {
        "cell_a" => cell.call("cell_a"),
        "cell_b" => cell.call("cell_b"),
        "cell_g" => cell.call("cell_g", "E2E_LEARN" => "garbage"),
        "cell_u" => cell.call("cell_u", "E2E_LEARN" => "unknown_cell"),
        "cell_k" => cell.call("cell_k")
      }
      @hang = E2E::HangServer.new(name: "cell_h", port: E2E.free_port, log: File.join(@dir, "cell_h.log"))
      [*@cells.values, @hang].each(&:start)
      [*@cells.values, @hang].each(&:wait_until_ready)
      @cells.each_value(&:warm_up)
    end

    after(:all) do
      E2E.stop_all
      FileUtils.rm_rf(@dir) if @dir
    end

    def cell(name)
      @cells.fetch(name)
    end

    def start_router(name, cells, default_cell: cells.first.name, **opts)
      router = E2E::Router.new(name: name, port: E2E.free_port, log: File.join(@dir, "#{name}.log"), cells: cells,
                               default_cell: default_cell, dir: @dir, bin: @router_bin, **opts)
      @routers << router
      router.start.wait_until_ready
    end

    before { @routers = [] }

    after { @routers.each(&:stop) }

    # The router's log, for failure messages.
    def logs(router)
      "\n  #{router.name} log:\n#{router.tail(12)}"
    end

    describe "a cell killed mid-test" do
      # Changed deliberately with the circuit breaker (issue 14 item 3): the killed cell's entries
      # are kept and its requests answered 503 at once (they used to be dropped, and each request
      # relearned); it serves again within a probe interval of answering.
      it "gets 502 then fast 503 JSON for its routes and keeps its cache entries, other cells keep serving, and it serves again once restarted" do
        a = cell("cell_a")
        k = cell("cell_k")
        router = start_router("router_kill", [a, k])

        %w[/kilo/one /kilo/two/-/issues /alpha/project].each do |path|
          resp = router.get(path)
          owner = path.start_with?("/kilo") ? "cell_k" : "cell_a"
          expect([resp.status, resp["x-served-by"]]).to eq([200, owner]), "#{path}: #{resp.describe}#{logs(router)}"
        end
        expect(k.pages.map { |r| r["path"] }.grep(%r{\A/kilo/})).to eq(%w[/kilo/one /kilo/two/-/issues])
        expect(router.metric("cells_router_cache_entries")).to eq(3) # /kilo/one, /kilo/two, /alpha/project
        expect(router.get("/kilo/one/-/tree").trace["cache"]).to eq("hit")
        entries = router.metric("cells_router_cache_entries") # the /-/tree answer may add its own via X-Gitlab-Cell-Cache

        k.kill!

        resp = router.get("/kilo/one")
        expect(resp.status).to eq(502), "a request for the killed cell's route: #{resp.describe}#{logs(router)}"
        expect(resp["content-type"]).to start_with("application/json")
        expect(resp.json).to include("error" => "cell_unreachable")
        expect(resp["retry-after"]).to eq("1")
        expect(resp.trace).to include("cache" => "hit", "cell" => "cell_k")
        expect(router.metric("cells_router_upstream_errors_total", cell: "cell_k", reason: "connect")).to eq(1)
        # Every entry stays: the namespaces are still cell_k's.
        expect(router.metric("cells_router_cache_entries")).to eq(entries), "entries after the 502:#{logs(router)}"
        expect(router.metric("cells_router_cell_breaker_state", cell: "cell_k")).to be >= 1

        resp = router.get("/alpha/project/-/issues")
        expect([resp.status, resp["x-served-by"], resp.trace["cache"]]).to eq([200, "cell_a", "hit"]), resp.describe

        # /kilo/two's entry is relearned once (it might have moved; cell_a says it has not), then
        # answered at once without a learn until the relearn interval has passed.
        learns_before = a.learns("/kilo/two").size
        resp = router.get("/kilo/two")
        expect(resp.status).to eq(503), resp.describe
        expect(resp.json).to include("error" => "cell_unavailable")
        expect(resp["retry-after"]).to eq("1")
        expect(resp.trace).to include("cache" => "hit", "learned_from" => "cell_a", "cell" => "cell_k")
        expect(a.learns("/kilo/two").size).to eq(learns_before + 1)
        learns_before = a.learns.size
        resp = router.get("/kilo/two/-/issues")
        expect([resp.status, resp.trace["learned_from"]]).to eq([503, nil]), resp.describe
        expect(a.learns.size).to eq(learns_before)

        k.start.wait_until_ready
        ready = E2E.now

        %w[/kilo/one /kilo/two].each do |path|
          resp = nil
          loop do
            resp = router.get(path, headers: { "X-Request-Id" => "after-restart#{path}" })
            break unless resp.status == 503 && E2E.now - ready < 3
          end
          expect([resp.status, resp["x-served-by"]]).to eq([200, "cell_k"]), "#{path} after the restart: #{resp.describe}#{logs(router)}"
        end
        # Served within a probe interval (250 ms) of answering, with slack for a loaded machine.
        expect(E2E.now - ready).to be < 1.5
        # The restarted process recorded exactly these two requests (probes go to /-/health).
        expect(k.pages.map { |r| [r["path"], r["request_id"]] }).to eq([%w[/kilo/one after-restart/kilo/one], %w[/kilo/two after-restart/kilo/two]])
        expect(router.get("/kilo/one/-/issues").trace).to include("cache" => "hit", "cell" => "cell_k")
      end

      it "answers a request in flight when its cell dies with 502 at once, without sending it anywhere else" do
        a = cell("cell_a")
        dying = E2E::HangServer.new(name: "cell_h", port: E2E.free_port, log: File.join(@dir, "cell_h-dying.log"))
        dying.start.wait_until_ready
        router = start_router("router_dying", [dying, a], default_cell: "cell_a", timeouts: { "request" => "20s" })
        pending = Thread.new { router.get("/hotel/in-flight", headers: { "X-Request-Id" => "in-flight" }, timeout: 30) }
        deadline = E2E.now + 10
        sleep 0.02 until dying.requests.include?("/hotel/in-flight") || E2E.now > deadline || !pending.alive?
        expect(dying.requests).to include("/hotel/in-flight"), "the request never reached the cell: #{pending.alive? ? "" : pending.value.describe}"

        killed_at = E2E.now
        dying.kill!
        resp = pending.value
        expect(resp.status).to eq(502), "#{resp.describe}#{logs(router)}"
        expect(resp.json).to include("error" => "bad_gateway")
        expect(E2E.now - killed_at).to be < 5, "the 502 came #{E2E.now - killed_at}s after the kill (request timeout 20s)"
        expect(dying.requests.count("/hotel/in-flight")).to eq(1)
        expect(a.pages("/hotel/in-flight")).to eq([]) # never replayed on another cell
        expect(router.metric("cells_router_upstream_errors_total", cell: "cell_h", reason: "protocol")).to eq(1)
      end
    end

    describe "cells that answer the learn endpoint with garbage or with an unknown cell" do
      it "are skipped for another cell: their answers are neither cached nor routed by, and counted as learn failures" do
        g = cell("cell_g")
        u = cell("cell_u")
        good = [cell("cell_a"), cell("cell_b")]
        router = start_router("router_mixed", [g, u, *good])

        paths = []
        40.times do |i|
          break if g.learns.any? { |r| paths.include?(r["path_info"]) } && u.learns.any? { |r| paths.include?(r["path_info"]) }

          path = i.even? ? "/alpha/mixed-#{i}" : "/bravo/mixed-#{i}/-/issues"
          paths << path
          owner = i.even? ? "cell_a" : "cell_b"
          resp = router.get(path)
          expect([resp.status, resp["x-served-by"]]).to eq([200, owner]), "#{path}: #{resp.describe}#{logs(router)}"
          expect(resp.trace).to include("cache" => "miss", "cell" => owner)
          expect(%w[cell_a cell_b]).to include(resp.trace["learned_from"]), "#{path}: learned from #{resp.trace["learned_from"]}"
        end
        asked_g = g.learns.count { |r| paths.include?(r["path_info"]) }
        asked_u = u.learns.count { |r| paths.include?(r["path_info"]) }
        expect([asked_g, asked_u]).to all(be >= 1), "in #{paths.size} requests the router asked cell_g #{asked_g}, cell_u #{asked_u} times"

        expect(router.metric("cells_router_learn_failures_total", cell: "cell_g", reason: "invalid")).to eq(asked_g)
        expect(router.metric("cells_router_learn_failures_total", cell: "cell_u", reason: "untrusted")).to eq(asked_u)
        expect(router.metric("cells_router_learn_failures_total")).to eq(asked_g + asked_u)
        expect(router.metric("cells_router_rejected_answers_total", origin: "learn")).to eq(asked_u)
        answered = good.sum { |c| c.learns.count { |r| paths.include?(r["path_info"]) } }
        # One good answer per path, two when the first good cell asked named itself (confirmed by the other).
        expect(answered).to be_between(paths.size, 2 * paths.size)
        expect(router.metric("cells_router_learn_requests_total")).to eq(asked_g + asked_u + answered)
        # Nothing of theirs was cached: one entry per path (from the good answers), and every path is now a hit.
        expect(router.metric("cells_router_cache_entries")).to eq(paths.size)
        paths.each do |path|
          resp = router.get(path)
          expect([resp.status, resp.trace["cache"]]).to eq([200, "hit"]), "#{path} again: #{resp.describe}"
        end
        expect(router.metric("cells_router_learn_requests_total")).to eq(asked_g + asked_u + answered)
        # The bad cells served no page: nothing was routed to them.
        expect((g.pages + u.pages).select { |r| paths.include?(r["path"]) }).to eq([])
      end

      it "answer 503 JSON when they are the only cells, each asked once per request, and nothing is cached" do
        g = cell("cell_g")
        u = cell("cell_u")
        router = start_router("router_bad", [g, u])

        2.times do |round|
          resp = router.get("/alpha/nobody-answers")
          expect(resp.status).to eq(503), "round #{round + 1}: #{resp.describe}#{logs(router)}"
          expect(resp["content-type"]).to start_with("application/json")
          expect(resp.json).to include("error" => "no_cell_available")
          expect(g.learns("/alpha/nobody-answers").size).to eq(round + 1)
          expect(u.learns("/alpha/nobody-answers").size).to eq(round + 1)
        end
        expect(router.metric("cells_router_learn_failures_total", cell: "cell_g", reason: "invalid")).to eq(2)
        expect(router.metric("cells_router_learn_failures_total", cell: "cell_u", reason: "untrusted")).to eq(2)
        expect(router.metric("cells_router_cache_entries")).to eq(0)
        expect((g.pages + u.pages).select { |r| r["path"] == "/alpha/nobody-answers" }).to eq([])
      end
    end

    describe "a cell that hangs (accepts, reads, never answers)" do
      learn_timeout = 0.5
      request_timeout = 2.0

      it "times its learn requests out within the learn timeout and another cell answers; forwards to it get 504 within the request timeout" do
        a = cell("cell_a")
        router = start_router("router_hang", [@hang, a], default_cell: "cell_a",
                                                         timeouts: { "connect" => "500ms", "learn" => "#{(learn_timeout * 1000).to_i}ms",
                                                                     "request" => "#{(request_timeout * 1000).to_i}ms" })
        # The first cell asked is random: go on with new paths until the hanging one has been asked.
        timed_out = nil
        20.times do |i|
          path = "/alpha/hang-#{i}"
          resp = router.get(path)
          expect([resp.status, resp["x-served-by"], resp.trace["learned_from"]]).to eq([200, "cell_a", "cell_a"]),
                                                                                    "#{path}: #{resp.describe}#{logs(router)}"
          next if @hang.learn_requests(path).empty?

          timed_out = [path, resp]
          break
        end
        expect(timed_out).not_to be_nil, "20 learns, none sent to the hanging cell first"
        path, resp = timed_out
        # Besides that learn request, the router only read its health answer for the route table
        # (mixed versions: every cell's table is read at start), which also timed out.
        expect(@hang.requests.reject { |r| r == "/-/health" }.size).to eq(1), "the hanging cell read #{@hang.requests.inspect}"
        expect(resp.elapsed).to be_between(learn_timeout, learn_timeout + 1.0), "#{path} took #{resp.elapsed}s (learn timeout #{learn_timeout}s)"
        expect(a.learns(path).size).to eq(1)
        expect(router.metric("cells_router_learn_failures_total", cell: "cell_h", reason: "timeout")).to eq(1)

        # A route the hanging cell owns: learned from cell_a (cell_h failed a moment ago: it is asked last), forwarded, 504.
        resp = router.get("/hotel/project")
        expect(resp.status).to eq(504), "/hotel/project: #{resp.describe}#{logs(router)}"
        expect(resp["content-type"]).to start_with("application/json")
        expect(resp.json).to include("error" => "cell_timeout")
        expect(resp.trace).to include("learned_from" => "cell_a", "cell" => "cell_h")
        expect(resp.elapsed).to be_between(request_timeout, request_timeout + 1.0), "the 504 took #{resp.elapsed}s (request timeout #{request_timeout}s)"
        expect(@hang.requests).to include("/hotel/project")
        expect(router.metric("cells_router_upstream_errors_total", cell: "cell_h", reason: "timeout")).to eq(1)
      end
    end

    describe "1,000 concurrent first requests for one path" do
      clients = 1000

      it "send one learn flight (a self-claim confirmed once), answer 1,000 times 200, and forward each request exactly once" do
        a = cell("cell_a")
        b = cell("cell_b")
        router = start_router("router_crowd", [a, b], timeouts: { "learn" => "30s" })
        path = "/crowd/big-project/-/issues"
        ids = Array.new(clients) { |i| "crowd-#{i}" }

        # 1,000 connections, then 1,000 requests written before any answer is read. The cells hold
        # learn requests for /crowd until the release file appears: every request reaches the router
        # while the one learn request is in flight.
        sockets = ids.map { TCPSocket.new("127.0.0.1", router.port) }
        begin
          sockets.each_with_index { |sock, i| E2E::RawHTTP.write_get(sock, path, "X-Request-Id" => ids[i]) }
          sleep 0.5
          expect([a, b].sum { |c| c.learns(path).size }).to eq(0), "a learn request for #{path} was answered before the release"
          File.write(@crowd_release, "go")
          deadline = E2E.now + 30
          results = sockets.map do |sock|
            E2E::RawHTTP.read_response(sock, deadline)
          rescue E2E::Error, SystemCallError, IOError => e
            e
          end
        ensure
          sockets.each(&:close)
        end

        errors = results.reject { |r| r.is_a?(E2E::Response) }
        expect(errors).to eq([]), "#{errors.size} requests got no answer, e.g. #{errors.first(3).map(&:inspect).join(", ")}#{logs(router)}"
        statuses = results.map(&:status).tally
        expect(statuses).to eq(200 => clients), "statuses #{statuses.inspect}; e.g. #{results.find { |r| r.status != 200 }&.describe}"
        expect(results.map { |r| r.json["request_id"] }).to eq(ids) # each client got its own request's answer
        expect(results.map { |r| r["x-served-by"] }.uniq).to eq(["cell_b"])

        # One learn flight: one request, or two when the first cell asked was cell_b naming itself
        # (the router then has cell_a confirm the claim before trusting it).
        learned_by = [a, b].to_h { |c| [c.name, c.learns(path).size] }
        expect(learned_by.values.sum).to be_between(1, 2), "the cells recorded learn requests for #{path}: #{learned_by.inspect}"
        expect(learned_by.values).to all(be <= 1), "one cell was asked twice: #{learned_by.inspect}"
        expect(learned_by["cell_a"]).to eq(1) if learned_by.values.sum == 1 # cell_a's answer names another cell: no confirmation
        expect(router.metric("cells_router_learn_requests_total")).to eq(learned_by.values.sum)

        forwarded = [a, b].flat_map { |c| c.pages(path) }
        by_id = forwarded.group_by { |r| r["request_id"] }
        twice = by_id.select { |_, rs| rs.size > 1 }
        expect(twice).to eq({}), "forwarded more than once: #{twice.first(3).inspect}"
        expect(by_id.keys).to match_array(ids)
        expect(forwarded.map { |r| r["cell"] }.uniq).to eq(["cell_b"])

        # They were all first requests: each one waited for the single learn request.
        caches = results.map { |r| r.trace["cache"] }.tally
        expect(caches).to eq("miss" => clients), "cache verdicts #{caches.inspect}"
        expect(results.map { |r| r.trace["learned_from"] }.uniq.size).to eq(1)
      end
    end
  end
end
