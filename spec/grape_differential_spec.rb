# frozen_string_literal: true

require "rails"
require "action_dispatch"

# Differential test against Grape's own router (Debian's grape 1.6): a GitLab-shaped API
# (spec/support/grape_gitlab_api.rb) is read through GrapeRoutes (Classifier.from_grape), and for
# every generated request — each route filled from its own pattern, the RoutesRequests
# near-misses, GitLab's encoded-slash ids (`gitlab-org%2Fgitlab`), `.json` formats, wrong verbs,
# HEAD and OPTIONS — the gem must pick the route Grape's router picks, with the same parameters;
# where Grape answers 405 or has no route, the gem has none either; where Grape answers an
# OPTIONS request itself (204 + Allow), the gem picks the auto-OPTIONS route of that pattern.
#
# The same API is also mounted in a Rails RouteSet at `/` (as GitLab mounts API::API) between
# Rails routes, and Classifier.from_rails must agree with what the whole Rails + Grape stack
# serves, Grape's cascade to later Rails routes included.
module GrapeDifferential
  # GitLab's own spellings of project and group ids, and the suffixes its API gets.
  ID_SPELLINGS = %w[
    gitlab-org%2Fgitlab gitlab-org%2fgitlab gitlab-org%2Fsub%2Fproject 42 gitlab-org
    foo.json foo.bar a%2Fb.json john.doe %2F gitlab-org%2F
  ].freeze
  PROJECT_SUFFIXES = [
    "", ".json", "/", "/issues", "/issues.json", "/issues/1", "/issues/1.json", "/issues/1.xml",
    "/merge_requests/7/changes", "/merge_requests/7/merge.json", "/repository/files/a%2Fb.rb/raw",
    "/repository/files/a/b.rb", "/repository/files/a/b.rb/raw.json", "/repository/files/README.md",
    "/repository/commits", "/repository/commits/abc123", "/repository/commits/abc123.json",
    "/repository/archive", "/repository/archive.tar.gz", "/repository/archive.zip",
    "/packages/generic/pkg/1.0/file.tar.gz", "/packages/generic/a/b/c.json", "/custom", "/custom.json",
    "/hooks/1/test", "/hooks/1/test.json", "/labels/bug", "/fork", "/unknown", "/issues/1/extra"
  ].freeze
  METHODS = %w[GET HEAD POST PUT PATCH DELETE OPTIONS].freeze

  # Extra requests GitLab's clients send, beyond the generated ones.
  module_function

  def gitlab_requests
    paths = ID_SPELLINGS.flat_map do |id|
      PROJECT_SUFFIXES.map { |suffix| "/api/v4/projects/#{id}#{suffix}" } +
        ["/api/v4/groups/#{id}", "/api/v4/groups/#{id}/projects", "/api/v4/groups/#{id}.json",
         "/api/v4/namespaces/#{id}/exists", "/api/v4/users/#{id}", "/api/v4/users/#{id}/projects"]
    end
    paths += %w[
      /api/v4/version /api/v4/version.json /api/v3/version /api/v5/projects /api/%76%34/version /api/v4
      /api /api/ /api/v4/ /api/v4/projects?per_page=100 /api/v4/snippets/1/raw /api/v4/a.b/dotted
      /api/v4/a.b.c/dotted /api/v4/version.xml /api/v4/VERSION /API/v4/version /api//v4/version
      //api/v4/version /api/v4/version/ /api/v4/markdown /api/v4/unknown/route /unknown /
    ]
    # Percent-encoded spellings of literal characters, which Mustermann matches (`u` or `%75`)
    # except for `/`; lower-case escapes too, which Rails upper-cases before Grape sees them.
    paths += %w[
      /api/v4/%70rojects/42 /api/v4/%70ROJECTS/42 /api/v4/projects/42/%69ssues.json /api/v4/projects/42%2Ejson
      /api/v4/projects/42%2ejson /%61pi/v4/version /%61%70%69/v4/version /api/v4/version%2Ejson
      /api%2Fv4/version /api/v4%2Fversion /api/v4/users%2F1 /api/v4/projects/42/issues%2F1 /api/v4/projects/42%2Fissues
      /api/v4/projects/42/repository/files/a%2Fb.rb/%72aw /api/v4/a%2Eb/dotted /api/v4/%76ersion /api/v4/ver%73ion.json
    ]
    paths.flat_map { |path| METHODS.map { |m| [m, path] } }
  end
end

RSpec.describe "Classifier.from_grape against Grape's router" do
  [false, true].each do |catch_all|
    context "a GitLab-shaped API#{catch_all ? " ending in `route :any, '*path'`" : ""}" do
      before(:context) do
        @api = GrapeGitlabApi.build(catch_all: catch_all)
        @table = Gitlab::Cells::Learn::GrapeRoutes.extract(@api)
        @classifier = Gitlab::Cells::Learn::Classifier.from_grape(@api)
      end

      it "reads every Grape route into the table, auto-OPTIONS included" do
        expect(@classifier.routes.size).to eq(@table.size)
        specific = @api.routes.reject { |r| r.request_method == "*" }
        expect(@table.first(specific.size).map { |r| r["verb"] }).to eq(specific.map(&:request_method))
        expect(@table.count { |r| r["verb"].empty? }).to eq(@api.routes.count { |r| r.request_method == "*" })
      end

      it "picks Grape's route and parameters for generated requests and GitLab-style near-misses" do
        requests = RoutesRequests.for_table(@table).map { |r| [r.method, r.path] }
        requests.concat(GrapeDifferential.gitlab_requests).uniq!

        kinds = Hash.new(0)
        unserved = 0
        started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
        failures = requests.filter_map do |method, path|
          answer = GrapeOracle.ask(@api, method, path)
          kinds[answer.kind] += 1
          unserved += 1 if answer.kind == :route && !answer.served
          GrapeOracle.disagreement(method, path, answer, @classifier.recognize(method, path))
        end
        elapsed = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
        puts format("\n  [grape differential] %s: %d requests compared (%d routed by Grape, %d refused by its versioner " \
                    "after routing, %d 405, %d auto-OPTIONS, %d no route) in %.1fs; %d disagreements",
                    catch_all ? "with catch-all" : "no catch-all", requests.size, kinds[:route], unserved,
                    kinds[:not_allowed], kinds[:options], kinds[:none], elapsed, failures.size)

        expect(requests.size).to be > 500
        expect(kinds[:route]).to be > 500
        expect(kinds[:not_allowed]).to be > 0 unless catch_all
        expect(kinds[:options]).to be > 0
        expect(failures).to be_empty, "#{failures.size} disagreements with Grape:\n#{failures.first(30).join("\n")}"
      end

      it "keeps GitLab's encoded-slash ids whole and unescaped" do
        found = @classifier.recognize("GET", "/api/v4/projects/gitlab-org%2Fgitlab/issues/12.json")
        expect(found.route.spec).to eq("/api/:version/projects/:id/issues/:issue_iid(.json)")
        expect(found.params).to eq("version" => "v4", "id" => "gitlab-org/gitlab", "issue_iid" => "12")
        answer = GrapeOracle.ask(@api, "GET", "/api/v4/projects/gitlab-org%2Fgitlab/issues/12.json")
        expect(answer.params).to eq(found.params)
      end
    end
  end

  context "served under a Rack mount path (from_grape with prefix:)" do
    before(:context) do
      @api = GrapeGitlabApi.build(catch_all: false)
      @app = Rack::URLMap.new("/gitlab" => @api)
      @table = Gitlab::Cells::Learn::GrapeRoutes.extract(@api, prefix: "/gitlab")
      @classifier = Gitlab::Cells::Learn::Classifier.from_grape(@api, prefix: "/gitlab")
    end

    it "puts the prefix before every route" do
      expect(@table.map { |r| r["path"] }).to all(start_with("/gitlab/api/:version/"))
    end

    it "picks the route Grape serves behind the mount" do
      requests = RoutesRequests.for_table(@table).map { |r| [r.method, r.path] }
      requests.concat(GrapeDifferential.gitlab_requests.map { |m, path| [m, "/gitlab#{path}"] })
      requests.concat(GrapeDifferential.gitlab_requests.first(200)).uniq!

      kinds = Hash.new(0)
      verbose = $VERBOSE
      $VERBOSE = nil # Rack::URLMap's /n regexp warns for every non-ASCII path
      failures = requests.filter_map do |method, path|
        answer = GrapeOracle.ask(@app, method, path)
        kinds[answer.kind] += 1
        GrapeOracle.disagreement(method, path, answer, @classifier.recognize(method, path), prefix: "/gitlab")
      end
      $VERBOSE = verbose
      puts format("\n  [grape differential] under /gitlab: %d requests compared (%d routed by Grape, %d 405, %d auto-OPTIONS, " \
                  "%d no route); %d disagreements", requests.size, kinds[:route], kinds[:not_allowed], kinds[:options],
                  kinds[:none], failures.size)

      expect(requests.size).to be > 500
      expect(kinds[:route]).to be > 500
      expect(failures).to be_empty, "#{failures.size} disagreements with Grape:\n#{failures.first(30).join("\n")}"
    end
  end

  context "mounted in a Rails RouteSet at / between Rails routes (Classifier.from_rails)" do
    # A Rails endpoint that names itself, so the oracle knows which Rails route served.
    def self.rails_app(name)
      ->(_env) { [200, { "X-Rails-Route" => name, "Content-Type" => "text/plain" }, [name]] }
    end

    before(:context) do
      api = GrapeGitlabApi.build(catch_all: true)
      before_app = self.class.rails_app("graphql")
      after_apps = %w[help user root_catch_all].to_h { |n| [n, self.class.rails_app(n)] }
      @route_set = ActionDispatch::Routing::RouteSet.new
      @route_set.draw do
        post "/api/graphql", to: before_app, as: "graphql"
        mount api => "/", as: "api"
        get "/help", to: after_apps["help"], as: "help"
        get "/:username", to: after_apps["user"], as: "user", format: false, constraints: { username: /[a-z0-9_.-]+/ }
        match "/*unmatched_route", to: after_apps["root_catch_all"], as: "root_catch_all", via: :all, format: false
      end
      @table = Gitlab::Cells::Learn::RailsRoutes.extract(@route_set)
      @classifier = Gitlab::Cells::Learn::Classifier.from_rails(@route_set)
    end

    it "places the Grape routes at the mount, between the Rails routes" do
      names = @table.map { |r| r["name"] }
      expect(names.first).to eq("graphql")
      expect(names.last(3)).to eq(%w[help user root_catch_all])
      grape = @table[1...-3]
      expect(grape).to all(include("mounted" => false, "name" => nil))
      expect(grape.map { |r| r["path"] }).to all(start_with("/api/:version"))
    end

    it "picks the route the Rails + Grape stack serves, Grape's cascade included" do
      requests = RoutesRequests.for_table(@table).map { |r| [r.method, r.path] }
      requests.concat(GrapeDifferential.gitlab_requests)
      requests.concat(%w[/help /john.doe /john.doe/x /api/graphql /api/v3/x /-/profile].product(GrapeDifferential::METHODS).map(&:reverse)).uniq!

      counts = Hash.new(0)
      failures = requests.filter_map do |method, path|
        env = RoutesRailsOracle.env_for(method, path)
        status, headers, body = @route_set.call(env)
        body.close if body.respond_to?(:close)
        ours = @classifier.recognize(method, path)
        if headers["X-Rails-Route"]
          counts[:rails] += 1
          next if ours&.route&.name == headers["X-Rails-Route"]

          "#{method} #{path.inspect}: Rails route #{headers["X-Rails-Route"]}; ours #{ours ? "##{ours.route.index} #{ours.route.spec}" : "no route"}"
        else
          answer = GrapeOracle.ask(@route_set, method, path)
          counts[answer.kind] += 1
          counts[:status_404] += 1 if status == 404
          GrapeOracle.disagreement(method, path, answer, ours)
        end
      end
      puts format("\n  [grape differential] mounted in Rails: %d requests compared (%d Rails routes, %d Grape routes, %d auto-OPTIONS, " \
                  "%d 405, %d no route); %d disagreements", requests.size, counts[:rails], counts[:route], counts[:options],
                  counts[:not_allowed], counts[:none], failures.size)

      expect(requests.size).to be > 500
      expect(counts[:rails]).to be > 50
      expect(counts[:route]).to be > 500
      expect(failures).to be_empty, "#{failures.size} disagreements with Rails + Grape:\n#{failures.first(30).join("\n")}"
    end
  end
end
