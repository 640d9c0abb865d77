# frozen_string_literal: true

require "json"
require_relative "../../spec/support/draw_routes"

# The route tables and request mixes `benches/classify_ips.rb` times.
#
# - The corpus table (`../shared/corpus/<name>-routes.json`, e.g. gitlabish: 201 GitLab-shaped
#   routes) with its recorded request vectors (`<name>-requests.jsonl`: method and path, cycled in
#   file order; about 1 in 7 matches no route).
# - Synthetic GitLab-scale tables: N project feature routes
#   `/*namespace_id/:project_id/-/feature_<i>(.:format)` (GET), each carrying the `namespace_id`
#   and `project_id` requirements of the corpus' first `/*namespace_id/:project_id/-/` route (the
#   shape of GitLab's `Gitlab::PathRegex` requirements: reserved-word lookaheads, `.git`/`.atom`
#   lookbehinds, `{0,254}` repetitions). Rails' Journey cannot put such routes in its simulator, so
#   it tries them one by one; the request mix hits the last routes of the table and misses
#   (see {BenchTables.synthetic_requests}).
# - GitLab's own route snapshot (`gitlab-route-templates.json`: 5,066 Rails and Grape templates
#   exported by GitLab, alphabetical, no verbs, no requirements) as a table of any-verb routes with
#   Rails' default requirements, requested with each template's `example` and `dottedExample`
#   (see {BenchTables.templates}).
module BenchTables
  CORPUS_DIR = File.expand_path("../../../shared/corpus", __dir__)

  # A table to benchmark: corpus-format rows (definition order) and the [method, path] requests
  # cycled through in the timed loops.
  # `excluded`: [row, reason] pairs left out of the table (and their requests), printed by the bench.
  # `routes_path`/`requests_path`: the files the table was read from as they are (nil for a table
  # built here), which `cells-learn bench` can time too.
  Table = Struct.new(:name, :kind, :rows, :requests, :description, :excluded, :routes_path, :requests_path,
                     keyword_init: true) do
    def initialize(**fields)
      super
      self.excluded ||= []
    end
  end

  TEMPLATES_FILE = "gitlab-route-templates.json"
  TEMPLATES_TABLE = "gitlab-templates"
  # Fixed seed of the templates' request shuffle (so every run times the same mix in the same order).
  TEMPLATES_SEED = 20_240_601

  # The prefix whose requirements the synthetic routes copy.
  PROJECT_SCOPE = "/*namespace_id/:project_id/-/"

  module_function

  # @param name [String] a corpus table name (`gitlabish` for gitlabish-routes.json)
  # @return [Table]
  # @raise [ArgumentError] if the table or its request vectors are missing or empty
  def corpus(name, dir: CORPUS_DIR)
    routes_path = File.join(dir, "#{name}-routes.json")
    requests_path = File.join(dir, "#{name}-requests.jsonl")
    begin
      rows, requests = read_table(routes_path, requests_path)
    rescue ArgumentError => e
      raise ArgumentError, "corpus table #{name.inspect}: #{e.message}"
    end

    Table.new(name: name, kind: "corpus", rows: rows, requests: requests, routes_path: routes_path, requests_path: requests_path,
              description: "#{File.basename(routes_path)} (#{rows.size} routes) with the recorded vectors " \
                           "of #{File.basename(requests_path)} (#{requests.size}, cycled)")
  end

  GITLAB_CE_TABLE = "gitlab-ce"
  GITLAB_CE_ROUTES = "gitlab-ce.routes.json"
  GITLAB_CE_REQUESTS = "gitlab-ce.recorded.jsonl"

  # GitLab CE's web routes (1,341, definition order; 850 with request-time constraint objects, 4
  # mounts) with the 4,033 requests Rails dispatched (`gitlab-ce.recorded.jsonl`, cycled in file
  # order): the headline table, a real GitLab table in Rails' order.
  #
  # Routed structurally, every request-time constraint holding: DrawRoutes draws the constrained
  # rows inside its always-true constraint object and the classifier is asked without a block, so
  # both sides pick the first route that matches path and verb (the recorded routes, which GitLab's
  # constrainers decided, are not the reference here; `cells-learn verify --host ideal` checks
  # those). The gate still checks that both sides pick the same route and parameters for every
  # request.
  # @return [Table]
  # @raise [ArgumentError] if the files are missing or empty
  def gitlab_ce(dir: CORPUS_DIR)
    routes_path = File.join(dir, GITLAB_CE_ROUTES)
    requests_path = File.join(dir, GITLAB_CE_REQUESTS)
    rows, requests = read_table(routes_path, requests_path)
    Table.new(name: GITLAB_CE_TABLE, kind: "gitlab-ce", rows: rows, requests: requests,
              routes_path: routes_path, requests_path: requests_path,
              description: "#{GITLAB_CE_ROUTES} (#{rows.size} routes, #{rows.count { |r| r["dynamic_constraints"] }} with " \
                           "request-time constraints, all holding) with the #{requests.size} requests of " \
                           "#{GITLAB_CE_REQUESTS} (cycled)")
  end

  # @return [Array(Array<Hash>, Array<Array(String, String)>)] the rows of a route table and the
  #   [method, path] of its request vectors
  # @raise [ArgumentError] if a file is missing, a vector malformed, or either is empty
  def read_table(routes_path, requests_path)
    [routes_path, requests_path].each do |path|
      raise ArgumentError, "#{path} does not exist" unless File.file?(path)
    end
    rows = JSON.parse(File.read(routes_path))
    requests = File.readlines(requests_path, chomp: true).reject(&:empty?).each_with_index.map do |line, i|
      method, path = JSON.parse(line).values_at("method", "path")
      raise ArgumentError, "#{requests_path}:#{i + 1}: a vector needs string \"method\" and \"path\"" unless method.is_a?(String) && path.is_a?(String)

      [method, path]
    end
    raise ArgumentError, "#{routes_path} has no routes" if rows.empty?
    raise ArgumentError, "#{requests_path} has no request vectors" if requests.empty?

    [rows, requests]
  end

  # The `namespace_id`/`project_id` requirements of the first `/*namespace_id/:project_id/-/` route
  # of a corpus table.
  # @return [Hash] corpus-format requirements
  def project_requirements(corpus_rows)
    row = corpus_rows.find { |r| r["path"].start_with?(PROJECT_SCOPE) && r.dig("requirements", "project_id") }
    raise ArgumentError, "no #{PROJECT_SCOPE} route with a project_id requirement in the corpus table" unless row

    row["requirements"].slice("namespace_id", "project_id")
  end

  # GitLab's route snapshot as a route table, in the snapshot's own (alphabetical) order. A
  # secondary table: alphabetically, `(/-/jira)/*namespace_id/:project_id(.:format)` is route #0
  # and Rails stops there for almost every example, so it says little about a real table (the
  # gitlab-ce table is the headline; benches/peers orders the snapshot specific-first).
  #
  # Each template becomes the corpus row GitLab's Rails would have drawn for it, as the Rust core's
  # templates.rs reads the snapshot (`Classifier.new` takes only the corpus route format, so the
  # conversion is done here): `{"verb" => "" (any verb), "path" => template, plus "(.:format)" when
  # it has `acceptsFormat` and does not name `:format` already, "requirements" => {} (Rails'
  # defaults), "defaults" => {"controller" => "gitlab_templates", "action" => "template_<i>"}}`.
  #
  # Rows Rails' mapper cannot draw as written are excluded, with their requests, and listed in
  # `excluded`: the mapper rewrites some Grape specs (`/:id/(-/)epics` becomes `/:id(/-/)epics`,
  # `\(\)` becomes `%5C(%5C)`), so the route Rails would serve is not the template's. Which rows
  # that is, is asked of Rails itself: the rows are drawn once with DrawRoutes' per-row mapping and
  # every route whose spec differs from its row is left out.
  #
  # Requests: GET of every kept template's `example` and `dottedExample`, shuffled with a fixed
  # seed ({TEMPLATES_SEED}) so that the part of the mix a slow side reaches in a short report is
  # a fair sample of all of it (the file is sorted by template).
  #
  # @param limit [Integer, nil] use an evenly spaced sample of this many templates (nil: all)
  # @return [Table]
  # @raise [ArgumentError] if the snapshot is missing, empty or malformed
  def templates(limit: nil, dir: CORPUS_DIR)
    path = File.join(dir, TEMPLATES_FILE)
    raise ArgumentError, "#{TEMPLATES_TABLE}: #{path} does not exist" unless File.file?(path)

    entries = JSON.parse(File.read(path))
    raise ArgumentError, "#{path} is not a non-empty JSON array of templates" unless entries.is_a?(Array) && !entries.empty?

    entries.each_with_index do |e, i|
      next if e.is_a?(Hash) && e["template"].is_a?(String) && e["example"].is_a?(String) &&
              (e["dottedExample"].nil? || e["dottedExample"].is_a?(String))

      raise ArgumentError, "#{path}: entry #{i} needs string \"template\" and \"example\" (and \"dottedExample\" if any)"
    end
    total = entries.size
    entries = evenly_spaced(entries, limit) if limit
    rows = entries.each_with_index.map { |e, i| template_row(e, i) }
    excluded_at = undrawable(rows)
    excluded = excluded_at.map { |i, reason| [rows[i], reason] }
    kept = entries.each_index.reject { |i| excluded_at.key?(i) }
    rows = kept.each_with_index.map { |i, j| rows[i].merge("index" => j) }
    requests = kept.flat_map { |i| entries[i].values_at("example", "dottedExample").compact.map { |url| ["GET", url] } }
    requests = requests.shuffle(random: Random.new(TEMPLATES_SEED))

    sample = limit && limit < total ? "an evenly spaced sample of #{entries.size} of its #{total} templates" : "#{total} templates"
    Table.new(name: TEMPLATES_TABLE, kind: "templates", rows: rows, requests: requests, excluded: excluded,
              description: "#{TEMPLATES_FILE}: #{sample} as any-verb routes in the file's (alphabetical) order, " \
                           "#{excluded.size} excluded; #{requests.size} requests: GET of each example and " \
                           "dottedExample (shuffled, seed #{TEMPLATES_SEED})")
  end

  # The corpus row for one snapshot entry (see {templates}).
  def template_row(entry, index)
    path = entry["template"].dup
    path << "(.:format)" if entry["acceptsFormat"] && !path.include?(":format")
    {
      "index" => index, "verb" => "", "path" => path, "requirements" => {},
      "defaults" => { "controller" => "gitlab_templates", "action" => "template_#{index}" },
      "name" => nil, "dynamic_constraints" => false, "mounted" => false
    }
  end

  # Rows whose route, drawn by Rails' mapper, does not have the row's spec.
  # @return [Hash{Integer=>String}] row index => reason
  def undrawable(rows)
    route_set = ActionDispatch::Routing::RouteSet.new
    reasons = {}
    route_set.draw do
      rows.each_with_index do |row, i|
        before = route_set.routes.routes.size
        begin
          DrawRoutes::Row.new(row).apply(self)
        rescue StandardError => e
          reasons[i] = "Rails' mapper rejects it (#{e.class}: #{e.message.lines.first.to_s.strip})"
          next
        end
        added = route_set.routes.routes[before..]
        if added.size != 1
          reasons[i] = "Rails' mapper drew #{added.size} routes for it"
        elsif (spec = added.first.path.spec.to_s) != row["path"]
          reasons[i] = "Rails' mapper rewrites the spec to #{spec.inspect}"
        end
      end
    end
    reasons
  end

  # `count` items of `items`, evenly spaced, the first included.
  def evenly_spaced(items, count)
    raise ArgumentError, "a templates sample needs at least 1 template, not #{count}" unless count.is_a?(Integer) && count >= 1
    return items if count >= items.size

    Array.new(count) { |k| items[k * items.size / count] }
  end

  # @param size [Integer] number of glob routes (>= 10)
  # @param requirements [Hash] from {project_requirements}
  # @return [Table]
  def synthetic(size, requirements)
    raise ArgumentError, "a synthetic table needs at least 10 routes, not #{size}" unless size.is_a?(Integer) && size >= 10

    rows = Array.new(size) do |i|
      {
        "index" => i, "verb" => "GET", "path" => "#{PROJECT_SCOPE}feature_#{i}(.:format)",
        "name" => "project_feature_#{i}", "requirements" => requirements,
        "defaults" => { "controller" => "projects/feature_#{i}", "action" => "show" },
        "dynamic_constraints" => false, "mounted" => false
      }
    end
    requests = synthetic_requests(size)
    Table.new(name: "synthetic-#{size}", kind: "synthetic", rows: rows, requests: requests,
              description: "#{size} glob routes #{PROJECT_SCOPE}feature_<i>(.:format) with GitLab's " \
                           "namespace_id/project_id requirements; #{requests.size} requests: late routes and misses")
  end

  # Requests for a synthetic table of `size` routes: half hit one of the last 8 routes (plain,
  # nested groups, `.json`, HEAD), half match no route (a feature past the end, an unknown feature,
  # a trailing segment, a reserved top-level namespace, a `.git` project, a wrong verb), so Rails
  # has to try (nearly) every route for each.
  # @return [Array<Array(String, String)>]
  def synthetic_requests(size)
    late = (size - 8...size).to_a
    hits = late.each_with_index.map do |i, k|
      case k % 4
      when 0 then ["GET", "/gitlab-org/gitlab/-/feature_#{i}"]
      when 1 then ["GET", "/gitlab-org/security/sub-group/gitlab-foss/-/feature_#{i}"]
      when 2 then ["GET", "/john.doe/my_project/-/feature_#{i}.json"]
      else ["HEAD", "/gitlab-org/gitlab/-/feature_#{i}"]
      end
    end
    misses = [
      ["GET", "/gitlab-org/gitlab/-/feature_#{size}"],
      ["GET", "/gitlab-org/gitlab/-/no_such_feature"],
      ["GET", "/gitlab-org/gitlab/-/feature_#{late.last}/extra"],
      ["GET", "/admin/gitlab/-/feature_#{late.last}"],
      ["GET", "/gitlab-org/gitlab.git/-/feature_#{late.last}"],
      ["POST", "/gitlab-org/gitlab/-/feature_#{late.last}"],
      ["GET", "/gitlab-org/gitlab/feature_#{late.last}"],
      ["DELETE", "/gitlab-org/gitlab/-/feature_#{late.first}"]
    ]
    hits.zip(misses).flatten(1)
  end
end
