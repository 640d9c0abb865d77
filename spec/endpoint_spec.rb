# frozen_string_literal: true

require "rack/test"
require "logger"
require "stringio"

RSpec.describe Gitlab::Cells::Learn::Endpoint do
  include Rack::Test::Methods

  let(:classifier) { Gitlab::Cells::Learn::Classifier.new(routes: File.read(File.join(CORPUS_DIR, "gitlabish-routes.json"))) }
  # What GitLab's resolver reads from routes.cell_id: nil for entities no cell claims.
  let(:directory) { { "gitlab-org/gitlab-test" => "cell_1", "gitlab-org" => "cell_1", "eu-corp" => "cell_eu0", "acme" => "cell_eu0" } }
  let(:asked) { Queue.new }
  let(:resolver) do
    lambda do |entity|
      asked << entity
      directory[entity.key]
    end
  end
  let(:log) { StringIO.new }
  let(:options) { {} }
  let(:endpoint) { described_class.new(classifier: classifier, resolver: resolver, logger: Logger.new(log), **options) }
  let(:app) do
    ep = endpoint
    Rack::Builder.new { map("/api/v4/cells/learn") { run Rack::Lint.new(ep) } }.to_app
  end

  def learn(method, path_info)
    get "/api/v4/cells/learn", "method" => method, "path_info" => path_info
  end

  def learn_raw(query)
    get "/api/v4/cells/learn", {}, "QUERY_STRING" => query
  end

  def json
    JSON.parse(last_response.body)
  end

  def expect_json(status, body)
    expect(last_response.status).to eq(status), -> { "#{last_response.status} #{last_response.body}" }
    expect(last_response.headers["Content-Type"]).to eq("application/json")
    expect(last_response.headers["Cache-Control"]).to eq("no-store")
    expect(last_response.headers["Content-Length"]).to eq(last_response.body.bytesize.to_s)
    expect(json).to match(body)
  end

  def expect_error(status, code, message)
    expect_json(status, "error" => code, "message" => message)
    expect(json.keys).to eq(%w[error message])
  end

  describe "answers" do
    it "gives a project's prefix with the cell the resolver names (the seed's example)" do
      learn("GET", "/gitlab-org/gitlab-test/-/issues")
      expect_json(200, "path" => "/gitlab-org/gitlab-test", "cell" => "cell_1", "source" => "routable")
      expect(last_response.body).to eq('{"path":"/gitlab-org/gitlab-test","cell":"cell_1","source":"routable"}')
      expect(asked.pop).to eq(Gitlab::Cells::Learn::Entity.new(:route_path, "gitlab-org/gitlab-test"))
    end

    it "gives the same prefix for every path below a project and every verb Rails routes there" do
      %w[/gitlab-org/gitlab-test /gitlab-org/gitlab-test/-/merge_requests/1/diffs /gitlab-org/gitlab-test/-/issues/7].each do |path|
        learn("GET", path)
        expect_json(200, "path" => "/gitlab-org/gitlab-test", "cell" => "cell_1", "source" => "routable")
      end
      learn("DELETE", "/gitlab-org/gitlab-test")
      expect_json(200, "path" => "/gitlab-org/gitlab-test", "cell" => "cell_1", "source" => "routable")
    end

    it "resolves groups and organizations through the same resolver" do
      learn("GET", "/o/acme/-/dashboard")
      expect_json(200, "path" => "/o/acme", "cell" => "cell_eu0", "source" => "routable")
      expect(asked.pop).to eq(Gitlab::Cells::Learn::Entity.new(:organization_path, "acme"))
      learn("GET", "/groups/eu-corp/-/epics")
      expect_json(200, "path" => "/groups/eu-corp", "cell" => "cell_eu0", "source" => "routable")
    end

    it "gives /-/profile as fixed to cell_0, this exact path only" do
      learn("GET", "/-/profile")
      expect_json(200, "path" => "/-/profile", "cell" => "cell_0", "source" => "fixed", "exact" => true)
      expect(asked).to be_empty
    end

    it "gives a fixed prefix for paths below a fixed rule" do
      learn("PATCH", "/-/profile/account")
      expect_json(200, "path" => "/-/profile", "cell" => "cell_0", "source" => "fixed")
      learn("GET", "/help/foo/bar")
      expect_json(200, "path" => "/help", "cell" => "cell_0", "source" => "fixed")
    end

    it "marks / and /dashboard as never cacheable" do
      learn("GET", "/")
      expect_json(200, "path" => "/", "cell" => "cell_0", "source" => "fixed", "exact" => true, "cacheable" => false)
      learn("GET", "/dashboard/projects")
      expect_json(200, "path" => "/dashboard", "cell" => "cell_0", "source" => "fixed", "cacheable" => false)
    end

    it "sends unknown routes to the default cell, not cacheable" do
      learn("GET", "/api/v4/unknown")
      expect_json(200, "path" => "/api/v4/unknown", "cell" => "cell_0", "source" => "default", "exact" => true, "cacheable" => false)
      learn("GET", "/gitlab-org%2Fgitlab-test/-/issues")
      expect_json(200, "path" => "/gitlab-org%2Fgitlab-test/-/issues", "cell" => "cell_0", "source" => "default",
                       "exact" => true, "cacheable" => false)
    end

    it "sends entities no cell claims to the default cell, not cacheable" do
      learn("GET", "/nobody/nothing/-/issues")
      expect_json(200, "path" => "/nobody/nothing", "cell" => "cell_0", "source" => "routable", "cacheable" => false)
      expect(asked.pop).to eq(Gitlab::Cells::Learn::Entity.new(:route_path, "nobody/nothing"))
    end

    it "decodes the query: an encoded slash in the path stays encoded, %2B is a plus" do
      learn_raw("method=GET&path_info=%2Fgitlab-org%2Fgitlab-test%2F-%2Fissues")
      expect_json(200, "path" => "/gitlab-org/gitlab-test", "cell" => "cell_1", "source" => "routable")
      learn_raw("method=GET&path_info=/gitlab-org%252Fgitlab-test/-/issues")
      expect_json(200, a_hash_including("path" => "/gitlab-org%2Fgitlab-test/-/issues", "source" => "default"))
      learn_raw("path_info=/-/c%2B%2B+dev&method=GET&other=ignored")
      expect_json(200, "path" => "/-/c++ dev", "cell" => "cell_0", "source" => "default", "exact" => true, "cacheable" => false)
    end

    context "with another default cell" do
      let(:options) { { default_cell: "cell_us0" } }

      it "uses it for unknown routes and entities and rules without a cell, not for rules naming one" do
        learn("GET", "/api/v4/unknown")
        expect(json["cell"]).to eq("cell_us0")
        learn("GET", "/nobody/nothing")
        expect(json).to eq("path" => "/nobody/nothing", "cell" => "cell_us0", "source" => "routable", "cacheable" => false)
        learn("GET", "/")
        expect(json["cell"]).to eq("cell_us0")
        learn("GET", "/-/profile")
        expect(json["cell"]).to eq("cell_0")
        expect(endpoint.default_cell).to eq("cell_us0")
      end
    end

    it "answers #learn directly with the same hash" do
      expect(endpoint.learn("GET", "/gitlab-org/gitlab-test/-/issues"))
        .to eq("path" => "/gitlab-org/gitlab-test", "cell" => "cell_1", "source" => "routable")
    end
  end

  describe "dynamic constraints" do
    let(:classifier) do
      Gitlab::Cells::Learn::Classifier.new(routes: [
                                             { "verb" => "GET", "path" => "/groups/*group_id/-/issues(.:format)", "dynamic_constraints" => true },
                                             { "verb" => "GET", "path" => "/:username(.:format)", "dynamic_constraints" => true }
                                           ])
    end
    let(:existing) { %w[gitlab-org] }
    let(:questions) { [] }
    let(:options) do
      { constraint: lambda { |route, params|
        questions << [route.index, params]
        raise IOError, "database is gone" if params.values.include?("broken")

        existing.include?(params.values.first)
      } }
    end

    it "asks the constraint, and routes only what it accepts" do
      learn("GET", "/groups/gitlab-org/-/issues")
      expect_json(200, "path" => "/groups/gitlab-org", "cell" => "cell_1", "source" => "routable")
      expect(questions).to eq([[0, { "group_id" => "gitlab-org" }]])

      learn("GET", "/groups/unknown/-/issues")
      expect_json(200, "path" => "/groups/unknown/-/issues", "cell" => "cell_0", "source" => "default", "exact" => true, "cacheable" => false)
    end

    it "answers 503 when the constraint raises, and logs why" do
      learn("GET", "/broken")
      expect_error(503, "constraint_failed", "the route constraint raised IOError for GET /broken")
      expect(log.string).to include("IOError: database is gone")
    end
  end

  describe "errors" do
    it "refuses every method but GET with 405 and Allow: GET" do
      %w[POST PUT PATCH DELETE HEAD OPTIONS].each do |verb|
        custom_request(verb, "/api/v4/cells/learn?method=GET&path_info=/")
        expect(last_response.status).to eq(405)
        expect(last_response.headers["Allow"]).to eq("GET")
        expect(last_response.headers["Cache-Control"]).to eq("no-store")
        next expect(last_response.body).to be_empty if verb == "HEAD"

        expect_error(405, "method_not_allowed", "the learn endpoint answers GET only, not #{verb}")
      end
    end

    it "refuses missing and empty parameters with 400" do
      learn_raw("path_info=/")
      expect_error(400, "missing_parameter", "method is missing or empty")
      learn_raw("method=GET")
      expect_error(400, "missing_parameter", "path_info is missing or empty")
      learn_raw("")
      expect_error(400, "missing_parameter", "method is missing or empty")
      learn_raw("method=&path_info=/")
      expect_error(400, "missing_parameter", "method is missing or empty")
      learn_raw("method=GET&path_info")
      expect_error(400, "missing_parameter", "path_info is missing or empty")
    end

    it "refuses repeated and array parameters with 400" do
      learn_raw("method=GET&method=POST&path_info=/")
      expect_error(400, "duplicate_parameter", "method is given 2 times; give it once")
      learn_raw("method=GET&path_info=/a&path_info=/b&path_info=/c")
      expect_error(400, "duplicate_parameter", "path_info is given 3 times; give it once")
      learn_raw("method[]=GET&path_info=/")
      expect_error(400, "invalid_parameter", "method[] is not accepted: give method once, as a plain parameter")
      learn_raw("method=GET&path_info[x]=/")
      expect_error(400, "invalid_parameter", "path_info[x] is not accepted: give path_info once, as a plain parameter")
    end

    it "refuses a method that is not an HTTP token with 400" do
      learn("G ET", "/")
      expect_error(400, "invalid_parameter", 'method "G ET" is not an HTTP method token')
      learn("GET\r\nX-Evil: 1", "/")
      expect(json["error"]).to eq("invalid_parameter")
      learn("A" * 33, "/")
      expect(json["error"]).to eq("invalid_parameter")
    end

    it "passes the classifier's InvalidRequestError on as 400" do
      learn("M!", "/")
      expect_error(400, "invalid_request", 'invalid HTTP method "M!": expected an upper-case token such as GET')
    end

    it "refuses a path_info that does not start with /, has control characters or is not UTF-8" do
      learn("GET", "gitlab-org")
      expect_error(400, "invalid_parameter", 'path_info "gitlab-org" does not start with /')
      learn_raw("method=GET&path_info=/a%0Ab")
      expect_error(400, "invalid_parameter", 'path_info "/a\\nb" contains a control character')
      learn_raw("method=GET&path_info=/a%00")
      expect(json["error"]).to eq("invalid_parameter")
      learn_raw("method=GET&path_info=/%FF%FE")
      expect_error(400, "invalid_parameter", "path_info is not valid UTF-8")
      learn_raw("method=%C0&path_info=/")
      expect_error(400, "invalid_parameter", "method is not valid UTF-8")
    end

    it "refuses a query string with a bad percent escape" do
      learn_raw("method=GET&path_info=/a%zz")
      expect_error(400, "invalid_query", "the query string cannot be decoded: invalid %-encoding (/a%zz)")
    end

    it "refuses an over-long path_info with 414" do
      learn("GET", "/#{"a" * 8191}")
      expect(last_response.status).to eq(200)
      learn("GET", "/#{"a" * 8192}")
      expect_error(414, "path_too_long", "path_info is 8193 bytes, over the limit of 8192")
      learn_raw("method=GET&path_info=/#{"%25" * 10_000}")
      expect_error(414, "path_too_long", "the query string is 30022 bytes, too long for a path_info of at most 8192 bytes")
    end

    context "with a smaller limit" do
      let(:options) { { max_path_length: 20 } }

      it "applies it" do
        learn("GET", "/#{"a" * 19}")
        expect(last_response.status).to eq(200)
        learn("GET", "/#{"a" * 20}")
        expect_error(414, "path_too_long", "path_info is 21 bytes, over the limit of 20")
      end
    end

    context "with a limit above the classifier's" do
      let(:options) { { max_path_length: 20_000 } }

      it "still answers 414 when the classifier refuses the length" do
        learn("GET", "/#{"a" * 9000}")
        expect_error(414, "path_too_long", "path_info is 9001 bytes, over the limit of 8192")
      end
    end

    context "when the resolver raises" do
      let(:resolver) { ->(_entity) { raise IOError, "secret connection string" } }

      it "answers 503 without the exception's message, logs it, and never answers a cacheable cell" do
        learn("GET", "/gitlab-org/gitlab-test/-/issues")
        expect_error(503, "resolver_failed", "the resolver raised IOError for route_path:gitlab-org/gitlab-test")
        expect(last_response.body).not_to include("secret")
        expect(log.string).to include("IOError: secret connection string")
      end

      it "does not need the resolver for fixed and unknown routes" do
        learn("GET", "/-/profile")
        expect(last_response.status).to eq(200)
        learn("GET", "/api/v4/unknown")
        expect(last_response.status).to eq(200)
      end
    end

    {
      42 => "42 (Integer)",
      :cell_1 => ":cell_1 (Symbol)",
      "" => '"" (String)',
      "cell 1" => '"cell 1" (String)',
      "c" * 65 => "\"#{"c" * 65}\" (String)"
    }.each do |answer, shown|
      context "when the resolver answers #{answer.inspect[0, 20]}" do
        let(:resolver) { ->(_entity) { answer } }

        it "answers 503 naming the answer" do
          learn("GET", "/gitlab-org/gitlab-test")
          expect_error(503, "invalid_resolver_answer",
                       "the resolver answered #{shown} for route_path:gitlab-org/gitlab-test: expected nil or a cell name " \
                       "String of 1 to 64 of A-Z a-z 0-9 _ . -")
          expect(log.string).to include("resolver answered")
        end
      end
    end

    it "refuses invalid construction" do
      expect { described_class.new(classifier: classifier, resolver: "cell_1") }.to raise_error(ArgumentError, /resolver/)
      expect { described_class.new(classifier: classifier, resolver: resolver, default_cell: "no such cell") }
        .to raise_error(ArgumentError, /default cell/)
      expect { described_class.new(classifier: classifier, resolver: resolver, max_path_length: 0) }
        .to raise_error(ArgumentError, /max_path_length/)
      expect { described_class.new(classifier: classifier, resolver: resolver, constraint: true) }
        .to raise_error(ArgumentError, /constraint/)
    end
  end

  describe "the learn token" do
    let(:options) { { token: "s3cret-token" } }

    def learn_with(token, verb = "GET")
      header "X-Gitlab-Cell-Learn-Token", token # nil: no header (rack-test keeps headers between requests)
      custom_request(verb, "/api/v4/cells/learn?method=GET&path_info=/gitlab-org/gitlab-test/-/issues")
    end

    it "answers only requests carrying it, and 401 JSON to the others" do
      learn_with("s3cret-token")
      expect_json(200, "path" => "/gitlab-org/gitlab-test", "cell" => "cell_1", "source" => "routable")
      [nil, "", "s3cret-toke", "s3cret-token2", "S3CRET-TOKEN", " s3cret-token"].each do |wrong|
        learn_with(wrong)
        expect_error(401, "unauthorized", "the learn endpoint needs a valid X-Gitlab-Cell-Learn-Token header")
      end
      expect(asked.size).to eq(1)
    end

    it "checks the token before anything else, without a body for HEAD" do
      learn_with(nil, "POST")
      expect(last_response.status).to eq(401)
      learn_with(nil, "HEAD")
      expect(last_response.status).to eq(401)
      expect(last_response.body).to be_empty
      learn_with("s3cret-token", "POST")
      expect(last_response.status).to eq(405)
    end

    context "while rotating" do
      let(:options) { { token: %w[old-token new-token] } }

      it "accepts either of two tokens" do
        %w[old-token new-token].each do |t|
          learn_with(t)
          expect(last_response.status).to eq(200)
        end
        learn_with("other-token")
        expect(last_response.status).to eq(401)
      end
    end

    it "never shows or logs the token" do
      learn_with("wrong-token")
      expect(endpoint.inspect).to include("token=[1 configured]")
      expect(endpoint.inspect + log.string + last_response.body).not_to include("s3cret")
      expect(endpoint.instance_variables.map { |v| endpoint.instance_variable_get(v).inspect }.join).not_to include("s3cret")
    end

    it "compares in constant time: digests through OpenSSL.fixed_length_secure_compare" do
      allow(OpenSSL).to receive(:fixed_length_secure_compare).and_call_original
      learn_with("x")
      expect(OpenSSL).to have_received(:fixed_length_secure_compare).once
    end

    it "refuses invalid token arguments precisely" do
      build = ->(token) { described_class.new(classifier: classifier, resolver: resolver, token: token) }
      expect do
        build.call("")
      end.to raise_error(ArgumentError, "token must be 1 to 1024 visible ASCII characters (no spaces or control characters); it is 0 bytes")
      expect { build.call("two words") }.to raise_error(ArgumentError, /token must be 1 to 1024 visible ASCII characters.*it is 9 bytes/)
      expect { build.call("x" * 1025) }.to raise_error(ArgumentError, /it is 1025 bytes/)
      expect { build.call("caf\u00e9") }.to raise_error(ArgumentError, /visible ASCII/)
      expect { build.call(42) }.to raise_error(ArgumentError, "token must be a String, not Integer")
      expect { build.call([]) }.to raise_error(ArgumentError, /an Array of one or two Strings.*not an Array of 0/)
      expect { build.call(%w[a b c]) }.to raise_error(ArgumentError, /not an Array of 3/)
      expect { build.call(["ok", :sym]) }.to raise_error(ArgumentError, "token[1] must be a String, not Symbol")
      expect { build.call(%W[ok bad\n]) }.to raise_error(ArgumentError, /token\[1\] must be 1 to 1024/)
      expect(build.call(nil).inspect).to include("token=none")
    end
  end

  it "is frozen and gives the same answers from many threads at once" do
    expect(endpoint).to be_frozen
    paths = %w[
      /gitlab-org/gitlab-test/-/issues /-/profile / /dashboard /api/v4/unknown /o/acme/-/dashboard
      /nobody/x /groups/eu-corp/-/epics /help/a/b relative
    ] + ["/#{"x" * 9000}"]
    expected = paths.to_h do |path|
      status, _headers, body = endpoint.call(Rack::MockRequest.env_for("/", params: { "method" => "GET", "path_info" => path }))
      [path, [status, body.join]]
    end
    expect(expected.values.map(&:first).uniq.sort).to eq([200, 400, 414])

    answers = Array.new(8) do |t|
      Thread.new do
        Array.new(300) do |i|
          path = paths[((i * 7) + t) % paths.size]
          status, _headers, body = endpoint.call(Rack::MockRequest.env_for("/", params: { "method" => "GET", "path_info" => path }))
          [path, [status, body.join]]
        end
      end
    end.flat_map(&:value)
    expect(answers.size).to eq(2400)
    answers.each { |path, answer| expect(answer).to eq(expected.fetch(path)), path }
  end
end
