# frozen_string_literal: true

# GitLab's own routing specs (`spec/routing/*_spec.rb` of gitlabhq, MIT licensed), as requests
# nobody on this project wrote: each `expect(get(path)).to route_to(...)` there became one line
# of `fixtures/gitlab_routing_specs.jsonl` (its file and commit kept on the line; 390 lines from
# 11 files, shared examples and loops expanded by hand, the older `.should route_to` form
# included; redirects, `not_to`/`be_routable` and paths built from test data left out). Those paths
# were written by GitLab's engineers to pin down their own routing: `%23`/`%2B`/`@` in branch
# names, dotted project names, `.tar.bz2` archive formats, nested groups, legacy paths.
#
# They go through Rails' own router and ours on GitLab CE's route table
# (`../shared/corpus/gitlab-ce.routes.json` drawn into a RouteSet), which must agree on every
# route that matches, in Rails' order, with the same parameters. GitLab's expectation itself
# (`route_to`) comes from another GitLab version than the table's, so it is counted and printed,
# and asserted only as far as Rails bears it out: wherever Rails' matches name the expected route,
# ours must too.
RSpec.describe "GitLab's routing specs on GitLab CE's route table" do
  fixture = File.join(__dir__, "fixtures", "gitlab_routing_specs.jsonl")
  vectors = File.readlines(fixture).map { |line| JSON.parse(line) }

  before(:context) do
    @table = DrawRoutes.load_table(File.join(CORPUS_DIR, "gitlab-ce.routes.json"))
    @route_set = DrawRoutes.draw(@table)
    @classifier = Gitlab::Cells::Learn::Classifier.from_rails(@route_set)
    @index_of = @route_set.routes.routes.each_with_index.to_h
  end

  # Every route Rails' router yields for the request, in its order: [index, path parameters].
  def rails_matches(method, path)
    found = []
    RoutesRailsOracle.each_pick(@route_set, method, path) { |pick| found << [@index_of.fetch(pick.route), pick.params] }
    found
  end

  def ours(method, path)
    @classifier.matches(method, path).map { |m| [m.route.index, m.params] }
  end

  def same?(rails, ours)
    rails.size == ours.size && rails.zip(ours).all? { |(ri, rp), (oi, op)| ri == oi && RoutesRailsOracle.same_params?(rp, op) }
  end

  # The routes of the table serving `endpoint` ("controller#action") for `method`.
  def serving(endpoint, method)
    @serving ||= Hash.new do |memo, (wanted, verb)|
      controller, action = wanted.split("#", 2)
      memo[[wanted, verb]] = @table.each_index.select do |i|
        row = @table[i]
        defaults = row["defaults"] || {}
        verbs = row["verb"].to_s.split("|")
        defaults["controller"] == controller && defaults["action"] == action && (verbs.empty? || verbs.include?(verb))
      end
    end
    @serving[[endpoint, method]]
  end

  it "reads GitLab's routing specs from the fixture" do
    expect(vectors.size).to be > 200
    expect(vectors).to all(include("file", "commit", "method", "path", "endpoint", "params"))
    expect(vectors.map { |v| v["file"] }.uniq.size).to be > 5
  end

  it "matches every route Rails matches, in Rails' order, with Rails' parameters" do
    wrong = vectors.filter_map do |v|
      rails = rails_matches(v["method"], v["path"])
      got = ours(v["method"], v["path"])
      next if same?(rails, got)

      "#{v["method"]} #{v["path"]} (#{v["file"]}): Rails #{rails.inspect}; ours #{got.inspect}"
    end
    expect(wrong).to be_empty, "#{wrong.size} of #{vectors.size} disagree with Rails:\n#{wrong.first(20).join("\n")}"
  end

  it "names GitLab's expected route among the matches wherever the table has that route" do
    present = vectors.reject { |v| serving(v["endpoint"], v["method"]).empty? }
    # Per request: where among our matches the first route serving the expected endpoint is.
    found = present.to_h { |v| [v, ours(v["method"], v["path"]).map(&:first)] }
    at = present.to_h { |v| [v, found[v].index { |i| serving(v["endpoint"], v["method"]).include?(i) }] }
    missing = present.filter_map do |v|
      next if at[v]

      rails_named = rails_matches(v["method"], v["path"]).map(&:first) & serving(v["endpoint"], v["method"])
      "#{v["method"]} #{v["path"]} -> #{v["endpoint"]} (#{v["file"]}): Rails names it: #{!rails_named.empty?}"
    end
    # Reachable: only routes a host can turn down (dynamic constraints, mounted applications) come
    # before it, as with GitLab's stubbed constrainers the spec relies on.
    reachable = present.count { |v| at[v] && found[v].first(at[v]).all? { |i| @table[i]["dynamic_constraints"] || @table[i]["mounted"] } }
    puts format("\n  [gitlab routing specs] %<n>d requests from %<f>d files; %<p>d name an endpoint this table serves, " \
                "%<m>d of them among the matches, %<r>d reachable behind routes a host can decline",
                n: vectors.size, f: vectors.map { |v| v["file"] }.uniq.size, p: present.size, m: present.size - missing.size, r: reachable)
    # Where Rails itself does not match the route GitLab expected, the table is another version's.
    ours_only = missing.grep(/Rails names it: true/)
    expect(ours_only).to be_empty, ours_only.first(20).join("\n")
  end
end
