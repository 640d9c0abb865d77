# frozen_string_literal: true

# A counting cell for script/fault-load and script/soak. Run under Puma (single process, so the
# mode below is shared by every thread):
#
#   CELL_NAME=cell_1 FAULT_LOG=tmp/cell_1.ids puma --no-config -e production \
#     -b tcp://127.0.0.1:9102 -t 8:8 benches/faults/cell.ru
#
#   GET  /api/v4/cells/learn?...   the gem's Gitlab::Cells::Learn::Endpoint: the corpus routes
#                                  (../shared/corpus/gitlabish-routes.json), rules/gitlab.json, and a
#                                  resolver answering from the fixed table of benches/faults/ownership.rb
#   GET  /-/faults/stats           {"cell","pid","mode","slow_ms","recorded","unidentified","learn","garbage","slept"}
#   POST /-/faults/mode?mode=M[&ms=N]  switch mode: normal | slow (sleep N ms before every answer,
#                                  learn answers included) | garbage (the learn endpoint answers 200
#                                  with bodies that are not a learn answer: truncated JSON, HTML, ...)
#                                  (a control request waits in Puma's queue like any other; the scripts
#                                  use FAULT_MODE_FILE instead, which takes effect at the next request)
#   anything else                  records the X-Request-Id it received — one line "<id> <path>" appended
#                                  to FAULT_LOG (one write(2) per line, before answering, so the line
#                                  survives a SIGKILL) — and answers 200 with a small body, echoing
#                                  X-Request-Id and naming itself in X-Faults-Cell.
#
# Environment: CELL_NAME (required, one of Faults::CELLS), FAULT_LOG (optional; without it ids are
# only counted), FAULT_MODE (normal|slow|garbage, default normal), FAULT_SLOW_MS (default 200),
# FAULT_MODE_FILE (optional: a file holding "<mode> [ms]"; each request checks whether it was
# replaced (inode, mtime) and switches to what it says).

root = File.expand_path("../..", __dir__)
$LOAD_PATH.unshift(File.join(root, "lib")) unless $LOAD_PATH.include?(File.join(root, "lib"))
require "gitlab/cells/learn"
require "json"
require_relative "ownership"

module Faults
  # The counting cell's Rack application.
  class CountingCell
    MODES = %w[normal slow garbage].freeze

    # What a learn endpoint in `garbage` mode answers, in turn (all with status 200 and
    # Content-Type application/json): none of them is a learn answer the router may accept.
    GARBAGE = [
      '{"path":"/red","cell":"cell_',                        # truncated
      "<html><body>502 Bad Gateway</body></html>",           # an HTML error page
      "", # empty
      '{"path":42,"cell":["cell_0"],"source":"routable"}',   # wrong types
      "null",
      '{"cell":"cell_0","source":"routable"}',               # no path
      "\xFF\xFE{\"path\":\"/\"}".b                           # not UTF-8
    ].map(&:freeze).freeze

    LEARN_PATH = Gitlab::Cells::Learn::Endpoint::MOUNT_PATH

    # @raise [ArgumentError] for a bad environment
    def initialize(env = ENV, root:)
      @name = env.fetch("CELL_NAME") { raise ArgumentError, "CELL_NAME is not set" }
      raise ArgumentError, "CELL_NAME #{@name.inspect} is not one of #{CELLS.join(", ")}" unless CELLS.include?(@name)

      @lock = Mutex.new
      @mode = "normal"
      @slow_ms = 200
      set_mode(env.fetch("FAULT_MODE", "normal"), env["FAULT_SLOW_MS"])
      @counts = Hash.new(0)
      @mode_file = env["FAULT_MODE_FILE"]
      @mode_file_seen = nil
      @log = env["FAULT_LOG"] && File.open(env["FAULT_LOG"], File::WRONLY | File::APPEND | File::CREAT, 0o644)
      @log&.sync = true
      classifier = Gitlab::Cells::Learn::Classifier.new(
        routes: File.read(File.expand_path("../shared/corpus/gitlabish-routes.json", root)),
        rules: File.read(File.join(root, "rules", "gitlab.json"))
      )
      @learn = Gitlab::Cells::Learn::Endpoint.new(classifier: classifier, resolver: method(:resolve), default_cell: "cell_0")
    end

    def call(env)
      path = env["PATH_INFO"].to_s
      case path
      when LEARN_PATH then learn(env)
      when "/-/faults/stats" then json(200, stats)
      when "/-/faults/mode" then control(env)
      else record(env, path)
      end
    end

    private

    def resolve(entity)
      case entity.kind
      when :route_path, :username then Faults.owner(entity.key.split("/").first)
      end
    end

    def learn(env)
      mode, slow_ms = current_mode
      count(:learn)
      if mode == "slow"
        sleep(slow_ms / 1000.0)
        count(:slept)
      end
      return @learn.call(env) unless mode == "garbage"

      body = GARBAGE[(count(:garbage) - 1) % GARBAGE.size]
      [200, { "Content-Type" => "application/json", "Content-Length" => body.bytesize.to_s }, [body]]
    end

    def record(env, path)
      mode, slow_ms = current_mode
      id = env["HTTP_X_REQUEST_ID"]
      if id.nil? || id.empty?
        count(:unidentified)
      else
        line = "#{id} #{env["REQUEST_METHOD"]} #{path}\n"
        @lock.synchronize { @log&.write(line) }
        count(:recorded)
      end
      if mode == "slow"
        sleep(slow_ms / 1000.0)
        count(:slept)
      end
      body = "#{@name} #{id}\n"
      headers = { "Content-Type" => "text/plain", "Content-Length" => body.bytesize.to_s, "X-Faults-Cell" => @name,
                  "Cache-Control" => "no-store" }
      headers["X-Request-Id"] = id if id && !id.empty?
      [200, headers, [body]]
    end

    def control(env)
      return json(405, "error" => "method_not_allowed", "message" => "POST /-/faults/mode?mode=...") unless env["REQUEST_METHOD"] == "POST"

      params = Rack::Utils.parse_query(env["QUERY_STRING"].to_s)
      @lock.synchronize { set_mode(params["mode"], params["ms"]) }
      json(200, stats)
    rescue ArgumentError => e
      json(400, "error" => "invalid_mode", "message" => e.message)
    end

    def current_mode
      @lock.synchronize do
        read_mode_file if @mode_file
        [@mode, @slow_ms]
      end
    end

    # Called with @lock held.
    def read_mode_file
      st = File.stat(@mode_file)
      seen = [st.ino, st.mtime.to_r, st.size]
      return if seen == @mode_file_seen

      @mode_file_seen = seen
      mode, slow_ms = File.read(@mode_file).split
      set_mode(mode, slow_ms)
    rescue Errno::ENOENT
      nil
    rescue ArgumentError, SystemCallError => e
      warn "counting cell #{@name}: #{@mode_file}: #{e.message}; mode stays #{@mode}"
    end

    def set_mode(mode, slow_ms)
      raise ArgumentError, "mode #{mode.inspect} is not one of #{MODES.join(", ")}" unless MODES.include?(mode)
      raise ArgumentError, "ms #{slow_ms.inspect} is not a whole number of milliseconds (0..999999)" unless slow_ms.nil? || slow_ms.to_s.match?(/\A\d{1,6}\z/)

      @mode = mode
      @slow_ms = slow_ms.to_i unless slow_ms.nil?
    end

    def count(key)
      @lock.synchronize { @counts[key] += 1 }
    end

    def stats
      @lock.synchronize do
        { "cell" => @name, "pid" => Process.pid, "mode" => @mode, "slow_ms" => @slow_ms,
          "recorded" => @counts[:recorded], "unidentified" => @counts[:unidentified], "learn" => @counts[:learn],
          "garbage" => @counts[:garbage], "slept" => @counts[:slept] }
      end
    end

    def json(status, body)
      text = JSON.generate(body)
      [status, { "Content-Type" => "application/json", "Content-Length" => text.bytesize.to_s, "Cache-Control" => "no-store" }, [text]]
    end
  end
end

begin
  run Faults::CountingCell.new(root: root)
rescue ArgumentError, KeyError, SystemCallError, Gitlab::Cells::Learn::Error => e
  warn "counting cell #{ENV.fetch("CELL_NAME", nil)}: #{e.message}"
  exit 78
end
