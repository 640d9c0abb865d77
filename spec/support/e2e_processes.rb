# frozen_string_literal: true

require "json"
require "net/http"
require "rbconfig"
require "socket"
require "uri"
require_relative "../../support/processes"

# Real processes on loopback for spec/router_e2e_spec.rb: Puma cells (spec/support/e2e_cells/config.ru),
# cells-router, and a cell that accepts connections and never answers, on the helper the demo and
# the fault scripts share (support/processes.rb). Every child runs in its own process group and is
# stopped (TERM, then KILL) by #stop, by E2E.stop_all, and at exit.
module E2E
  ROOT = Processes::ROOT
  ROUTER_BIN = Processes::ROUTER_BIN
  CELL_RU = File.join(__dir__, "e2e_cells", "config.ru")
  LEARN_PATH = "/api/v4/cells/learn"
  # The learn token every e2e cell checks and every e2e router sends (unless a test says otherwise).
  LEARN_TOKEN = "e2e-learn-token-#{Process.pid}"
  START_TIMEOUT = 60
  STOP_TIMEOUT = 5

  class Error < Processes::Error; end

  @children = []
  @lock = Mutex.new

  class << self
    def register(child)
      @lock.synchronize do
        at_exit { E2E.stop_all } if @children.empty? && !@at_exit
        @at_exit = true
        @children << child
      end
    end

    # Stops every child still running (idempotent).
    def stop_all
      @lock.synchronize { @children.dup }.each(&:stop)
    end

    def now
      Processes.now
    end

    def free_port
      Loopback.free_port
    end

    def port_open?(port)
      Loopback.port_open?(port)
    end

    # One request on a new connection. @return [Response]
    def request(port, path, method: "GET", headers: {}, timeout: 10)
      started = now
      http = Net::HTTP.new("127.0.0.1", port)
      http.open_timeout = 2
      http.read_timeout = timeout
      req = Net::HTTPGenericRequest.new(method, false, method != "HEAD", path)
      headers.each { |k, v| req[k] = v }
      resp = http.start { |h| h.request(req) }
      Response.from(resp, now - started)
    end
  end

  # HTTP/1.1 on a bare socket: the spec writes many requests first and reads the answers after.
  module RawHTTP
    module_function

    def write_get(sock, path, headers = {})
      head = +"GET #{path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
      headers.each { |k, v| head << "#{k}: #{v}\r\n" }
      sock.write("#{head}\r\n")
    end

    # Reads one response up to the connection's close. @return [Response]
    def read_response(sock, deadline)
      data = +""
      loop do
        chunk = sock.read_nonblock(65_536, exception: false)
        case chunk
        when :wait_readable
          remaining = deadline - E2E.now
          raise Error, "no complete response before the deadline (read so far: #{data[0, 200].inspect})" if remaining <= 0

          sock.wait_readable(remaining)
        when nil then break
        else data << chunk
        end
      end
      parse(data)
    end

    def parse(data)
      head, body = data.split("\r\n\r\n", 2)
      status_line, *lines = head.to_s.split("\r\n")
      m = status_line.to_s.match(%r{\AHTTP/1\.[01] (\d{3})}) or raise Error, "not an HTTP response: #{data[0, 200].inspect}"
      headers = lines.to_h { |l| l.split(":", 2).then { |k, v| [k.downcase, v.to_s.strip] } }
      body = dechunk(body.to_s) if headers["transfer-encoding"].to_s.casecmp?("chunked")
      Response.new(status: m[1].to_i, headers: headers, body: body.to_s, elapsed: 0)
    end

    def dechunk(text)
      out = +""
      until text.empty?
        size, text = text.split("\r\n", 2)
        n = Integer(size.split(";").first, 16)
        break if n.zero?

        out << text[0, n]
        text = text[(n + 2)..].to_s
      end
      out
    end
  end

  # An HTTP answer as the spec sees it.
  Response = Struct.new(:status, :headers, :body, :elapsed, keyword_init: true) do
    def self.from(resp, elapsed)
      headers = resp.each_header.to_h # lower-case names
      new(status: resp.code.to_i, headers: headers, body: resp.body.to_s, elapsed: elapsed)
    end

    def [](name)
      headers[name.downcase]
    end

    def json
      JSON.parse(body)
    rescue JSON::ParserError => e
      raise Error, "expected a JSON body, got #{body[0, 200].inspect} (#{e.message})"
    end

    # `router=r; cache=miss; learned_from=cell_a; cell=cell_b; learn_ms=1.2` as a Hash.
    def trace
      value = self["X-Cells-Router-Trace"] or return {}
      value.split(";").to_h { |part| part.strip.split("=", 2) }
    end

    def describe
      "#{status} #{self["content-type"]} served_by=#{self["x-served-by"].inspect} trace=#{self["x-cells-router-trace"].inspect} " \
        "in #{format("%.3f", elapsed)}s body=#{body[0, 300].inspect}"
    end
  end

  # A process of the test, in its own process group.
  class Child < Processes::Child
    def initialize(name:, port:, log:)
      super(name: name, port: port, log: log, error: Error)
    end

    def spawn(env, cmd)
      File.write(log, "") unless File.exist?(log)
      super
      E2E.register(self)
      self
    end

    # SIGKILL, reaped, and the port closed.
    def kill!
      raise Error, "#{name} is not running" unless running?

      kill_and_reap
      deadline = E2E.now + STOP_TIMEOUT
      sleep 0.02 while E2E.port_open?(port) && E2E.now < deadline
      raise Error, "#{name}: port #{port} still open after SIGKILL" if E2E.port_open?(port)
    end

    # TERM, then KILL after STOP_TIMEOUT. Idempotent.
    def stop
      super(timeout: STOP_TIMEOUT)
    end

    def wait_until_ready(timeout: START_TIMEOUT)
      super(timeout: timeout)
    end

    def get(path, **opts)
      E2E.request(port, path, **opts)
    end

    private

    def http_ok?(path, port: self.port, served_by: nil)
      Processes.http_ok?(port, path, served_by: served_by)
    end
  end

  # A Puma cell running spec/support/e2e_cells/config.ru.
  class Cell < Child
    attr_reader :env

    # @param env [Hash] E2E_* variables (see config.ru); E2E_CELL is set from name
    def initialize(name:, port:, log:, env:)
      super(name: name, port: port, log: log)
      @env = { "E2E_LEARN_TOKENS" => LEARN_TOKEN }.merge(env).merge("E2E_CELL" => name)
    end

    def start
      spawn(@env.merge("RACK_ENV" => "production"), Processes.puma(port: port, rackup: CELL_RU, threads: "16:16", tag: "e2e-#{name}"))
    end

    def ready?
      http_ok?("/-/health", served_by: name)
    end

    def url
      "http://127.0.0.1:#{port}"
    end

    # Ruby's first call into each code path is slow: one learn request and one page, straight
    # to the cell (no router involved), so that timing checks see a warm cell.
    def warm_up
      get("#{LEARN_PATH}?method=GET&path_info=%2Fwarm%2Fup")
      get("/warm/up")
    end

    # @return [Array<Hash>] every request this cell recorded since it started
    def records
      resp = E2E.request(port, "/-/e2e/counts", timeout: 10)
      raise Error, "#{name}: /-/e2e/counts answered #{resp.describe}" unless resp.status == 200

      resp.json.fetch("records")
    end

    def learns(path_info = nil)
      records.select { |r| r["kind"] == "learn" && (path_info.nil? || r["path_info"] == path_info) }
    end

    def pages(path = nil)
      records.select { |r| r["kind"] == "page" && (path.nil? || r["path"] == path) }
    end
  end

  # A cell that accepts connections, reads what it is sent and never answers. It logs each
  # request line it reads to its log ("REQUEST GET /path HTTP/1.1").
  class HangServer < Child
    SCRIPT = <<~'RUBY'
      require "socket"
      $stdout.sync = true
      server = TCPServer.new("127.0.0.1", Integer(ARGV[0]))
      puts "LISTENING #{ARGV[0]}"
      loop do
        client = server.accept
        Thread.new(client) do |c|
          while (line = c.gets)
            puts "REQUEST #{line.strip}" if line.match?(%r{\A[A-Z]+ \S+ HTTP/1\.[01]\r?\n\z})
          end
        rescue IOError, SystemCallError
          nil
        ensure
          c.close unless c.closed? # only once the peer gave up: never an answer
        end
      end
    RUBY

    def start
      spawn({}, [RbConfig.ruby, "-e", SCRIPT, port.to_s])
    end

    def ready?
      File.read(log).include?("LISTENING #{port}")
    end

    def url
      "http://127.0.0.1:#{port}"
    end

    # @return [Array<String>] request targets read so far, e.g. "/api/v4/cells/learn?method=GET&path_info=..."
    def requests
      File.readlines(log).grep(/\AREQUEST /).map { |l| l.split[2] }
    end

    def learn_requests(path_info)
      requests.select do |target|
        uri = URI(target)
        uri.path == LEARN_PATH && URI.decode_www_form(uri.query.to_s).to_h["path_info"] == path_info
      end
    end
  end

  # target/release/cells-router with a generated configuration.
  class Router < Child
    # @param cells [Array<#name, #url>] the configured cells, in order
    # @param bin [String] the router binary (the spec runs a copy: another build may replace target/release's)
    # @param breaker [Hash] the [breaker] section (probe, probe_path, probe_interval, relearn_interval)
    # @param learn_token [String, nil] written to a learn_token_file (nil: the router sends none)
    def initialize(name:, port:, log:, cells:, default_cell:, dir:, bin: ROUTER_BIN, timeouts: {}, cache: {}, breaker: {},
                   learn_token: LEARN_TOKEN)
      super(name: name, port: port, log: log)
      @learn_token = learn_token
      # Health and metrics are served on the internal listener only.
      @internal_port = E2E.free_port
      # The e2e cells answer /-/health (GitLab's too) without recording it as a page.
      @breaker = { "probe_path" => "/-/health" }.merge(breaker)
      @bin = bin
      @cells = cells
      @default_cell = default_cell
      @timeouts = { "connect" => "1s", "learn" => "2s", "request" => "10s", "shutdown" => "2s" }.merge(timeouts)
      @cache = { "ttl" => "60s", "capacity" => 10_000, "stale_grace" => "0s" }.merge(cache)
      @config = File.join(dir, "#{name}.toml")
      @token_file = File.join(dir, "#{name}.learn_token")
    end

    def start
      File.write(@token_file, "#{@learn_token}\n", perm: 0o600) if @learn_token
      File.write(@config, toml)
      spawn({ "RUST_LOG" => nil }, [@bin, "--config", @config, "--log-format", "json"])
    end

    attr_reader :internal_port

    def ready?
      http_ok?("/-/cells-router/health", port: internal_port)
    end

    # GET on the internal listener (health, metrics).
    def internal_get(path, **opts)
      E2E.request(internal_port, path, **opts)
    end

    def toml
      settings = { "name" => name, "listen" => "127.0.0.1:#{port}", "internal_listen" => "127.0.0.1:#{internal_port}",
                   "default_cell" => @default_cell, "learn_path" => LEARN_PATH, "learn_token_file" => @learn_token && @token_file,
                   "trace_header" => true }
      Processes.router_toml(settings, { "cache" => @cache, "timeouts" => @timeouts, "breaker" => @breaker }, @cells.map { |c| [c.name, c.url] })
    end

    # The metrics page as { "name" => [[{labels}, value], ...] }.
    def metrics
      resp = internal_get("/-/cells-router/metrics")
      raise Error, "#{name}: metrics answered #{resp.describe}" unless resp.status == 200

      resp.body.each_line.each_with_object(Hash.new { |h, k| h[k] = [] }) do |line, out|
        next if line.start_with?("#") || line.strip.empty?

        m = line.match(/\A([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/) or next
        labels = m[2].to_s.scan(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/).to_h
        out[m[1]] << [labels, Float(m[3])]
      end
    end

    # Sum of a metric's series whose labels include `labels` (0 when there is none).
    def metric(name, **labels)
      want = labels.transform_keys(&:to_s)
      metrics[name].select { |l, _| want.all? { |k, v| l[k] == v } }.sum { |_, v| v }
    end
  end
end
