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
require "rbconfig"
require "securerandom"
require "socket"
require "uri"

require_relative "../support/processes"
require_relative "cell/app"
require_relative "seed"
require_relative "flows"
require_relative "report"
require_relative "topology/supervision"
require_relative "topology/router_config"
require_relative "topology/flow_checks"

module Demo
  class Topology
    class StartError < StandardError; end

    include Supervision
    include RouterConfig
    include FlowChecks

    CELL_PORTS = { "cell_us0" => 9101, "cell_us1" => 9102, "cell_eu0" => 9103, "cell_eu1" => 9104 }.freeze
    ROUTERS = [
      { "name" => "router_us", "region" => "US", "port" => 9180 },
      { "name" => "router_eu", "region" => "EU", "port" => 9181 }
    ].freeze
    START_TIMEOUT = 60
    STOP_TIMEOUT = 10

    # A process of the topology: redis, a cell or a router.
    class Child < Processes::Child
      attr_reader :kind
      # A router's internal listener (health and metrics).
      attr_accessor :internal_port

      def initialize(name:, kind:, port:, log: nil)
        super(name: name, port: port, log: log, error: StartError)
        @kind = kind
      end

      # Redis listens; a cell answers its health check; a router its internal listener's.
      def ready?
        case kind
        when :redis then Loopback.port_open?(port)
        when :cell then Processes.http_ok?(port, "/-/health")
        else Processes.http_ok?(internal_port, "/-/cells-router/health")
        end
      end
    end

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
      Processes.stop_all(children, timeout: STOP_TIMEOUT)
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

    def write_topology_file
      data = {
        "default_cell" => default_cell,
        "database" => db.describe,
        "children" => children.map { |c| { "name" => c.name, "kind" => c.kind.to_s, "pid" => c.pid, "port" => c.port, "log" => c.log } }
      }
      File.write(File.join(out, "topology.json"), JSON.pretty_generate(data))
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
