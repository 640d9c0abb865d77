# frozen_string_literal: true

# One cell of the demo topology: a Rack application (served by Puma, see config.ru) that runs the
# gem the way GitLab would:
#
#   /api/v4/cells/learn  Gitlab::Cells::Learn::Endpoint   the router's pre-flight question
#   everything else      Gitlab::Cells::Learn::Middleware (421 for entities another cell owns,
#                        X-Gitlab-Cell-Cache on cacheable answers) in front of GitLab-like pages
#
# Environment:
#   CELL_NAME     this cell (must be a row of the cells table)
#   DATABASE      SQLite file (seeded by demo/seed.rb), or DATABASE_URL=postgres://... (needs ruby-pg)
#   ROUTES        route table, corpus format (default ../shared/corpus/gitlabish-routes.json)
#   CLASSIFIER    optional artifact written by Classifier#dump (the launcher compiles once for all cells)
#   REQUEST_LOG   optional JSON-lines file: one line per request this cell answered

require "json"
require "logger"

module Demo
  # The repository root.
  ROOT = File.expand_path("../..", __dir__)
end
$LOAD_PATH.unshift(File.join(Demo::ROOT, "lib")) unless $LOAD_PATH.include?(File.join(Demo::ROOT, "lib"))
require "gitlab/cells/learn"
require_relative "db"
require_relative "directory"
require_relative "pages"
require_relative "../seed"

module Demo
  module Cell
    class ConfigError < StandardError; end

    DEFAULT_ROUTES = File.expand_path("../shared/corpus/gitlabish-routes.json", ROOT)
    GITLAB_RULES = File.join(ROOT, "rules", "gitlab.json")
    # The cell GitLab's default rules name for cluster-wide pages (profile, users, admin, help):
    # the legacy cell, i.e. the oldest cell of the topology.
    RULES_LEGACY_CELL = "cell_0"

    module_function

    # GitLab's default learn rules fitted to the seed's cells: unknown routes go to the newest cell,
    # the cluster-wide pages GitLab's rules pin to `cell_0` go to the oldest (legacy) cell.
    #
    # @param cells [Array<Hash>] rows of the cells table, oldest first
    # @return [Hash]
    def rules_for(cells)
      raise ConfigError, "the cells table is empty: seed the database first (ruby demo/seed.rb FILE)" if cells.empty?

      legacy = cells.first["name"]
      newest = cells.max_by { |c| [c["created_at"], c["name"]] }["name"]
      rules = JSON.parse(File.read(GITLAB_RULES))
      rules["default_cell"] = newest
      rules["fixed"].each do |rule|
        next unless rule.key?("cell")
        next rule["cell"] = legacy if rule["cell"] == RULES_LEGACY_CELL
        next if cells.any? { |c| c["name"] == rule["cell"] }

        raise ConfigError, "#{GITLAB_RULES}: fixed rule #{rule["path"]} names #{rule["cell"]}, which is not a cell of the seed"
      end
      rules
    end

    # @return [Gitlab::Cells::Learn::Classifier]
    def classifier(rules:, routes: DEFAULT_ROUTES, artifact: nil)
      if artifact && !artifact.empty?
        raise ConfigError, "CLASSIFIER=#{artifact}: no such file" unless File.file?(artifact)

        loaded = Gitlab::Cells::Learn::Classifier.load(File.binread(artifact))
        fixed = ->(r) { r["fixed"].map { |f| [f["path"], f["cell"]] } }
        if loaded.default_cell != rules["default_cell"] || fixed.call(loaded.rules) != fixed.call(rules)
          raise ConfigError, "CLASSIFIER=#{artifact} was compiled with other rules (default cell #{loaded.default_cell}, " \
                             "the seed's is #{rules["default_cell"]}): delete it or compile it again"
        end
        return loaded
      end
      raise ConfigError, "ROUTES=#{routes}: no such file (the shared corpus sits at ../shared beside the repository)" unless File.file?(routes)

      Gitlab::Cells::Learn::Classifier.new(routes: File.read(routes), rules: rules)
    end

    # The routers' learn token, from LEARN_TOKEN_FILE (one trailing newline ignored, as the
    # router reads it); nil when unset (the learn endpoint is then open).
    def learn_token(env)
      file = env["LEARN_TOKEN_FILE"].to_s
      return nil if file.empty?
      raise ConfigError, "LEARN_TOKEN_FILE=#{file}: no such file" unless File.file?(file)

      File.read(file).chomp
    end

    # The whole cell, from the environment.
    # @return [#call] a Rack application
    def build(env = ENV, logger: Logger.new($stderr, progname: env["CELL_NAME"]))
      cell = env["CELL_NAME"].to_s
      raise ConfigError, "CELL_NAME is not set" if cell.empty?

      if env["DATABASE_URL"].to_s.empty? && !env["DATABASE"].to_s.empty? && !File.file?(env["DATABASE"])
        raise ConfigError, "DATABASE=#{env["DATABASE"]} does not exist: seed it first (ruby demo/seed.rb #{env["DATABASE"]})"
      end

      db = DB.connect(database: env["DATABASE"], url: env["DATABASE_URL"])
      cells = begin
        Seed.cells(db)
      rescue DB::Error => e
        raise ConfigError, "#{db.describe} is not seeded (#{e.message}): run ruby demo/seed.rb"
      end
      row = cells.find { |c| c["name"] == cell } or
        raise ConfigError, "CELL_NAME=#{cell} is not a cell of #{db.describe} (cells: #{cells.map { |c| c["name"] }.join(", ")})"

      rules = rules_for(cells)
      classifier = classifier(rules: rules, routes: env["ROUTES"] || DEFAULT_ROUTES, artifact: env["CLASSIFIER"])
      directory = Directory.new(db)
      resolver = directory.to_proc
      names = cells.map { |c| c["name"] }
      default_cell = classifier.default_cell

      endpoint = Gitlab::Cells::Learn::Endpoint.new(classifier: classifier, resolver: resolver, default_cell: default_cell, logger: logger,
                                                    token: learn_token(env))
      pages = Pages.new(cell: cell, region: row["region"], classifier: classifier, directory: directory)
      middleware = Gitlab::Cells::Learn::Middleware.new(pages, classifier: classifier, resolver: resolver, cell: cell,
                                                               default_cell: default_cell, cells: names, logger: logger)
      learn_path = Gitlab::Cells::Learn::Endpoint::MOUNT_PATH
      dispatch = ->(rack_env) { rack_env["PATH_INFO"] == learn_path ? endpoint.call(rack_env) : middleware.call(rack_env) }
      Frame.new(dispatch, cell: cell, log: env["REQUEST_LOG"], learn_path: learn_path)
    end

    # The outermost layer: `X-Served-By`, GitLab's `/-/health`, and a JSON line per request (for the
    # demo's hop-by-hop traces: what each cell was asked and what it answered).
    class Frame
      def initialize(app, cell:, log:, learn_path:)
        @app = app
        @cell = cell
        @learn_path = learn_path
        @lock = Mutex.new
        @log = log && !log.empty? ? File.open(log, "a").tap { |f| f.sync = true } : nil
      end

      def call(env)
        return [200, { "Content-Type" => "text/plain", "X-Served-By" => @cell }, ["GitLab OK"]] if env["PATH_INFO"] == "/-/health"

        started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
        status, headers, body = @app.call(env)
        headers = headers.dup if headers.frozen?
        headers["X-Served-By"] = @cell
        if @log
          learn = nil
          if env["PATH_INFO"] == @learn_path
            text = +""
            body.each { |chunk| text << chunk }
            body.close if body.respond_to?(:close)
            body = [text]
            learn = text
          end
          record(env, status, headers, learn, started)
        end
        [status, headers, body]
      end

      private

      def record(env, status, headers, learn, started)
        header = ->(name) { headers.find { |k, _| k.casecmp?(name) }&.last }
        line = {
          "t" => Time.now.to_f.round(6),
          "cell" => @cell,
          "method" => env["REQUEST_METHOD"],
          "path" => env["PATH_INFO"],
          "query" => env["QUERY_STRING"].to_s.empty? ? nil : env["QUERY_STRING"],
          "status" => status.to_i,
          "ms" => ((Process.clock_gettime(Process::CLOCK_MONOTONIC) - started) * 1000).round(3),
          "learn" => learn,
          "cache_header" => header.call("X-Gitlab-Cell-Cache"),
          "owner" => header.call("X-Gitlab-Cell-Owner"),
          "location" => header.call("Location"),
          "forwarded_host" => env["HTTP_X_FORWARDED_HOST"],
          "session" => env["HTTP_COOKIE"].to_s.include?("_gitlab_session=")
        }.compact
        @lock.synchronize { @log.write("#{JSON.generate(line)}\n") }
      end
    end
  end
end
