# frozen_string_literal: true

require "rails"
require "action_dispatch"

# A Rails engine for the extraction specs (engines must be named classes).
module RailsRoutesSpecBlog
  class Engine < ::Rails::Engine
    isolate_namespace RailsRoutesSpecBlog
  end
end
RailsRoutesSpecBlog::Engine.routes.draw do
  get "/posts/:id", to: "posts#show", as: "post", constraints: { id: /\d+/ }
  root to: "posts#index"
end

# Unit specs for RailsRoutes.extract (what Classifier.from_rails reads) on small route sets drawn
# with the real routing DSL, then Classifier.from_rails against Rails' own router.
RSpec.describe Gitlab::Cells::Learn::RailsRoutes do
  # A constraint object, as GitLab's GroupUrlConstrainer.
  class RailsRoutesSpecConstraint
    def matches?(_request)
      true
    end
  end

  # A small Grape API without a prefix, for `mount ... => "/api"`.
  def self.grape_api
    Class.new(Grape::API) do
      version "v4", using: :path
      format :json
      helpers GrapeGitlabApi::Identity
      get("/version") { identify! }
      resource :projects, requirements: { id: %r{[^/]+} } do
        get(":id") { identify! }
        post(":id/issues") { identify! }
      end
    end
  end

  MOUNTED_RACK_APP = ->(_env) { [200, { "X-Rack-App" => "sidekiq" }, ["sidekiq"]] }

  before(:context) do
    api = self.class.grape_api
    @route_set = ActionDispatch::Routing::RouteSet.new
    @route_set.draw do
      get "/help", to: "help#index", as: "help"
      match "/search", to: "search#show", via: %i[get post], as: "search"
      match "/any", to: "any#show", via: :all, as: "any"
      get "/:namespace_id/:project_id(/-/tree/*path)(.:format)", to: "tree#show", as: "tree",
                                                                 constraints: { namespace_id: /[a-z][a-z0-9_-]*/i, project_id: "gitlab" }
      get "/files/*path", to: "files#show", format: false, as: "files"
      get "/raw/*path", to: "raw#show", as: "raw"
      get "/ext/:id", to: "ext#show", as: "ext", constraints: { id: / \d+ # digits
                                                                      /x }
      get "/feed", to: "feed#show", as: "feed", defaults: { format: :atom }
      get "/obj/:id", to: "obj#show", as: "obj", constraints: RailsRoutesSpecConstraint.new
      get "/lam/:id", to: "lam#show", as: "lam", constraints: ->(_req) { true }
      constraints(->(_req) { true }) { get "/block/:id", to: "block#show", as: "block" }
      get "/sub", to: "sub#show", as: "sub", constraints: { subdomain: "admin" }
      get "/old/:id", to: redirect("/new/%{id}"), as: "old"
      mount MOUNTED_RACK_APP => "/sidekiq", as: "sidekiq"
      mount RailsRoutesSpecBlog::Engine => "/blog", as: "blog"
      mount RailsRoutesSpecBlog::Engine => "/:tenant/blog", as: "tenant_blog", constraints: { tenant: /t\d+/ }
      mount api => "/api", as: "api"
      get "/:username", to: "users#show", as: "user", format: false, constraints: { username: /[a-z0-9_.-]+/ }
    end
    @table = described_class.extract(@route_set)
  end

  def row(name)
    found = @table.select { |r| r["name"] == name }
    raise "#{found.size} rows named #{name.inspect}" unless found.size == 1

    found.first
  end

  describe ".extract" do
    it "numbers the rows in definition order, mounts expanded in place" do
      expect(@table.map { |r| r["index"] }).to eq((0...@table.size).to_a)
      names = @table.map { |r| r["name"] }.compact
      expect(names.first(14)).to eq(%w[help search any tree files raw ext feed obj lam block sub old sidekiq])
      expect(names.last).to eq("user")
      expect(@table.index(row("sidekiq"))).to be < @table.index { |r| r["path"].start_with?("/blog") }
      expect(@table.rindex { |r| r["path"].start_with?("/api/") }).to be < @table.index(row("user"))
    end

    it "reads verbs: one, several joined by |, and empty for via: :all" do
      expect(row("help")["verb"]).to eq("GET")
      expect(row("search")["verb"]).to eq("GET|POST")
      expect(row("any")["verb"]).to eq("")
      expect(row("sidekiq")["verb"]).to eq("")
    end

    it "reads path.spec with optional groups, globs and (.:format)" do
      expect(row("help")["path"]).to eq("/help(.:format)")
      expect(row("tree")["path"]).to eq("/:namespace_id/:project_id(/-/tree/*path)(.:format)")
      expect(row("files")["path"]).to eq("/files/*path")
      expect(row("user")["path"]).to eq("/:username")
    end

    it "reads per-parameter requirements: regexp source with option bits, and literals (Rails refuses /m itself)" do
      expect(row("tree")["requirements"]).to eq(
        "namespace_id" => { "source" => "[a-z][a-z0-9_-]*", "options" => Regexp::IGNORECASE },
        "project_id" => { "literal" => "gitlab" }
      )
      expect(row("ext")["requirements"]).to eq("id" => { "source" => " \\d+ # digits\n                                                                      ",
                                                         "options" => Regexp::EXTENDED })
      expect(row("help")["requirements"]).to eq({})
    end

    it "leaves out the lazy glob default of formatted routes and gives format: false globs Journey's greedy .+" do
      expect(row("raw")["requirements"]).to eq({})
      expect(@route_set.routes.routes.find { |r| r.name == "raw" }.path.requirements[:path]).to eq(/.+?/)
      expect(row("files")["requirements"]).to eq("path" => { "source" => ".+", "options" => 0 })
    end

    it "reads defaults (controller, action, format) as strings" do
      expect(row("help")["defaults"]).to eq("controller" => "help", "action" => "index")
      expect(row("feed")["defaults"]).to eq("controller" => "feed", "action" => "show", "format" => "atom")
      expect(row("old")["defaults"]).to eq({})
    end

    it "flags constraint objects, lambdas, constraint blocks and request conditions as dynamic" do
      dynamic = @table.select { |r| r["dynamic_constraints"] }.map { |r| r["name"] }
      expect(dynamic).to eq(%w[obj lam block sub])
      expect(row("sub")["defaults"]).to include("subdomain" => "admin")
    end

    it "reads a redirect as an ordinary anchored route without an endpoint" do
      expect(row("old")).to include("verb" => "GET", "path" => "/old/:id(.:format)", "mounted" => false, "dynamic_constraints" => false)
    end

    it "keeps a plain Rack app as one mounted route (a prefix)" do
      expect(row("sidekiq")).to include("path" => "/sidekiq", "mounted" => true, "defaults" => {})
    end

    it "follows an engine: its routes under the mount path, with the engine's requirements and names" do
      blog = @table.select { |r| r["path"].start_with?("/blog") }
      expect(blog.map { |r| [r["verb"], r["path"], r["name"], r["defaults"]] }).to eq([
                                                                                        ["GET", "/blog/posts/:id(.:format)", "post",
                                                                                         { "controller" => "rails_routes_spec_blog/posts", "action" => "show" }],
                                                                                        ["GET", "/blog", "root",
                                                                                         { "controller" => "rails_routes_spec_blog/posts", "action" => "index" }]
                                                                                      ])
      expect(blog.first["requirements"]).to eq("id" => { "source" => "\\d+", "options" => 0 })
      expect(blog).to all(include("mounted" => false))
    end

    it "carries the mount path's parameters and requirements into the engine's routes" do
      tenant = @table.select { |r| r["path"].start_with?("/:tenant/blog") }
      expect(tenant.map { |r| r["path"] }).to eq(["/:tenant/blog/posts/:id(.:format)", "/:tenant/blog"])
      expect(tenant.first["requirements"]).to eq("tenant" => { "source" => "t\\d+", "options" => 0 }, "id" => { "source" => "\\d+", "options" => 0 })
      expect(tenant.last["requirements"]).to eq("tenant" => { "source" => "t\\d+", "options" => 0 })
    end

    it "follows a Grape API mounted at /api into its routes, auto-OPTIONS included" do
      api = @table.select { |r| r["path"].start_with?("/api/") }
      expect(api.map { |r| [r["verb"], r["path"]] }).to eq([
                                                             ["GET", "/api/:version/version(.json)"],
                                                             ["GET", "/api/:version/projects/:id(.json)"],
                                                             ["POST", "/api/:version/projects/:id/issues(.json)"],
                                                             ["OPTIONS", "/api/:version/version(.json)"],
                                                             ["OPTIONS", "/api/:version/projects/:id(.json)"],
                                                             ["OPTIONS", "/api/:version/projects/:id/issues(.json)"]
                                                           ])
      expect(api[1]["requirements"]).to include("id" => { "source" => "(?-mix:[^\\/]+)", "options" => 0 })
      expect(api).to all(include("mounted" => false, "dynamic_constraints" => false))
    end

    it "gives every row the corpus fields" do
      expect(@table).to all(include(
                              "index" => Integer, "verb" => String, "path" => start_with("/"), "name" => be_nil.or(be_a(String)),
                              "requirements" => Hash, "defaults" => Hash, "dynamic_constraints" => be(true).or(be(false)),
                              "mounted" => be(true).or(be(false))
                            ))
      # Written only where they apply: request conditions (HEAD), Grape's encoded literals.
      optional = %w[request_conditions encoded_literals_after]
      expect(@table.flat_map(&:keys).uniq - %w[index verb path name requirements defaults dynamic_constraints mounted]).to match_array(optional)
    end
  end

  describe "errors" do
    def draw(&)
      route_set = ActionDispatch::Routing::RouteSet.new
      route_set.draw(&)
      route_set
    end

    it "rejects something that is not a RouteSet" do
      expect { described_class.extract(Object.new) }
        .to raise_error(Gitlab::Cells::Learn::Error, "expected an ActionDispatch::Routing::RouteSet, got Object")
      expect { Gitlab::Cells::Learn::Classifier.from_rails(nil) }
        .to raise_error(Gitlab::Cells::Learn::Error, "expected an ActionDispatch::Routing::RouteSet, got NilClass")
    end

    it "carries defaults that are not JSON scalars as JSON, or by their class (a Rack app, an object)" do
      app = ->(_env) { [200, {}, ["users"]] }
      route_set = draw do
        get "/ok", to: "ok#show"
        get "/x/:id", to: "x#show", defaults: { tag: Object.new, list: [1, :a], map: { k: :v } }
        resources :users, only: :show, to: app
      end
      routes = described_class.extract(route_set)
      expect(routes[1]["defaults"]).to include("tag" => "#<Object>", "list" => [1, "a"], "map" => { "k" => "v" })
      classifier = Gitlab::Cells::Learn::Classifier.from_rails(route_set)
      expect(classifier.recognize(:get, "/users/5")&.route&.spec).to eq("/users/:id(.:format)")
    end

    it "compiles what Rails accepts: an Array requirement (Regexp.union), a parameter named twice, \\101" do
      route_set = draw do
        get "/idx/:idx", to: "d#i", constraints: { idx: %w[first last.one] }
        get "/downloads/:id/:id.tar", to: "d#s"
        get "/oct/:x", to: "d#o", constraints: { x: /\101+/ }
      end
      classifier = Gitlab::Cells::Learn::Classifier.from_rails(route_set)
      %w[/idx/first /idx/last.one /idx/middle /idx/lastxone /downloads/1/2.tar /oct/AAA /oct/101].each do |path|
        ours = classifier.recognize(:get, path)
        rails = nil
        route_set.router.recognize(ActionDispatch::Request.new(Rack::MockRequest.env_for(path))) do |route, params|
          rails ||= [route.path.spec.to_s, params.except(:controller, :action).transform_keys(&:to_s)]
        end
        expect(ours && [ours.route.spec, ours.params]).to eq(rails), path
      end
    end

    it "refuses to follow a verb-restricted mount of a Grape API" do
      api = self.class.grape_api
      route_set = draw { mount api => "/api", via: :get, as: "api" }
      expect { described_class.extract(route_set) }
        .to raise_error(Gitlab::Cells::Learn::Error,
                        %r{\Aroute 0 \(GET /api\): a mount restricted to GET cannot be followed into .*; mount it with via: :all\z})
    end

    it "names the engine mount when an engine's route cannot be read" do
      engine = Class.new(::Rails::Engine)
      engine.routes.draw { get "/bad/:x", to: "bad#show", constraints: { x: 1.5 } } # Rails' own router raises TypeError on it
      route_set = draw { mount engine => "/eng", as: "eng" }
      expect { described_class.extract(route_set) }
        .to raise_error(Gitlab::Cells::Learn::Error,
                        %r{\Aroute 0 \(ANY /eng\) > route 0 \(GET /bad/:x\(\.:format\)\): requirement x=1\.5 \(Float\) is neither a Regexp nor a String\z})
    end

    # Issue 15: a back-reference no longer refuses the table (Ruby's Regexp decides the route,
    # spec/onigmo_constructs_spec.rb); what the core still refuses is what Journey never draws.
    it "compiles a requirement only Ruby can decide, and names route, position and reason for a spec the core cannot compile" do
      route_set = draw do
        get "/ok", to: "ok#show"
        get "/x/:id", to: "x#show", constraints: { id: /(a)\1/ }
      end
      classifier = Gitlab::Cells::Learn::Classifier.from_rails(route_set)
      expect(classifier.route_definitions[1]["host_regex"]["constructs"]).to eq([["id", { "position" => 3, "construct" => "back-reference \\1" }]])
      table = [{ "verb" => "GET", "path" => "/ok" }, { "verb" => "GET", "path" => "/x/:id", "requirements" => { "id" => { "source" => "a{3,2}" } } }]
      expect { Gitlab::Cells::Learn::Classifier.new(routes: table) }.to raise_error(Gitlab::Cells::Learn::InvalidRouteError) { |e|
        expect([e.route_index, e.position, e.reason]).to eq([1, 1, "upper repetition bound below lower bound"])
        expect(e.message).to include("route 1", "/x/:id", "'id'")
      }
    end
  end

  describe "Classifier.from_rails" do
    before(:context) do
      @classifier = Gitlab::Cells::Learn::Classifier.from_rails(@route_set)
    end

    # Requests outside the followed mounts, where Rails' recognize picks the route itself.
    RAILS_REQUESTS = [
      %w[GET /help], %w[GET /help.json], %w[POST /help], %w[GET /search], %w[POST /search.json], %w[PUT /search],
      %w[DELETE /any], %w[PATCH /any.xml], %w[GET /gitlab-org/gitlab], %w[GET /Gitlab-Org/gitlab/-/tree/a/b.rb],
      %w[GET /gitlab-org/other], %w[GET /9org/gitlab], %w[GET /gitlab-org/gitlab/-/tree/a/b.rb.json],
      %w[GET /files/a/b.c], %w[GET /files], %w[GET /raw/a/b.json], %w[GET /ext/123], %w[GET /ext/12a],
      %w[GET /feed], %w[GET /feed.atom], %w[GET /obj/1],
      %w[GET /lam/1.json], %w[GET /block/x], %w[GET /old/5], %w[HEAD /old/5], %w[GET /sidekiq], %w[GET /sidekiq/],
      %w[POST /sidekiq/queues/default], %w[GET /sidekiqx], %w[GET /sidekiq-x], %w[GET /sidekiq.json],
      %w[GET /john.doe], %w[GET /john.doe/x], %w[GET /John], %w[GET /], %w[GET //help/]
    ].freeze

    it "picks the route Rails' router recognizes, with its parameters" do
      RAILS_REQUESTS.each do |method, path|
        rails = RoutesRailsOracle.pick(@route_set, method, path)
        ours = @classifier.recognize(method, path)
        if rails.nil?
          expect(ours).to be_nil, "#{method} #{path}: Rails has no route, ours #{ours&.route&.spec}"
        else
          expect(ours&.route&.spec).to eq(rails.route.path.spec.to_s), "#{method} #{path}"
          expect(ours.route.name).to eq(rails.route.name), "#{method} #{path}"
          expect(RoutesRailsOracle.same_params?(ours.params, rails.params)).to be(true),
                                                                               "#{method} #{path}: Rails #{rails.params} ours #{ours.params}"
        end
      end
    end

    it "asks the host's block about request conditions Rails checks (subdomain)" do
      rails = RoutesRailsOracle.pick(@route_set, "GET", "/sub")
      expect(rails.route.name).to eq("user") # example.org has no admin subdomain
      asked = []
      ours = @classifier.recognize("GET", "/sub") do |route, _params|
        asked << route.name
        false
      end
      expect(asked).to eq(["sub"])
      expect(ours.route.name).to eq("user")
      expect(@classifier.recognize("GET", "/sub").route).to have_attributes(name: "sub", dynamic: true, endpoint: "sub#show")
    end

    it "matches the engine's routes under the mount, as the engine serves them" do
      expect(@classifier.recognize("GET", "/blog/posts/12")).to have_attributes(
        route: have_attributes(spec: "/blog/posts/:id(.:format)", endpoint: "rails_routes_spec_blog/posts#show"), params: { "id" => "12" }
      )
      expect(@classifier.recognize("GET", "/blog/").route.endpoint).to eq("rails_routes_spec_blog/posts#index")
      expect(@classifier.recognize("GET", "/t7/blog/posts/3.json").params).to eq("tenant" => "t7", "id" => "3", "format" => "json")
      # The engine has no route for it and cascades; /:username takes no slash: no route at all.
      expect(@classifier.recognize("GET", "/blog/posts/abc")).to be_nil
      [%w[GET /blog/posts/12], %w[GET /blog], %w[GET /t7/blog/posts/3.json]].each do |method, path|
        rails = RoutesRailsOracle.pick(@route_set, method, path)
        expect(rails.route.path.anchored).to be(false) # Rails' recognize stops at the mount...
        expect(path).to start_with(rails.route.path.spec.to_s.sub(":tenant", "t7")) # ...whose prefix ours carries
      end
    end

    it "matches the Grape API's routes under /api as Rails + Grape serve them" do
      [%w[GET /api/v4/version], %w[GET /api/v4/projects/gitlab-org%2Fgitlab], %w[HEAD /api/v4/projects/42.json],
       %w[POST /api/v4/projects/gitlab-org%2Fgitlab/issues], %w[GET /api/v4/projects/a/b], %w[DELETE /api/v4/version],
       %w[OPTIONS /api/v4/projects/1], %w[GET /api/v3/version]].each do |method, path|
        answer = GrapeOracle.ask(@route_set, method, path)
        ours = @classifier.recognize(method, path)
        case answer.kind
        when :route
          expect(GrapeOracle.same_route?(answer, ours, prefix: "/api")).to be(true), "#{method} #{path}: #{answer.grape_path}, ours #{ours&.route&.spec}"
          expect(ours.params).to eq(answer.params)
        when :options
          expect(ours.route.verb).to eq("OPTIONS")
        else
          # 405 is not cascaded by Rails, 404 is: both leave the mount, ours finds the later /:username or nothing.
          expect(ours&.route&.name).to be_nil.or(eq("user")), "#{method} #{path}: Grape #{answer.kind}, ours #{ours&.route&.spec}"
        end
      end
      expect(@classifier.recognize("GET", "/api/v4/projects/gitlab-org%2Fgitlab").params).to eq("version" => "v4", "id" => "gitlab-org/gitlab")
    end
  end
end
