# frozen_string_literal: true

require "rack/test"
require "logger"
require "stringio"

RSpec.describe Gitlab::Cells::Learn::Middleware do
  include Rack::Test::Methods

  let(:classifier) { Gitlab::Cells::Learn::Classifier.new(routes: File.read(File.join(CORPUS_DIR, "gitlabish-routes.json"))) }
  let(:directory) { { "gitlab-org/gitlab-test" => "cell_0", "gitlab-org" => "cell_0", "eu-corp/app" => "cell_eu0", "acme" => "cell_eu0" } }
  let(:asked) { [] }
  let(:resolver) do
    lambda do |entity|
      asked << entity
      raise IOError, "routes table is locked" if entity.key == "broken/project"

      directory[entity.key]
    end
  end
  let(:log) { StringIO.new }
  let(:options) { {} }
  # The cell's application: answers the status in X-Test-Status, records what it saw.
  let(:served) { [] }
  let(:inner) do
    seen = served
    lambda do |env|
      seen << [env["SCRIPT_NAME"], env["PATH_INFO"]]
      headers = { "Content-Type" => "text/plain" }
      headers["X-Gitlab-Cell-Cache"] = env["HTTP_X_TEST_OWN_HEADER"] if env["HTTP_X_TEST_OWN_HEADER"]
      headers = headers.freeze if env["HTTP_X_TEST_FROZEN"]
      [Integer(env.fetch("HTTP_X_TEST_STATUS", "200")), headers, ["served #{env["PATH_INFO"]}"]]
    end
  end
  let(:middleware) do
    described_class.new(Rack::Lint.new(inner), classifier: classifier, resolver: resolver, cell: "cell_0", logger: Logger.new(log), **options)
  end
  let(:app) { Rack::Lint.new(middleware) }

  def cache_header
    last_response.headers["X-Gitlab-Cell-Cache"]
  end

  describe "the cache header" do
    it "advertises a project's prefix with the cell that serves it, on a 200" do
      get "/gitlab-org/gitlab-test/-/issues"
      expect(last_response.status).to eq(200)
      expect(last_response.body).to eq("served /gitlab-org/gitlab-test/-/issues")
      expect(cache_header).to eq("path=/gitlab-org/gitlab-test; cell=cell_0")
      expect(asked).to eq([Gitlab::Cells::Learn::Entity.new(:route_path, "gitlab-org/gitlab-test")])
    end

    it "advertises on a 404 and any status below 500, never on a 5xx" do
      { 404 => true, 302 => true, 422 => true, 499 => true, 500 => false, 502 => false, 503 => false }.each do |status, advertised|
        get "/gitlab-org/gitlab-test/-/issues/999", {}, "HTTP_X_TEST_STATUS" => status.to_s
        expect(last_response.status).to eq(status)
        expect(cache_header).to(advertised ? eq("path=/gitlab-org/gitlab-test; cell=cell_0") : be_nil, "status #{status}")
      end
    end

    it "advertises fixed routes exactly or as prefixes, as the rules say" do
      get "/-/profile"
      expect(cache_header).to eq("path=/-/profile; cell=cell_0; exact")
      patch "/-/profile/account"
      expect(cache_header).to eq("path=/-/profile; cell=cell_0")
      get "/help/a/b"
      expect(cache_header).to eq("path=/help; cell=cell_0")
      expect(asked).to be_empty
    end

    it "advertises nothing for /, /dashboard, unknown routes and entities no cell claims" do
      ["/", "/dashboard", "/api/v4/unknown", "/nobody/nothing/-/issues"].each do |path|
        get path
        expect(last_response.status).to eq(200)
        expect(cache_header).to be_nil, path
      end
      expect(asked.map(&:key)).to eq(["nobody/nothing"])
    end

    it "keeps a header the application set, whatever its case, and copes with frozen headers" do
      get "/gitlab-org/gitlab-test", {}, "HTTP_X_TEST_OWN_HEADER" => "path=/gitlab-org; cell=cell_0"
      expect(cache_header).to eq("path=/gitlab-org; cell=cell_0")
      get "/gitlab-org/gitlab-test", {}, "HTTP_X_TEST_FROZEN" => "1"
      expect(cache_header).to eq("path=/gitlab-org/gitlab-test; cell=cell_0")

      lowercase = ->(_env) { [200, { "content-type" => "text/plain", "x-gitlab-cell-cache" => "path=/x; cell=cell_9" }, ["ok"]] }
      status, headers, = described_class.new(lowercase, classifier: classifier, resolver: resolver, cell: "cell_0")
                                        .call(Rack::MockRequest.env_for("/gitlab-org/gitlab-test"))
      expect(status).to eq(200)
      expect(headers.select { |name, _| name.casecmp?("X-Gitlab-Cell-Cache") }).to eq("x-gitlab-cell-cache" => "path=/x; cell=cell_9")
    end

    it "writes the header the learn endpoint would answer, for every cacheable corpus request" do
      endpoint = Gitlab::Cells::Learn::Endpoint.new(classifier: classifier, resolver: ->(_) { "cell_0" })
      mw = described_class.new(inner, classifier: classifier, resolver: ->(_) { "cell_0" }, cell: "cell_0")
      compared = 0
      File.foreach(File.join(CORPUS_DIR, "gitlabish-requests.jsonl")) do |line|
        vector = JSON.parse(line)
        next unless vector["path"].start_with?("/") && vector["path"].valid_encoding? && !vector["path"].include?("?")

        # PATH_INFO set directly: env_for would read "//gitlab-org//gitlab" as a host and a path.
        env = Rack::MockRequest.env_for("/", method: vector["method"]).merge("PATH_INFO" => vector["path"])
        _status, headers, = mw.call(env)
        answer = endpoint.learn(vector["method"], vector["path"])
        value = headers["X-Gitlab-Cell-Cache"]
        if answer["cacheable"] == false
          expect(value).to be_nil, vector["path"]
        else
          compared += 1
          parsed = Gitlab::Cells::Learn::CacheHeader.parse(value)
          expect(parsed.to_h).to eq(path: answer["path"], cell: answer["cell"], exact: answer["exact"] == true), vector["path"]
        end
      end
      expect(compared).to be > 300
    end
  end

  describe "misdirected requests" do
    it "answers 421 naming the owner, without calling the application" do
      get "/eu-corp/app/-/issues"
      expect(last_response.status).to eq(421)
      expect(last_response.headers["X-Gitlab-Cell-Owner"]).to eq("cell_eu0")
      expect(last_response.headers["Content-Type"]).to eq("application/json")
      expect(last_response.headers["Cache-Control"]).to eq("no-store")
      expect(JSON.parse(last_response.body)).to eq(
        "error" => "misdirected_request",
        "message" => "route_path:eu-corp/app (/eu-corp/app) is served by cell_eu0, not cell_0",
        "cell" => "cell_eu0",
        "path" => "/eu-corp/app"
      )
      expect(cache_header).to be_nil
      expect(served).to be_empty
    end

    it "answers HEAD with an empty body and for organizations too" do
      head "/o/acme/-/dashboard"
      expect(last_response.status).to eq(421)
      expect(last_response.body).to be_empty
      expect(last_response.headers["X-Gitlab-Cell-Owner"]).to eq("cell_eu0")
    end

    it "does not misdirect fixed routes whatever the cell" do
      mw = described_class.new(inner, classifier: classifier, resolver: resolver, cell: "cell_eu0")
      status, headers, = mw.call(Rack::MockRequest.env_for("/-/profile"))
      expect(status).to eq(200)
      expect(headers["X-Gitlab-Cell-Cache"]).to eq("path=/-/profile; cell=cell_0; exact")
    end

    context "when disabled" do
      let(:options) { { misdirected: false } }

      it "serves the request and advertises the owner" do
        get "/eu-corp/app/-/issues"
        expect(last_response.status).to eq(200)
        expect(cache_header).to eq("path=/eu-corp/app; cell=cell_eu0")
      end
    end

    context "with a list of configured cells" do
      let(:options) { { cells: %w[cell_0 cell_1] } }

      it "ignores, and logs, answers naming a cell outside it" do
        get "/eu-corp/app/-/issues"
        expect(last_response.status).to eq(200)
        expect(cache_header).to be_nil
        expect(log.string).to include('resolver answered "cell_eu0" for route_path:eu-corp/app, which is not a configured cell name')
      end
    end
  end

  describe "failures never break the request" do
    it "serves without a header, and logs, when the resolver raises" do
      get "/broken/project/-/issues"
      expect(last_response.status).to eq(200)
      expect(cache_header).to be_nil
      expect(log.string).to include("resolver failed for route_path:broken/project: IOError: routes table is locked")
    end

    context "when the resolver answers garbage" do
      let(:resolver) { ->(_entity) { 42 } }

      it "serves without a header and logs the answer" do
        get "/gitlab-org/gitlab-test"
        expect(last_response.status).to eq(200)
        expect(cache_header).to be_nil
        expect(log.string).to include("resolver answered 42 for route_path:gitlab-org/gitlab-test, which is not a valid cell name")
      end
    end

    it "serves requests the classifier refuses without classifying them" do
      get "/#{"a" * 9000}"
      expect(last_response.status).to eq(200)
      expect(cache_header).to be_nil
      expect(log.string).to include("not classified: path_info is 9001 bytes, over the limit of 8192")
    end

    context "with a constraint that raises" do
      let(:classifier) do
        Gitlab::Cells::Learn::Classifier.new(routes: [{ "verb" => "GET", "path" => "/:username(.:format)", "dynamic_constraints" => true }])
      end
      let(:options) { { constraint: ->(_route, params) { params["username"] == "broken" ? raise(IOError, "gone") : true } } }

      it "serves without a header, and logs" do
        get "/broken"
        expect(last_response.status).to eq(200)
        expect(cache_header).to be_nil
        expect(log.string).to include("route constraint failed for GET /broken: IOError: gone")
        get "/gitlab-org"
        expect(cache_header).to eq("path=/gitlab-org; cell=cell_0")
      end
    end

    it "lets the application's own exceptions through" do
      failing = described_class.new(->(_env) { raise ArgumentError, "app bug" }, classifier: classifier, resolver: resolver, cell: "cell_0")
      expect { failing.call(Rack::MockRequest.env_for("/gitlab-org/gitlab-test")) }.to raise_error(ArgumentError, "app bug")
    end
  end

  describe "mount points and skipped paths" do
    it "classifies SCRIPT_NAME + PATH_INFO, and the application still sees its own split" do
      get "/-/issues", {}, "SCRIPT_NAME" => "/gitlab-org/gitlab-test"
      expect(cache_header).to eq("path=/gitlab-org/gitlab-test; cell=cell_0")
      expect(served.last).to eq(["/gitlab-org/gitlab-test", "/-/issues"])

      get "", {}, "SCRIPT_NAME" => "/-/profile", "PATH_INFO" => ""
      expect(cache_header).to eq("path=/-/profile; cell=cell_0; exact")
    end

    it "works behind a Rack::Builder map" do
      mw = middleware
      mapped = Rack::Builder.new { map("/eu-corp") { run mw } }.to_app
      status, headers, = mapped.call(Rack::MockRequest.env_for("/eu-corp/app/-/issues"))
      expect([status, headers["X-Gitlab-Cell-Owner"]]).to eq([421, "cell_eu0"])
    end

    it "leaves the learn endpoint and the paths below it alone" do
      get "/api/v4/cells/learn", "method" => "GET", "path_info" => "/gitlab-org/gitlab-test"
      get "/api/v4/cells/learn/x"
      get "/learn", {}, "SCRIPT_NAME" => "/api/v4/cells"
      expect(served.size).to eq(3)
      expect(cache_header).to be_nil
      expect(asked).to be_empty
    end

    context "with other skipped paths" do
      let(:options) { { skip: ["/eu-corp/"] } }

      it "skips them and not the learn endpoint" do
        get "/eu-corp/app/-/issues"
        expect(last_response.status).to eq(200)
        get "/eu-corporate/app/-/issues"
        expect(asked.map(&:key)).to eq(["eu-corporate/app"])
      end
    end

    it "serves the learn endpoint behind the middleware, with no cache header on its answers" do
      endpoint = Gitlab::Cells::Learn::Endpoint.new(classifier: classifier, resolver: resolver)
      cell_app = inner
      stack = Rack::Builder.new do
        map("/api/v4/cells/learn") { run endpoint }
        map("/") { run cell_app }
      end
      mw = described_class.new(stack.to_app, classifier: classifier, resolver: resolver, cell: "cell_0")
      status, headers, body = mw.call(Rack::MockRequest.env_for("/api/v4/cells/learn?method=GET&path_info=/eu-corp/app/-/issues"))
      expect(status).to eq(200)
      expect(JSON.parse(body.join)).to eq("path" => "/eu-corp/app", "cell" => "cell_eu0", "source" => "routable")
      expect(headers).not_to have_key("X-Gitlab-Cell-Cache")
    end
  end

  it "refuses invalid construction" do
    expect { described_class.new(inner, classifier: classifier, resolver: resolver, cell: "no cell") }.to raise_error(ArgumentError, /cell "no cell"/)
    expect { described_class.new(inner, classifier: classifier, resolver: nil, cell: "cell_0") }.to raise_error(ArgumentError, /resolver/)
    expect { described_class.new(inner, classifier: classifier, resolver: resolver, cell: "cell_0", cells: ["a b"]) }
      .to raise_error(ArgumentError, /cells entry "a b"/)
    expect { described_class.new(inner, classifier: classifier, resolver: resolver, cell: "cell_0", default_cell: "") }
      .to raise_error(ArgumentError, /default_cell ""/)
    expect(middleware).to be_frozen
  end

  it "gives the same answers from many threads at once" do
    mw = described_class.new(inner, classifier: classifier, resolver: ->(e) { directory[e.key] }, cell: "cell_0")
    paths = %w[/gitlab-org/gitlab-test/-/issues /eu-corp/app /-/profile / /help/x /api/v4/unknown /nobody/x]
    answer = ->(path) { mw.call(Rack::MockRequest.env_for(path)).then { |status, headers, _| [status, headers["X-Gitlab-Cell-Cache"]] } }
    expected = paths.to_h { |path| [path, answer.call(path)] }
    expect(expected.values.map(&:first).uniq.sort).to eq([200, 421])
    results = Array.new(8) { |t| Thread.new { Array.new(200) { |i| paths[(i + t) % paths.size].then { |p| [p, answer.call(p)] } } } }
                   .flat_map(&:value)
    results.each { |path, got| expect(got).to eq(expected.fetch(path)), path }
  end
end
