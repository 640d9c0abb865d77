# frozen_string_literal: true

# Unit specs for GrapeRoutes.extract (what Classifier.from_grape reads) on small Grape APIs:
# versions, prefix, namespaces, route_param requirements, several verbs, explicit HEAD routes,
# mounted sub-APIs; each API is also checked against Grape's own router for its generated
# requests, so every expectation on the table is one Grape agrees with.
RSpec.describe Gitlab::Cells::Learn::GrapeRoutes do
  VERSION_V3_V4 = "(?-mix:(?-mix:(?:v|%76)(?:3|%33))|(?-mix:(?:v|%76)(?:4|%34)))"
  FORMAT = { "source" => "[^\\/\\?#.]+", "options" => 0 }.freeze

  # Grape's router and the classifier on the table's generated requests plus `extra`.
  # @return [Array<String>] disagreements
  def disagreements(api, table, extra = [], prefix: "", app: api)
    classifier = Gitlab::Cells::Learn::Classifier.new(routes: table)
    requests = (RoutesRequests.for_table(table).map { |r| [r.method, r.path] } + extra).uniq
    expect(requests.size).to be > 50
    requests.filter_map do |method, path|
      answer = GrapeOracle.ask(app, method, path)
      ours = classifier.recognize(method, path)
      same = case answer.kind
             when :route then ours && GrapeOracle.same_route?(answer, ours, prefix: prefix) && RoutesRailsOracle.same_params?(answer.params, ours.params)
             when :options then ours&.route&.verb == "OPTIONS"
             else ours.nil?
             end
      "#{method} #{path}: Grape #{answer.to_h.compact}; ours #{ours && [ours.route.verb, ours.route.spec, ours.params]}" unless same
    end
  end

  def rows(table)
    table.map { |r| [r["verb"], r["path"]] }
  end

  let(:sub_api) { Class.new(Grape::API) { namespace(:admin) { get("stats") {} } } }
  let(:api) do
    sub = sub_api
    nested = Class.new(Grape::API) { get("/sub/:x") {} }
    Class.new(Grape::API) do
      version %w[v3 v4], using: :path
      prefix "api"
      namespace :groups do
        route_param :id, requirements: { id: %r{[^/]+} } do
          get {}
          route %w[GET POST], "members" do
            nil
          end
        end
      end
      head("/ping") {}
      get("/ping") {}
      mount sub
      mount nested => "/nested"
    end
  end
  let(:table) { described_class.extract(api) }

  describe ".extract" do
    it "lists method routes in definition order, then one auto-OPTIONS route per path pattern" do
      expect(rows(table)).to eq([
                                  ["GET|HEAD", "/api/:version/groups/:id(.:format)"],
                                  ["GET|HEAD", "/api/:version/groups/:id/members(.:format)"],
                                  ["POST", "/api/:version/groups/:id/members(.:format)"],
                                  ["HEAD", "/api/:version/ping(.:format)"],
                                  ["GET|HEAD", "/api/:version/ping(.:format)"],
                                  ["GET|HEAD", "/api/:version/admin/stats(.:format)"],
                                  ["GET|HEAD", "/nested/api/:version/sub/:x(.:format)"],
                                  ["OPTIONS", "/api/:version/groups/:id(.:format)"],
                                  ["OPTIONS", "/api/:version/groups/:id/members(.:format)"],
                                  ["OPTIONS", "/api/:version/ping(.:format)"],
                                  ["OPTIONS", "/api/:version/admin/stats(.:format)"],
                                  ["OPTIONS", "/nested/api/:version/sub/:x(.:format)"]
                                ])
      expect(table.map { |r| r["index"] }).to eq((0...table.size).to_a)
      expect(table).to all(include("name" => nil, "defaults" => {}, "dynamic_constraints" => false, "mounted" => false))
    end

    it "keeps :version a parameter constrained to the API's versions" do
      expect(table.map { |r| r["requirements"]["version"] }).to all(eq("source" => VERSION_V3_V4, "options" => 0))
    end

    it "reads route_param requirements and Grape's default parameter and format regexps" do
      expect(table[0]["requirements"]).to eq("version" => { "source" => VERSION_V3_V4, "options" => 0 },
                                             "id" => { "source" => "(?-mix:[^\\/]+)", "options" => 0 }, "format" => FORMAT)
      x = table[6]["requirements"]["x"]["source"]
      expect(Regexp.new("\\A#{x}\\z")).to match("a-b_c")
      expect(Regexp.new("\\A#{x}\\z")).not_to match("a/b")
    end

    it "puts a prefix before every route" do
      prefixed = described_class.extract(api, prefix: "/gitlab")
      expect(prefixed.map { |r| r["path"] }).to eq(table.map { |r| "/gitlab#{r["path"]}" })
      expect(described_class.extract(api, prefix: "/")).to eq(table)
    end

    it "agrees with Grape's router on every generated request" do
      extra = %w[/api/v3/ping /api/v4/ping /api/v5/ping /api/%76%34/ping /nested/api/v4/sub/a.json
                 /api/v3/groups/a%2Fb/members.xml /api/v4/groups/a/b /api/v4/admin/stats.json]
              .product(%w[GET HEAD POST PUT OPTIONS]).map(&:reverse)
      expect(disagreements(api, table, extra)).to eq([])
    end

    it "agrees with Grape behind a Rack mount when given that prefix" do
      prefixed = described_class.extract(api, prefix: "/gitlab")
      app = Rack::URLMap.new("/gitlab" => api)
      extra = %w[/gitlab/api/v4/ping /api/v4/ping /gitlab /gitlabx/api/v4/ping].product(%w[GET HEAD]).map(&:reverse)
      verbose = $VERBOSE
      $VERBOSE = nil # Rack::URLMap's /n regexp warns for every non-ASCII path
      found = disagreements(api, prefixed, extra, prefix: "/gitlab", app: app)
      $VERBOSE = verbose
      expect(found).to eq([])
    end

    it "puts `route :any` routes last with an empty verb, and gives their patterns no auto-OPTIONS" do
      any_api = Class.new(Grape::API) do
        format :json
        route(:any, "/hooks/:id") {}
        post("/hooks/:id") {}
        get("/*path") {}
      end
      any_table = described_class.extract(any_api)
      expect(rows(any_table)).to eq([
                                      ["POST", "/hooks/:id(.json)"], ["GET", "(/)*path(.json)"], ["OPTIONS", "(/)*path(.json)"], ["", "/hooks/:id(.json)"]
                                    ])
      expect(any_table[1]["requirements"]).to eq("path" => { "source" => ".*?", "options" => 0 })
      expect(disagreements(any_api, any_table, [%w[OPTIONS /hooks/1], %w[PUT /hooks/1], %w[DELETE /x/y]])).to eq([])
    end

    it "reads optional segments, dotted parameters and Grape's optional-slash globs" do
      dotted = Class.new(Grape::API) do
        format :json
        get("/a/:b.:ext") {}
        get("/commits(/:sha)") {}
        get("/?*opt") {}
      end
      dotted_table = described_class.extract(dotted)
      expect(rows(dotted_table).first(3)).to eq([["GET", "/a/:b.:ext(.json)"], ["GET", "/commits(/:sha)(.json)"], ["GET", "(/)*opt(.json)"]])
      extra = ["/", "/a/b.c", "/a/b.c.json", "/commits/", "/commits/abc.json", "/.json"].product(%w[GET HEAD OPTIONS]).map(&:reverse)
      expect(disagreements(dotted, dotted_table, extra)).to eq([])
    end

    it "adds no auto-OPTIONS routes under do_not_route_options!" do
      quiet = Class.new(Grape::API) do
        do_not_route_options!
        get("/a/:b") {}
      end
      quiet_table = described_class.extract(quiet)
      expect(rows(quiet_table)).to eq([["GET", "/a/:b(.:format)"]])
      expect(disagreements(quiet, quiet_table, [%w[OPTIONS /a/b]])).to eq([])
    end

    it "reads a mounted sub-API's routes with the mounting API's version and prefix" do
      expect(table[5]).to include("verb" => "GET|HEAD", "path" => "/api/:version/admin/stats(.:format)")
      standalone = Class.new(Grape::API) { namespace(:admin) { get("stats") {} } }
      expect(rows(described_class.extract(standalone))).to eq([["GET", "/admin/stats(.:format)"], ["OPTIONS", "/admin/stats(.:format)"]])
    end
  end

  describe ".journey_spec" do
    it "turns Mustermann's optional character and escapes into Journey syntax" do
      expect(described_class.journey_spec("/y/?*path(.:format)")).to eq("/y(/)*path(.:format)")
      expect(described_class.journey_spec("/a\\.b/:c")).to eq("/a.b/:c")
      expect(described_class.journey_spec("/x(/:y(/:z))")).to eq("/x(/:y(/:z))")
    end

    it "rejects Mustermann syntax Journey cannot spell, naming the byte" do
      expect { described_class.journey_spec("/a/{b}") }
        .to raise_error(Gitlab::Cells::Learn::Error, %(/a/{b}: Mustermann syntax "{" at byte 3 has no Journey equivalent))
      expect { described_class.journey_spec("/a/:") }.to raise_error(Gitlab::Cells::Learn::Error, "/a/:: : without a parameter name at byte 3")
      expect { described_class.journey_spec("/a)") }.to raise_error(Gitlab::Cells::Learn::Error, "/a): unbalanced ')' at byte 2")
      expect { described_class.journey_spec("/(a") }.to raise_error(Gitlab::Cells::Learn::Error, "/(a: unbalanced '('")
      expect { described_class.journey_spec("/a\\:b") }.to raise_error(Gitlab::Cells::Learn::Error, %(/a\\:b: escaped ":" at byte 2 has no Journey spelling))
    end
  end

  describe "errors" do
    it "rejects what is not a Grape API, and a prefix not starting with /" do
      expect { described_class.extract(String) }.to raise_error(Gitlab::Cells::Learn::Error, "expected a Grape::API subclass, got String")
      expect do
        Gitlab::Cells::Learn::Classifier.from_grape(Object.new)
      end.to raise_error(Gitlab::Cells::Learn::Error, /\Aexpected a Grape::API subclass, got #<Object/)
      expect { described_class.extract(api, prefix: "api") }
        .to raise_error(Gitlab::Cells::Learn::Error, 'prefix must be "" or a path starting with "/", got "api"')
    end

    it "refuses versions chosen by header, which the classifier cannot see" do
      header = Class.new(Grape::API) do
        version "v1", using: :header, vendor: "gitlab"
        get("/a") {}
      end
      expect do
        described_class.extract(header)
      end.to raise_error(Gitlab::Cells::Learn::Error, %r{route 0 \(GET /a\(\.:format\)\): Grape selects version "v1" by header})
    end

    it "refuses a Rack app mounted inside Grape (a string-prefix match)" do
      rack = ->(_env) { [200, {}, []] }
      forward = Class.new(Grape::API) { mount rack => "/rack" }
      expect do
        described_class.extract(forward)
      end.to raise_error(Gitlab::Cells::Learn::Error, %r{route 0 \(ANY /rack/\?\*path\(\.:format\)\): a forward_match route})
    end

    it "refuses do_not_route_head!, which Journey's HEAD-by-GET cannot express" do
      no_head = Class.new(Grape::API) do
        do_not_route_head!
        get("/a") {}
      end
      expect { described_class.extract(no_head) }.to raise_error(Gitlab::Cells::Learn::Error, /do_not_route_head! makes Grape refuse HEAD on GET routes/)
    end
  end
end
