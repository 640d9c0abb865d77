# frozen_string_literal: true

# A small cell for spec/router_e2e_spec.rb, served by Puma: the gem's learn endpoint and
# middleware over the shared corpus's routes and GitLab's rules, in front of a page that says who
# served it. Every request is recorded (kind, method, path, learn path_info, X-Request-Id, status)
# and the records are served at GET /-/e2e/counts, so that the spec can assert each hop from what
# the cells themselves saw.
#
# Environment:
#   E2E_CELL         this cell's name
#   E2E_CELLS        every cell name, comma separated (the middleware's configured cells)
#   E2E_DEFAULT      the default cell (unknown routes, fixed rules)
#   E2E_OWNERS       top-level namespace owners: "alpha=cell_a,bravo=cell_b"; other namespaces belong to no cell
#   E2E_LEARN        normal (default) | garbage (200 with a body that is not JSON) |
#                    unknown_cell (the real answer, naming cell "cell_nowhere" instead) |
#                    hostile (a cell trying to capture others' traffic: learn answers claiming every path,
#                    route families or others' namespaces for itself, cache headers claiming the same on
#                    every page it serves; see HOSTILE_ANSWERS)
#   E2E_LEARN_TOKENS the learn endpoint's token(s), comma separated (two while rotating); empty: no check
#   E2E_HOLD_LEARN   "PREFIX=FILE": learn requests for paths under PREFIX are answered only once FILE
#                    exists (at most HOLD_MAX seconds later), so that a test can gather requests behind one
#                    learn request
#   E2E_ROUTES       route table (default ../shared/corpus/gitlabish-routes.json)

require "json"
require "logger"

root = File.expand_path("../../..", __dir__)
$LOAD_PATH.unshift(File.join(root, "lib")) unless $LOAD_PATH.include?(File.join(root, "lib"))
require "gitlab/cells/learn"

module E2ECell
  LEARN_PATH = Gitlab::Cells::Learn::Endpoint::MOUNT_PATH

  # Outermost layer: /-/health, /-/e2e/counts, X-Served-By, and one record per request.
  class Recorder
    def initialize(app, cell:)
      @app = app
      @cell = cell
      @records = []
      @lock = Mutex.new
    end

    def call(env)
      case env["PATH_INFO"]
      when "/-/health" then return [200, { "Content-Type" => "text/plain", "X-Served-By" => @cell }, ["ok"]]
      when "/-/e2e/counts" then return counts
      end

      status, headers, body = @app.call(env)
      headers = headers.dup if headers.frozen?
      headers["X-Served-By"] = @cell
      record(env, status)
      [status, headers, body]
    end

    private

    def record(env, status)
      learn = env["PATH_INFO"] == LEARN_PATH
      params = learn ? Rack::Utils.parse_query(env["QUERY_STRING"].to_s) : {}
      line = {
        "cell" => @cell, "kind" => learn ? "learn" : "page", "method" => env["REQUEST_METHOD"], "path" => env["PATH_INFO"],
        "learn_method" => params["method"], "path_info" => params["path_info"], "request_id" => env["HTTP_X_REQUEST_ID"],
        "status" => status.to_i, "t" => Process.clock_gettime(Process::CLOCK_MONOTONIC)
      }.compact
      @lock.synchronize { @records << line }
    end

    def counts
      records = @lock.synchronize { @records.dup }
      body = JSON.generate(
        "cell" => @cell, "pid" => Process.pid,
        "counts" => { "learn" => records.count { |r| r["kind"] == "learn" }, "page" => records.count { |r| r["kind"] == "page" } },
        "records" => records
      )
      [200, { "Content-Type" => "application/json", "Cache-Control" => "no-store" }, [body]]
    end
  end

  # The learn endpoint, honest or not.
  class Learn
    # How long a held learn request waits for its release file at most.
    HOLD_MAX = 20

    def initialize(endpoint, mode:, hold:)
      raise ArgumentError, "E2E_LEARN=#{mode}: expected normal, garbage, unknown_cell or hostile" unless %w[normal garbage unknown_cell hostile].include?(mode)

      @endpoint = endpoint
      @mode = mode
      @hold = hold
      @cell = ENV.fetch("E2E_CELL")
      @turn = 0
      @lock = Mutex.new
    end

    # What a hostile cell answers, in turn, for a request path: (path, exact, cacheable) claimed for
    # itself. `:first`: the request's first segment; `:path`: the request path; `:entity`: the real
    # answer's path.
    HOSTILE_ANSWERS = [
      ["/", false, true], ["/", true, true], ["//", false, true], ["/api", false, true], ["/api/v4", false, true],
      ["/api/v4/projects", false, true], ["/users", false, true], ["/-", false, true], ["/groups", false, true],
      [:first, false, true], [:entity, false, true], [:path, true, true], [:path, true, false], [:entity, false, false]
    ].freeze

    def call(env)
      hold(Rack::Utils.parse_query(env["QUERY_STRING"].to_s)["path_info"].to_s) if @hold
      case @mode
      when "normal" then @endpoint.call(env)
      when "garbage" then [200, { "Content-Type" => "application/json", "Cache-Control" => "no-store" }, ['{"path": "/', "cell\": cell_"]]
      when "hostile" then hostile(env)
      when "unknown_cell"
        status, headers, body = @endpoint.call(env)
        text = +""
        body.each { |chunk| text << chunk }
        return [status, headers, [text]] unless status == 200

        answer = JSON.parse(text).merge("cell" => "cell_nowhere")
        json = JSON.generate(answer)
        [200, headers.merge("Content-Length" => json.bytesize.to_s), [json]]
      end
    end

    private

    def hostile(env)
      status, headers, body = @endpoint.call(env)
      text = +""
      body.each { |chunk| text << chunk }
      return [status, headers, [text]] unless status == 200

      real = JSON.parse(text)
      path_info = Rack::Utils.parse_query(env["QUERY_STRING"].to_s)["path_info"].to_s
      path, exact, cacheable = HOSTILE_ANSWERS[@lock.synchronize { (@turn += 1) % HOSTILE_ANSWERS.size }]
      path = { first: "/#{path_info.split("/")[1]}", path: path_info, entity: real["path"] }.fetch(path, path)
      answer = { "path" => path, "cell" => @cell, "source" => "routable" }
      answer["exact"] = true if exact
      answer["cacheable"] = false unless cacheable
      json = JSON.generate(answer)
      [200, headers.merge("Content-Length" => json.bytesize.to_s), [json]]
    end

    def hold(path_info)
      prefix, file = @hold
      return unless path_info == prefix || path_info.start_with?("#{prefix}/")

      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + HOLD_MAX
      sleep 0.005 until File.exist?(file) || Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
    end
  end

  # A hostile cell's pages: every response claims paths for this cell in X-Gitlab-Cell-Cache (one
  # shape per response, in turn), whatever it was asked for, and never answers 421.
  class HostilePages
    CLAIMS = ["path=/", "path=/; exact", "path=/api/v4", "path=/api/v4/projects", "path=/-", "path=/users", "path=/groups",
              "path=/alpha", "path=/bravo", "path=/api/v4/projects/1", "path=/groups/alpha", :path].freeze

    def initialize(app, cell)
      @app = app
      @cell = cell
      @turn = 0
      @lock = Mutex.new
    end

    def call(env)
      status, headers, body = @app.call(env)
      claim = CLAIMS[@lock.synchronize { (@turn += 1) % CLAIMS.size }]
      claim = "path=#{env["PATH_INFO"]}" if claim == :path
      [status, headers.merge("X-Gitlab-Cell-Cache" => "#{claim}; cell=#{@cell}"), body]
    end
  end

  # What GitLab would render: who served which path.
  class Page
    def initialize(cell)
      @cell = cell
    end

    def call(env)
      body = JSON.generate("cell" => @cell, "method" => env["REQUEST_METHOD"], "path" => env["PATH_INFO"], "request_id" => env["HTTP_X_REQUEST_ID"])
      [200, { "Content-Type" => "application/json" }, [body]]
    end
  end

  module_function

  def app(env, root)
    cell = env.fetch("E2E_CELL")
    cells = env.fetch("E2E_CELLS").split(",")
    default_cell = env.fetch("E2E_DEFAULT")
    owners = env.fetch("E2E_OWNERS", "").split(",").to_h { |pair| pair.split("=", 2) }
    hold = env["E2E_HOLD_LEARN"].to_s.empty? ? nil : env["E2E_HOLD_LEARN"].split("=", 2)

    rules = JSON.parse(File.read(File.join(root, "rules", "gitlab.json")))
    rules["default_cell"] = default_cell
    rules["fixed"].each { |rule| rule["cell"] = default_cell if rule.key?("cell") }
    routes = env["E2E_ROUTES"] || File.expand_path("../shared/corpus/gitlabish-routes.json", root)
    classifier = Gitlab::Cells::Learn::Classifier.new(routes: File.read(routes), rules: rules)
    resolver = ->(entity) { owners[entity.key.to_s.split("/").first] }
    logger = Logger.new($stderr, progname: cell)

    tokens = env.fetch("E2E_LEARN_TOKENS", "").split(",")
    endpoint = Gitlab::Cells::Learn::Endpoint.new(classifier: classifier, resolver: resolver, default_cell: default_cell, logger: logger,
                                                  token: tokens.empty? ? nil : tokens)
    mode = env.fetch("E2E_LEARN", "normal")
    learn = Learn.new(endpoint, mode: mode, hold: hold)
    pages = if mode == "hostile"
              HostilePages.new(Page.new(cell), cell)
            else
              Gitlab::Cells::Learn::Middleware.new(Page.new(cell), classifier: classifier, resolver: resolver, cell: cell,
                                                                   default_cell: default_cell, cells: cells, logger: logger)
            end
    dispatch = ->(rack_env) { rack_env["PATH_INFO"] == LEARN_PATH ? learn.call(rack_env) : pages.call(rack_env) }
    Recorder.new(dispatch, cell: cell)
  end
end

run E2ECell.app(ENV, root)
