# frozen_string_literal: true

require "json"

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
module BenchTables
  CORPUS_DIR = File.expand_path("../../../shared/corpus", __dir__)

  # A table to benchmark: corpus-format rows (definition order) and the [method, path] requests
  # cycled through in the timed loops.
  Table = Struct.new(:name, :kind, :rows, :requests, :description, keyword_init: true)

  # The prefix whose requirements the synthetic routes copy.
  PROJECT_SCOPE = "/*namespace_id/:project_id/-/"

  module_function

  # @param name [String] a corpus table name (`gitlabish` for gitlabish-routes.json)
  # @return [Table]
  # @raise [ArgumentError] if the table or its request vectors are missing or empty
  def corpus(name, dir: CORPUS_DIR)
    routes_path = File.join(dir, "#{name}-routes.json")
    requests_path = File.join(dir, "#{name}-requests.jsonl")
    [routes_path, requests_path].each do |path|
      raise ArgumentError, "corpus table #{name.inspect}: #{path} does not exist" unless File.file?(path)
    end
    rows = JSON.parse(File.read(routes_path))
    requests = File.readlines(requests_path, chomp: true).reject(&:empty?).each_with_index.map do |line, i|
      vector = JSON.parse(line)
      method, path = vector.values_at("method", "path")
      unless method.is_a?(String) && path.is_a?(String)
        raise ArgumentError, "#{requests_path}:#{i + 1}: a vector needs string \"method\" and \"path\""
      end

      [method, path]
    end
    raise ArgumentError, "#{routes_path} has no routes" if rows.empty?
    raise ArgumentError, "#{requests_path} has no request vectors" if requests.empty?

    Table.new(name: name, kind: "corpus", rows: rows, requests: requests,
              description: "#{File.basename(routes_path)} (#{rows.size} routes) with the recorded vectors " \
                           "of #{File.basename(requests_path)} (#{requests.size}, cycled)")
  end

  # The `namespace_id`/`project_id` requirements of the first `/*namespace_id/:project_id/-/` route
  # of a corpus table.
  # @return [Hash] corpus-format requirements
  def project_requirements(corpus_rows)
    row = corpus_rows.find { |r| r["path"].start_with?(PROJECT_SCOPE) && r.dig("requirements", "project_id") }
    raise ArgumentError, "no #{PROJECT_SCOPE} route with a project_id requirement in the corpus table" unless row

    row["requirements"].slice("namespace_id", "project_id")
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
