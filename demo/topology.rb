# frozen_string_literal: true

# Brings up the seed's multi-region topology on loopback, replays the request flows of the seed's
# sequence diagrams through it, checks each hop and draws what it observed.
#
#   four cells   cell_us0 cell_us1 cell_eu0 cell_eu1   Puma, demo/cell/config.ru (the gem's learn
#                                                      endpoint and middleware over a routes table)
#   two routers  router_us router_eu                   target/release/cells-router
#   one redis    redis                                 the routers' shared cache and purge channel
#
# Usage: ruby demo/topology.rb [--keep] [--out DIR] [--ports fixed|auto] [--router BIN]
#   (script/demo builds everything first, then runs this.)
#
# Exits 0 when every flow went as the seed says, 1 listing the differences otherwise, 2 when the
# topology could not start. No process is left behind: every child runs in its own process group,
# stopped (TERM, then KILL) on exit, on errors and on Ctrl-C.

require "fileutils"
require "json"
require "net/http"
require "optparse"
require_relative "loopback"
require "rbconfig"
require "securerandom"
require "socket"
require "uri"

require_relative "cell/app"
require_relative "seed"
require_relative "flows"
require_relative "report"

module Demo
  class Topology
    class StartError < StandardError; end

    CELL_PORTS = { "cell_us0" => 9101, "cell_us1" => 9102, "cell_eu0" => 9103, "cell_eu1" => 9104 }.freeze
    ROUTERS = [
      { "name" => "router_us", "region" => "US", "port" => 9180 },
      { "name" => "router_eu", "region" => "EU", "port" => 9181 }
    ].freeze
    START_TIMEOUT = 60
    STOP_TIMEOUT = 10

    Child = Struct.new(:name, :kind, :pid, :port, :log, :internal_port, keyword_init: true)

    attr_reader :out, :children, :results

    def initialize(out:, ports: :fixed, router_bin: File.join(ROOT, "target/release/cells-router"), io: $stdout)
      @out = File.expand_path(out)
      @ports = ports
      @router_bin = router_bin
      @io = io
      @children = []
      @cookies = {}
      @stopped = false
    end

    # Seeds, compiles, starts every process and waits for them.
    def start
      check_prerequisites
      FileUtils.mkdir_p(File.join(out, "logs"))
      Dir[File.join(out, "logs", "*")].each { |f| File.delete(f) }
      seed_database
      compile_classifier
      start_redis
      start_cells
      start_routers
      wait_until_ready
      write_topology_file
    end

    # @return [Array<Hash>] one result per flow
    def replay(flows = Flows::ALL)
      sign_in_users(flows)
      warm_up
      @results = flows.each_with_index.map do |flow, i|
        result = replay_flow(flow)
        failures = result[:steps].sum { |s| s[:failures].size }
        progress("[#{i + 1}/#{flows.size}] #{flow.id.ljust(24)} #{failures.zero? ? "ok" : "#{failures} difference(s)"} " \
                 "(#{result[:steps].size} request(s), #{format("%.1f", result[:steps].sum { |s| s[:ms] })} ms)")
        result
      end
    end

    def failures
      (@results || []).flat_map do |r|
        r[:steps].flat_map do |s|
          s[:failures].map do |f|
            "#{r[:flow].id} step #{s[:index] + 1} (#{s[:method]} #{s[:path]}): #{f}"
          end
        end
      end
    end

    def router_url(name)
      child = children.find { |c| c.name == name } or raise ArgumentError, "no router #{name}"
      "http://127.0.0.1:#{child.port}"
    end

    # The router's internal listener: /-/cells-router/health and /-/cells-router/metrics.
    def router_internal_url(name)
      child = children.find { |c| c.name == name } or raise ArgumentError, "no router #{name}"
      "http://127.0.0.1:#{child.internal_port}"
    end

    def cookie(user)
      @cookies[user] ||= "_gitlab_session=#{directory.create_session(directory.user(user) || raise(ArgumentError, "no user #{user}"))}"
    end

    # Stops every child: TERM to its process group, then KILL after STOP_TIMEOUT. Idempotent.
    def stop
      return if @stopped

      @stopped = true
      children.each { |c| signal(c, "TERM") }
      deadline = now + STOP_TIMEOUT
      children.each do |c|
        c.pid = nil if reap(c, deadline)
      end
      children.each do |c|
        next unless c.pid

        signal(c, "KILL")
        begin
          Process.waitpid(c.pid)
        rescue Errno::ECHILD
          nil
        end
      end
      db&.close
    end

    # The world changing under the routers: an organization moves, with everything under it, and
    # the application tells every router at once (Gitlab::Cells::Learn::Invalidation through the
    # routers' Redis), after the routes rows changed. The demo then waits until both routers
    # applied the purge (their metrics say so), so that the next request shows the result, not
    # the race.
    def action_move_acme_corp
      applied = routers.to_h { |r| [r.name, purges_applied(r)] }
      move_organization("acme-corp", "cell_eu1")
      Gitlab::Cells::Learn::Invalidation.new(redis: redis_url).purge_prefix("/acme-corp")
      deadline = now + 5
      sleep 0.005 until routers.all? { |r| purges_applied(r) > applied[r.name] } || now > deadline
    end

    def redis_url
      child = children.find { |c| c.kind == :redis } or raise ArgumentError, "no redis"
      "redis://127.0.0.1:#{child.port}"
    end

    def move_organization(org, cell)
      db.transaction do
        db.execute("UPDATE routes SET cell_id = ? WHERE path = ? AND source_type IN ('Organization', 'Namespace')", cell, org)
        db.execute("UPDATE routes SET cell_id = ? WHERE source_type = 'Project' AND path LIKE ?", cell, "#{org}/%")
        db.execute("UPDATE routes SET cell_id = ? WHERE source_type = 'User' AND path IN (SELECT username FROM users WHERE organization = ?)", cell, org)
      end
    end

    def default_cell
      @default_cell ||= Seed.default_cell(db)
    end

    private

    def db
      @db ||= DB.connect(database: database_path, url: ENV.fetch("DATABASE_URL", nil))
    end

    def directory
      @directory ||= Cell::Directory.new(db)
    end

    def database_path
      ENV["DATABASE_URL"] ? nil : File.join(out, "demo.sqlite3")
    end

    def artifact_path
      File.join(out, "gitlabish.cells-learn")
    end

    def check_prerequisites
      unless File.executable?(@router_bin)
        raise StartError, "#{@router_bin} is missing: build it with `cargo build --release -p cells-router` (script/demo does)"
      end
      raise StartError, "#{Cell::DEFAULT_ROUTES} is missing: the shared corpus must sit at ../shared" unless File.file?(Cell::DEFAULT_ROUTES)
      raise StartError, "redis-server is missing: script/bootstrap installs it" unless system("redis-server", "--version", out: File::NULL, err: File::NULL)
    end

    def seed_database
      if database_path
        ["-wal", "-shm"].each { |suffix| FileUtils.rm_f("#{database_path}#{suffix}") }
        FileUtils.rm_f(database_path)
      end
      counts = Seed.run(db)
      progress("seeded #{db.describe}: #{counts.map { |k, v| "#{v} #{k}" }.join(", ")}; default (newest) cell #{default_cell}")
    end

    def compile_classifier
      started = now
      classifier = Cell.classifier(rules: Cell.rules_for(Seed.cells(db)))
      File.binwrite("#{artifact_path}.tmp", classifier.dump)
      File.rename("#{artifact_path}.tmp", artifact_path)
      progress("compiled #{classifier.routes.size} routes (#{File.basename(Cell::DEFAULT_ROUTES)}) in " \
               "#{format("%.0f", (now - started) * 1000)} ms -> #{relative(artifact_path)}")
    end

    # The shared secret of the routers' learn requests: a fresh one per run, in a file only this
    # user can read, given to the cells (LEARN_TOKEN_FILE) and the routers (learn_token_file).
    def learn_token_file
      @learn_token_file ||= secret_file("learn_token")
    end

    # A fresh random secret in a file of the run directory that only this user can read.
    def secret_file(name)
      File.join(out, name).tap do |path|
        File.open(path, File::WRONLY | File::CREAT | File::TRUNC, 0o600) { |f| f.puts(SecureRandom.hex(32)) }
      end
    end

    def routers
      children.select { |c| c.kind == :router }
    end

    # Purges a router applied from the Redis channel (its metrics, on the internal listener).
    def purges_applied(router)
      text = Net::HTTP.get(URI("http://127.0.0.1:#{router.internal_port}/-/cells-router/metrics"))
      text[/^cells_router_shared_cache_operations_total\{op="purge_received",result="ok"\} (\d+)/, 1].to_i
    rescue SystemCallError, IOError, Net::OpenTimeout, Net::ReadTimeout
      0
    end

    # The routers' shared cache: a redis-server of the demo's own, no persistence.
    def start_redis
      port = free_port
      dir = File.join(out, "redis")
      FileUtils.mkdir_p(dir)
      spawn_child("redis", :redis, port, File.join(out, "logs", "redis.log"), {},
                  ["redis-server", "--bind", "127.0.0.1", "--port", port.to_s, "--save", "", "--appendonly", "no", "--dir", dir])
    end

    # The token the routers' purge API wants (the demo purges through Redis; the API is there too).
    def purge_token_file
      @purge_token_file ||= secret_file("purge_token")
    end

    def start_cells
      Seed.cells(db).each do |cell|
        name = cell["name"]
        port = port_for(CELL_PORTS.fetch(name) { raise StartError, "no port for #{name}" })
        log = File.join(out, "logs", "#{name}.log")
        env = {
          "CELL_NAME" => name, "DATABASE" => database_path, "DATABASE_URL" => ENV.fetch("DATABASE_URL", nil), "CLASSIFIER" => artifact_path,
          "REQUEST_LOG" => request_log(name), "RACK_ENV" => "production", "LEARN_TOKEN_FILE" => learn_token_file
        }
        cmd = [RbConfig.ruby, Gem.bin_path("puma", "puma"), "--no-config", "-e", "production", "-b", "tcp://127.0.0.1:#{port}",
               "-t", "4:8", "--tag", "gitlab-cells-demo-#{name}", File.join(ROOT, "demo", "cell", "config.ru")]
        spawn_child(name, :cell, port, log, env, cmd)
      end
    end

    def start_routers
      cells = children.select { |c| c.kind == :cell }
      ROUTERS.each do |r|
        port = port_for(r["port"])
        # Health and metrics are served on the router's internal listener only.
        internal = free_port
        config = File.join(out, "#{r["name"]}.toml")
        File.write(config, router_toml(r["name"], port, cells, internal))
        spawn_child(r["name"], :router, port, File.join(out, "logs", "#{r["name"]}.log"), {},
                    [@router_bin, "--config", config, "--log-format", "json"])
        children.last.internal_port = internal
      end
    end

    def router_toml(name, port, cells, internal_port)
      <<~TOML
        # Written by demo/topology.rb
        name = "#{name}"
        listen = "127.0.0.1:#{port}"
        internal_listen = "127.0.0.1:#{internal_port}"
        default_cell = "#{default_cell}"
        learn_path = "#{Gitlab::Cells::Learn::Endpoint::MOUNT_PATH}"
        learn_token_file = "#{learn_token_file}"
        purge_token_file = "#{purge_token_file}"
        trace_header = true

        [cache]
        ttl = "60s"
        capacity = 100000
        stale_grace = "300s"

        [cache.shared]
        url = "#{redis_url}"
        budget = "50ms"

        [timeouts]
        connect = "1s"
        learn = "2s"
        request = "60s"
        shutdown = "5s"

        [not_found_delay]
        max = "0ms"

        [session_cookie]
        name = "_gitlab_session"
        pattern = "^cell-(?<cell>[a-z0-9_]+)-"

      TOML
        .then { |head| head + cells.map { |c| "[[cells]]\nname = \"#{c.name}\"\nurl = \"http://127.0.0.1:#{c.port}\"\n" }.join("\n") }
    end

    def spawn_child(name, kind, port, log, env, cmd)
      pid = Process.spawn(env, *cmd, chdir: ROOT, pgroup: true, in: File::NULL, out: [log, "a"], err: [log, "a"])
      children << Child.new(name: name, kind: kind, pid: pid, port: port, log: log)
      progress("started #{name.ljust(9)} pid #{pid} on 127.0.0.1:#{port}")
    end

    def wait_until_ready
      deadline = now + START_TIMEOUT
      children.each do |c|
        path = c.kind == :cell ? "/-/health" : "/-/cells-router/health"
        loop do
          exited = Process.waitpid(c.pid, Process::WNOHANG)
          if exited
            status = $?
            c.pid = nil
            raise StartError, "#{c.name} exited at start (#{status}); last lines of #{relative(c.log)}:\n#{tail(c.log)}"
          end
          break if ready?(c, path)
          raise StartError, "#{c.name} did not answer #{path} within #{START_TIMEOUT}s; #{relative(c.log)}:\n#{tail(c.log)}" if now > deadline

          sleep 0.05
        end
      end
      progress("ready: #{children.map { |c| "#{c.name}:#{c.port}" }.join(" ")}")
    end

    # Redis listens; a cell answers its health check; a router its internal listener's.
    def ready?(child, path)
      case child.kind
      when :redis then Loopback.port_open?(child.port)
      when :cell then healthy?(child.port, path)
      else healthy?(child.internal_port, path)
      end
    end

    def healthy?(port, path)
      Net::HTTP.start("127.0.0.1", port, open_timeout: 0.5, read_timeout: 2) { |h| h.get(path).code == "200" }
    rescue SystemCallError, IOError, Net::OpenTimeout, Net::ReadTimeout
      false
    end

    def write_topology_file
      data = {
        "default_cell" => default_cell,
        "database" => db.describe,
        "children" => children.map { |c| { "name" => c.name, "kind" => c.kind.to_s, "pid" => c.pid, "port" => c.port, "log" => c.log } }
      }
      File.write(File.join(out, "topology.json"), JSON.pretty_generate(data))
    end

    # One learn request and one page per cell, straight to the cell (the routers' caches stay empty):
    # the flows then measure warm processes, not Ruby's first call into each code path.
    def warm_up
      children.select { |c| c.kind == :cell }.each do |c|
        Net::HTTP.start("127.0.0.1", c.port, open_timeout: 2, read_timeout: 10) do |http|
          http.get("#{Gitlab::Cells::Learn::Endpoint::MOUNT_PATH}?method=GET&path_info=%2Fhelp")
          http.get("/users/sign_in")
        end
      end
    end

    def sign_in_users(flows)
      flows.map(&:user).compact.uniq.each { |u| cookie(u) }
    end

    def replay_flow(flow)
      router = children.find { |c| c.name == flow.router } or raise ArgumentError, "flow #{flow.id}: no router #{flow.router}"
      previous = nil
      http = Net::HTTP.new("127.0.0.1", router.port)
      http.open_timeout = 2
      http.read_timeout = 30
      begin
        http.start # one keep-alive connection per flow, like a browser; if it fails, each request tries on its own
      rescue SystemCallError, IOError, Net::OpenTimeout
        nil
      end
      steps = begin
        flow.steps.each_with_index.map do |step, index|
          public_send(:"action_#{step[:before]}") if step[:before]
          path = step[:follow] ? follow(previous) : step[:path]
          user = step[:anonymous] ? nil : flow.user
          previous = if path
                       request(http, router, flow, step, index, path, user)
                     else
                       unanswered(step, index, "(redirect)", user, "nothing to follow: the previous request gave no Location")
                     end
        end
      ensure
        http.finish if http.started?
      end
      { flow: flow, steps: steps }
    end

    def follow(previous)
      return nil unless previous && previous[:location]

      URI(previous[:location]).request_uri
    rescue URI::InvalidURIError
      nil
    end

    # A step that got no HTTP answer at all (the router or a cell is down, a timeout...).
    def unanswered(step, index, path, user, reason)
      { index: index, method: step[:method], path: path, user: user, note: step[:note], status: 0, ms: 0.0, served_by: nil, trace: {},
        location: nil, leaked: [], lines: [], expect: step[:expect], failures: [reason] }
    end

    def request(http, router, flow, step, index, path, user)
      offsets = log_offsets
      req = Net::HTTPGenericRequest.new(step[:method], false, true, path)
      req["Cookie"] = cookie(user) if user
      req["User-Agent"] = "gitlab-cells-demo"
      started = now
      begin
        resp = http.request(req)
      rescue SystemCallError, IOError, Net::OpenTimeout, Net::ReadTimeout, Net::HTTPBadResponse => e
        return unanswered(step, index, path, user, "no answer from #{flow.router}: #{e.class}: #{e.message}")
      end
      ms = (now - started) * 1000
      lines = new_log_lines(offsets)
      observed = {
        index: index, method: step[:method], path: path, user: user, note: step[:note], status: resp.code.to_i, ms: ms,
        served_by: resp["X-Served-By"], trace: parse_trace(resp["X-Cells-Router-Trace"]), location: resp["Location"],
        leaked: %w[X-Gitlab-Cell-Cache X-Gitlab-Cell-Owner].select { |h| resp[h] }, lines: lines, expect: step[:expect]
      }
      observed[:failures] = check(flow, router, observed)
      observed
    end

    # `router=router_eu; cache=miss; learned_from=cell_us1; cell=cell_eu0; learn_ms=1.23`
    def parse_trace(value)
      return {} unless value

      value.split(";").to_h { |part| part.strip.split("=", 2) }
    end

    def check(flow, router, o)
      e = o[:expect]
      t = o[:trace]
      learns = o[:lines].select { |l| l["path"] == Gitlab::Cells::Learn::Endpoint::MOUNT_PATH }
      pages = o[:lines].reject { |l| l["path"] == Gitlab::Cells::Learn::Endpoint::MOUNT_PATH }
      f = []
      f << "status #{o[:status]}, expected #{e[:status]}" if e[:status] && o[:status] != e[:status]
      f << "served by #{o[:served_by].inspect}, expected #{e[:cell]}" if e[:cell] && o[:served_by] != e[:cell]
      f << "no X-Cells-Router-Trace header" if t.empty?
      f << "trace names router #{t["router"].inspect}, expected #{flow.router}" if !t.empty? && t["router"] != flow.router
      f << "trace says cell=#{t["cell"].inspect} but X-Served-By is #{o[:served_by].inspect}" if !t.empty? && t["cell"] != o[:served_by]
      f << "cache #{t["cache"].inspect}, expected #{e[:cache]}" if e[:cache] && t["cache"] != e[:cache]
      f << "the client saw internal header(s) #{o[:leaked].join(", ")}" unless o[:leaked].empty?
      check_learns(f, e, t, learns)
      check_location(f, e, o, router)
      last = pages.last
      if last.nil?
        f << "no cell recorded the request"
      elsif last["cell"] != o[:served_by] || last["status"] != o[:status]
        f << "the last cell hop was #{last["cell"]} #{last["status"]}, the client got #{o[:served_by]} #{o[:status]}"
      end
      misdirected = pages.select { |l| l["status"] == 421 }
      if e[:misdirected]
        hop = misdirected.find { |l| l["cell"] == e[:misdirected] }
        f << "expected #{e[:misdirected]} to answer 421 first, cells recorded #{pages.map { |l| "#{l["cell"]} #{l["status"]}" }.join(", ")}" unless hop
        f << "the 421 named owner #{hop["owner"].inspect}, expected #{e[:cell]}" if hop && hop["owner"] != e[:cell]
      elsif misdirected.any?
        f << "unexpected 421 from #{misdirected.map { |l| l["cell"] }.join(", ")}"
      end
      f
    end

    def check_learns(f, e, t, learns)
      expected = %w[miss bypass].include?(e[:cache]) ? 1 : 0
      answers = learns.map do |l|
        JSON.parse(l["learn"].to_s)
      rescue JSON::ParserError
        {}
      end
      # A cell naming itself, or a prefix over a reserved path (/users), is believed once a second cell
      # gives the same answer (router/README.md, Trust rules): then two learn requests, the same answer.
      confirmed = expected == 1 && learns.size == 2 && answers[0] == answers[1]
      f << "#{learns.size} learn request(s) reached the cells, expected #{expected}" if learns.size != expected && !confirmed
      return if learns.empty?

      learn = learns.first
      f << "the trace says learned_from=#{t["learned_from"].inspect}, but #{learn["cell"]} answered the learn request" if t["learned_from"] != learn["cell"]
      answer = answers.first
      f << "the learn answer named #{answer["cell"].inspect}, expected #{e[:learned]}" if e[:learned] && answer["cell"] != e[:learned]
    end

    def check_location(f, e, o, router)
      return unless e.key?(:location)

      if o[:location].nil?
        f << "no Location header, expected #{e[:location]}"
        return
      end
      uri = URI(o[:location])
      f << "redirect to #{uri.request_uri}, expected #{e[:location]}" if uri.request_uri != e[:location]
      if uri.host && "#{uri.host}:#{uri.port}" != "127.0.0.1:#{router.port}"
        f << "redirect to host #{uri.host}:#{uri.port}, expected the router 127.0.0.1:#{router.port}"
      end
    rescue URI::InvalidURIError
      f << "unparsable Location #{o[:location].inspect}"
    end

    def request_log(name)
      File.join(out, "logs", "#{name}.requests.jsonl")
    end

    def log_offsets
      children.select { |c| c.kind == :cell }.to_h { |c| [c.name, File.exist?(request_log(c.name)) ? File.size(request_log(c.name)) : 0] }
    end

    def new_log_lines(offsets)
      offsets.flat_map do |name, offset|
        next [] unless File.exist?(request_log(name))

        File.open(request_log(name)) do |f|
          f.seek(offset)
          f.read.each_line.map { |l| JSON.parse(l) }
        end
      end.sort_by { |l| l["t"] }
    end

    def port_for(preferred)
      return free_port if @ports == :auto
      return preferred if port_free?(preferred)

      free_port.tap { |p| progress("port #{preferred} is taken, using #{p}") }
    end

    def port_free?(port)
      TCPServer.new("127.0.0.1", port).close
      true
    rescue SystemCallError
      false
    end

    def free_port
      Loopback.free_port
    end

    def signal(child, sig)
      Process.kill(sig, -child.pid) if child.pid
    rescue Errno::ESRCH, Errno::EPERM
      nil
    end

    # Waits for a child until the deadline. @return [Boolean] whether it was reaped
    def reap(child, deadline)
      return true unless child.pid

      loop do
        return true if Process.waitpid(child.pid, Process::WNOHANG)
        return false if now > deadline

        sleep 0.05
      end
    rescue Errno::ECHILD
      true
    end

    def tail(path, lines = 15)
      return "(no log)" unless File.exist?(path)

      File.readlines(path).last(lines).map { |l| "  #{l}" }.join
    end

    def relative(path)
      path.start_with?("#{ROOT}/") ? path.delete_prefix("#{ROOT}/") : path
    end

    def progress(message)
      @io.puts("demo: #{message}")
      @io.flush
    end

    def now
      Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end
  end
end

if $PROGRAM_NAME == __FILE__
  options = { keep: false, out: File.join(Demo::ROOT, "demo-out"), ports: :fixed, router: File.join(Demo::ROOT, "target/release/cells-router") }
  OptionParser.new do |o|
    o.banner = "Usage: ruby demo/topology.rb [options]\n" \
               "Starts 4 cells and 2 routers on loopback, replays the seed's flows, checks them, writes DIR/flows.md."
    o.on("--keep", "leave the topology running after the flows (Ctrl-C stops it)") { options[:keep] = true }
    o.on("--out DIR", "where the database, logs and flows.md go (default demo-out/)") { |v| options[:out] = v }
    o.on("--ports MODE", %w[fixed auto], "fixed: 9101-9104 and 9180/9181, free ones when taken (default); auto: any free ports") do |v|
      options[:ports] = v.to_sym
    end
    o.on("--router BIN", "the cells-router binary (default target/release/cells-router)") { |v| options[:router] = v }
  end.parse!(ARGV)

  topology = Demo::Topology.new(out: options[:out], ports: options[:ports], router_bin: options[:router])
  at_exit { topology.stop }
  status = 0
  begin
    topology.start
    topology.replay
    report = Demo::Report.new(topology)
    puts report.console
    File.write(File.join(topology.out, "flows.md"), report.markdown)
    puts "demo: wrote #{File.join(topology.out, "flows.md")}"
    unless topology.failures.empty?
      warn "demo: #{topology.failures.size} difference(s) from what the seed says:"
      topology.failures.each { |f| warn "  - #{f}" }
      status = 1
    end
    if options[:keep]
      puts report.keep_instructions
      reader, writer = IO.pipe # a self-pipe: the only thing a trap handler may safely do is write to it
      %w[INT TERM].each { |sig| trap(sig) { writer.write_nonblock("#{sig}\n", exception: false) } }
      sig = reader.gets.to_s.strip
      puts "\ndemo: #{sig}: stopping"
    end
  rescue Demo::Topology::StartError, Demo::DB::Error, Demo::Cell::ConfigError => e
    warn "demo: #{e.message}"
    status = 2
  ensure
    topology.stop
  end
  exit status
end
