# frozen_string_literal: true

require "grape"
require "stringio"
require "open3"

# LogReplay on log lines shaped like GitLab's production_json.log (Lograge) and api_json.log
# (grape_logging with GitLab's RouteLogger: `route` is `route.pattern.origin`).
LOG_REPLAY_FIXTURES = File.expand_path("fixtures/logs", __dir__)

RSpec.describe Gitlab::Cells::Learn::LogReplay do
  # The Grape endpoints api_json.log names, as GitLab's API::API draws them.
  def self.api
    @api ||= Class.new(Grape::API) do
      prefix :api
      version "v4", using: :path
      default_format :json
      resource :projects do
        get { [] }
        get(":id", requirements: { id: %r{[^/]+} }) { {} }
        get(":id/issues", requirements: { id: %r{[^/]+} }) { [] }
        post(":id/issues", requirements: { id: %r{[^/]+} }) { {} }
        get(":id/repository/files/:file_path/raw", requirements: { id: %r{[^/]+}, file_path: %r{[^/]+} }) { "" }
      end
      resource(:groups) { get(":id") { {} } }
    end
  end

  describe ".controller_path" do
    it "spells a controller class as route defaults name it" do
      expect(described_class.controller_path("Projects::IssuesController")).to eq("projects/issues")
      expect(described_class.controller_path("Projects::Settings::CiCdController")).to eq("projects/settings/ci_cd")
      expect(described_class.controller_path("OAuth::AuthorizationsController")).to eq("o_auth/authorizations")
      expect(described_class.controller_path("HTMLExportsController")).to eq("html_exports")
    end
  end

  describe ".grape_origin" do
    it "drops the format suffix Grape adds to a route's path" do
      expect(described_class.grape_origin("/api/:version/projects/:id(.:format)")).to eq("/api/:version/projects/:id")
      expect(described_class.grape_origin("/api/:version/projects/:id(.json)")).to eq("/api/:version/projects/:id")
      expect(described_class.grape_origin("/api/:version/projects/:id/(-/)epics")).to eq("/api/:version/projects/:id/(-/)epics")
    end
  end

  context "with GitLab CE's web routes and production_json.log" do
    let(:classifier) { Gitlab::Cells::Learn::Classifier.new(routes: File.read(File.join(CORPUS_DIR, "gitlab-ce.routes.json"))) }
    let(:lines) { File.readlines(File.join(LOG_REPLAY_FIXTURES, "production_json.log")).map { |l| JSON.parse(l) } }
    let(:served) { lines.select { |l| l["controller"] } }

    it "with the ideal host, names the controller#action that served every logged request" do
      report = described_class.new(classifier, ideal: true).replay_file(File.join(LOG_REPLAY_FIXTURES, "production_json.log"))
      expect(report.entries.size).to eq(served.size)
      expect(report.skipped).to eq(lines.size - served.size) # the redirect has no controller
      expect(report.differences).to be_empty, report.to_text
      expect(report.entries.first.path).not_to include("?")
      expect(report.to_text).to start_with("#{File.join(LOG_REPLAY_FIXTURES, "production_json.log")}: #{served.size}/#{served.size} requests")
    end

    it "accepting every dynamic constraint, lists where an earlier constrained route would have been named" do
      report = described_class.new(classifier).replay_file(File.join(LOG_REPLAY_FIXTURES, "production_json.log"))
      # Each difference is a request whose served route Rails reached only because an earlier
      # route's constrainer (or a mounted app) refused it: the accept-all host names that route.
      expect(report.differences).not_to be_empty
      definitions = classifier.route_definitions
      report.differences.each do |d|
        named = classifier.recognize(d.request_method, d.path).route
        expect(definitions[named.index].values_at("dynamic_constraints", "mounted")).to include(true), d.to_s
        expect(d.named).to eq(named.endpoint || described_class.grape_origin(named.spec))
      end
      expect(report.agreed + report.differences.size).to eq(served.size)
    end

    it "lets a constraint block decide, and refuses a block together with ideal:" do
      none = described_class.new(classifier) { |_route, _params| false }.replay_file(File.join(LOG_REPLAY_FIXTURES, "production_json.log"))
      dynamic_served = served.count do |l|
        classifier.routes.any? { |r| r.dynamic && r.endpoint == "#{described_class.controller_path(l["controller"])}##{l["action"]}" }
      end
      expect(none.differences.size).to be >= dynamic_served
      expect { described_class.new(classifier, ideal: true) { true } }.to raise_error(ArgumentError, /not both/)
    end
  end

  context "with a Grape API and api_json.log" do
    let(:classifier) { Gitlab::Cells::Learn::Classifier.from_grape(self.class.api) }

    it "names the Grape route (route.pattern.origin) that served each request" do
      report = described_class.new(classifier).replay_file(File.join(LOG_REPLAY_FIXTURES, "api_json.log"))
      logged = File.readlines(File.join(LOG_REPLAY_FIXTURES, "api_json.log")).map { |l| JSON.parse(l) }
      expect(report.entries.map(&:served)).to eq(logged.filter_map { |l| l["route"] })
      expect(report.differences).to be_empty, report.to_text
      expect(report.skipped).to eq(1) # the 404 has no route
    end

    it "lists a request the classifier routes elsewhere" do
      log = StringIO.new(%({"method":"GET","path":"/api/v4/groups/1","route":"/api/:version/projects/:id"}\n))
      report = described_class.new(classifier).replay(log, source: "api_json.log")
      expect(report.ratio).to eq(0.0)
      expect(report.to_text).to include("differs: line 1: GET /api/v4/groups/1: served by /api/:version/projects/:id, " \
                                        "the classifier names /api/:version/groups/:id")
    end
  end

  it "names the line that is not JSON" do
    classifier = Gitlab::Cells::Learn::Classifier.new(routes: [{ "verb" => "GET", "path" => "/x" }])
    log = StringIO.new(%({"method":"GET","path":"/x","controller":"XController","action":"show"}\nStarted GET "/x"\n))
    expect { described_class.new(classifier).replay(log, source: "production_json.log") }
      .to raise_error(Gitlab::Cells::Learn::InvalidRequestError, /\Aproduction_json\.log:2: not a JSON log line/)
    expect { described_class.new(classifier).replay(StringIO.new("[1]\n")) }
      .to raise_error(Gitlab::Cells::Learn::InvalidRequestError, /log:1: expected a JSON object, got Array/)
  end

  describe "cells-learn verify --log" do
    # The newest build of the CLI (script/test builds release; a debug build during development).
    cli = %w[release debug].map { |profile| File.join(REPO_ROOT, "target", profile, "cells-learn") }
                           .select { |f| File.executable?(f) }.max_by { |f| File.mtime(f) }
    before { skip "build the CLI first (cargo build -p cells-learn-cli)" unless cli }

    it "reports what LogReplay reports, line for line, with either host" do
      routes = File.join(CORPUS_DIR, "gitlab-ce.routes.json")
      log = File.join(LOG_REPLAY_FIXTURES, "production_json.log")
      classifier = Gitlab::Cells::Learn::Classifier.new(routes: File.read(routes))
      [["ideal", true], ["accept-all", false]].each do |host, ideal|
        out, status = Open3.capture2e(cli, "verify", "--routes", routes, "--log", log, "--host", host)
        ruby = described_class.new(classifier, ideal: ideal).replay_file(log)
        expect(out).to eq("#{ruby.to_text}\n"), "--host #{host}"
        expect(status.exitstatus).to eq(ruby.differences.empty? ? 0 : 1)
      end
    end
  end
end
