# frozen_string_literal: true

require "grape"

# APIs and requests ported from Grape 1.6's own routing specs (ruby-grape/grape v1.6.2:
# spec/grape/api_spec.rb, spec/grape/api/*_in_route_spec.rb, routes_with_requirements_spec.rb,
# recognize_path_spec.rb, required_parameters_with_invalid_method_spec.rb; spec/shared/versioning_examples.rb
# with `using: :path`; spec/grape/endpoint_spec.rb; spec/grape/api_remount_spec.rb): each entry builds the
# example's API as a fresh Grape::API class and lists the paths the example requests.
# spec/grape_suite_port_spec.rb compares the gem with Grape's router on those paths (under every
# verb) and on near-misses generated from the API's routes. `pending` states a known
# disagreement between the gem and Grape, precisely.
module GrapeSuiteApis
  Case = Struct.new(:source, :name, :api, :requests, :known_disagreement, keyword_init: true)

  BARE_RACK = ->(_env) { [200, { "Content-Type" => "text/plain" }, ["rack"]] }

  # @return [Array<Case>]
  def self.all
    prefix_and_version + namespaces + route_params + routes + verbs + formats + mounts + versioning + api_structure + endpoint_and_remount
  end

  def self.api(source, name, requests, pending: nil, &block)
    Case.new(source: source, name: name, api: Class.new(Grape::API, &block), requests: requests, known_disagreement: pending)
  end

  # api_spec.rb: describe '.prefix', '.namespace' (prefix and version), shared 'versioning' (path)
  def self.prefix_and_version
    src = "api_spec.rb"
    [
      api(src, ".prefix routes root through with the prefix", %w[/awesome/sauce/ /awesome/sauce /awesome /]) do
        prefix "awesome/sauce"
        get { "Hello there." }
      end,
      api(src, ".prefix routes through with the prefix", %w[/awesome/sauce/hello /hello /awesome/sauce/hello.json]) do
        prefix "awesome/sauce"
        get(:hello) { "Hello there." }
      end,
      api(src, ".prefix supports OPTIONS / disallows POST", %w[/awesome/sauce /awesome/sauce.json]) do
        prefix "awesome/sauce"
        get
      end,
      api(src, ".namespace comes after the prefix and version", %w[/rad/v1/awesome/hello /rad/v2/awesome/hello /v1/awesome/hello]) do
        prefix :rad
        version "v1", using: :path
        namespace(:awesome) { get("/hello") { "worked" } }
      end,
      api(src, ".namespace is callable with nil just to push onto the stack", %w[/v2/hello /hello /v1/hello /v2]) do
        namespace do
          version "v2", using: :path
          get("/hello") { "inner" }
        end
        get("/hello") { "outer" }
      end,
      api(src, ".route root routes with path versioned APIs, a single version", %w[/v1 /v1/ /v1/.json /v2/ /]) do
        version "v1", using: :path
        get("/") { "root" }
      end,
      api(src, ".route root routes with path versioned APIs, array of versions", %w[/v1/ /v2/ /v3/ /v1/.json]) do
        version %w[v1 v2], using: :path
        get("/") { "root" }
      end,
      api(src, ".route root routes with unversioned APIs", %w[/ /.json /x]) { get("/") { "root" } }
    ]
  end

  # api_spec.rb: describe '.namespace'; api/namespace_parameters_in_route_spec.rb
  def self.namespaces
    [
      api("api_spec.rb", ".namespace accepts path segments correctly", %w[/members/23 /members /members/23/x]) do
        namespace(:members) { namespace("/:member_id") { get("/") { params[:member_id] } } }
      end,
      api("api/namespace_parameters_in_route_spec.rb", "get responds without ext; put responds", %w[/me/pending /me/foo /me /me/pending.json]) do
        namespace :me do
          namespace(:pending) { get("/") { "banana" } }
          put(":id") { params[:id] }
        end
      end
    ] + %w[group resource resources segment].map do |als|
      api("api_spec.rb", ".namespace `.#{als}` is an alias", %w[/awesome /awesome/x]) { send(als, :awesome) { get { "ok" } } }
    end
  end

  # api_spec.rb: describe '.route_param'; api/routes_with_requirements_spec.rb
  def self.route_params
    src = "api/routes_with_requirements_spec.rb"
    dots = { ns_with_dots: %r{[^/]+} }
    [
      api("api_spec.rb", ".route_param adds a parameterized route segment namespace", %w[/users/23 /users /users/23.json]) do
        namespace(:users) { route_param(:id) { get { params[:id] } } }
      end,
      api("api_spec.rb", ".route_param defines requirements with a single hash", %w[/users/michael /users/23 /users/23.json]) do
        namespace(:users) { route_param(:id, requirements: /[0-9]+/) { get { params[:id] } } }
      end,
      api("api_spec.rb", ".route_param with param type definitions", %w[/route_param/1234 /route_param/abc]) do
        namespace(:route_param) { route_param(:foo, type: Integer) { get { params.to_json } } }
      end,
      api(src, "routes to a namespace param with dots", %w[/test.id.with.dots /test /test.json]) do
        namespace(":ns_with_dots", requirements: dots) { get("/") { params[:ns_with_dots] } }
      end,
      api(src, "routes to a path with multiple params with dots", %w[/test.id/test2.id /test.id /a/b.json]) do
        get(":id_with_dots/:another_id_with_dots", requirements: { id_with_dots: %r{[^/]+}, another_id_with_dots: %r{[^/]+} }) { "ok" }
      end,
      api(src, "routes to namespace and path params with dots, with overridden requirements", %w[/test.id/test2.id /test.id]) do
        namespace(":ns_with_dots", requirements: dots) do
          get(":another_id_with_dots", requirements: dots.merge(another_id_with_dots: %r{[^/]+})) { "ok" }
        end
      end,
      api(src, "routes to namespace and path params with dots, with merged requirements", %w[/test.id/test2.id /test.id/x.json]) do
        namespace(":ns_with_dots", requirements: dots) do
          get(":another_id_with_dots", requirements: { another_id_with_dots: %r{[^/]+} }) { "ok" }
        end
      end
    ]
  end

  # api_spec.rb: describe '.route'; api/*_parameters_in_route_spec.rb; recognize_path_spec.rb
  def self.routes
    src = "api_spec.rb"
    [
      api(src, ".route allows for no path", %w[/votes /votes.json /votes/1]) do
        namespace :votes do
          get { "Votes" }
          post { "Created a Vote" }
        end
      end,
      api(src, ".route handles empty calls", %w[/ /x]) { get "/" },
      api(src, ".route allows for multiple paths", %w[/abc /def /abc.json /ghi]) { get(%w[/abc /def]) { "foo" } },
      api(src, ".route allows for multiple verbs", %w[/abc /abc.json]) { route(%i[get post], "/abc") { "hiya" } },
      api(src, ".route allows for multipart paths", %w[/1 /1/first /1/first/second /1/first/second/third]) do
        route(%i[get post], "/:id/first") { "first" }
        route(%i[get post], "/:id") { "ola" }
        route(%i[get post], "/:id/first/second") { "second" }
      end,
      api(src, ".route allows for :any as a verb", %w[/abc /abc.json /abcd]) { route(:any, "/abc") { "lol" } },
      api(src, ".route allows for catch-all in a namespace", %w[/nested /nested/something /nested/missing /nested/a/b /other]) do
        namespace :nested do
          get { "root" }
          get("something") { "something" }
          route(:any, "*path") { "catch-all" }
        end
      end,
      api("api/optional_parameters_in_route_spec.rb", "get responds with and without ext; put responds", %w[/api/foo /api/foo/bar /api/foo/bar/baz]) do
        namespace :api do
          get(":id(/:ext)") { [params[:id], params[:ext]].compact.join("/") }
          put(":id") { params[:id] }
        end
      end,
      api("api/required_parameters_in_route_spec.rb", "get responds; put responds", %w[/api/foo /api /api/foo.json]) do
        namespace :api do
          get(":id") { params[:id] }
          put(":something_id") { params[:something_id] }
        end
      end,
      api("api/required_parameters_with_invalid_method_spec.rb", "post 405", %w[/something /]) do
        namespace do
          params { requires :id, desc: "Identifier." }
          get(":id") { "ok" }
        end
      end,
      api("api/recognize_path_spec.rb", "fetches endpoint by given path", %w[/bar/1234 /foo/1 /baz/x /qux/1]) do
        get("/foo/:id") { "foo" }
        get("/bar/:id") { "bar" }
        get("/baz/:id") { "baz" }
      end
    ]
  end

  # api_spec.rb: "allows and properly constrain a VERB method", HEAD, do_not_route_head!/options!
  def self.verbs
    src = "api_spec.rb"
    cases = %w[post get head delete put options patch].map do |verb|
      api(src, ".route allows and properly constrain a #{verb.upcase} method", %w[/example /example.json /example/x]) do
        send(verb, "/example") { verb }
      end
    end
    cases + [
      api(src, ".route allows HEAD on a GET request (with a catch-all)", %w[/example /other /example/x]) do
        get("example") { "example" }
        route(:any, "*path") { error! :not_found, 404 }
      end,
      api(src, ".route overwrites the default HEAD request", %w[/example]) do
        head("example") { error! "nothing to see here", 400 }
        get("example") { "example" }
      end,
      api(src, "do_not_route_head! options does not contain HEAD; HEAD is 405", %w[/example /example.json],
          pending: "from_grape refuses the API (do_not_route_head!: Grape answers HEAD on a GET route 405, " \
                   "the gem's table would answer it with the GET route)") do
        do_not_route_head!
        get("example") { "example" }
      end,
      api(src, "do_not_route_options! does not create an OPTIONS route", %w[/example /example.json]) do
        do_not_route_options!
        get("example") { "example" }
      end
    ]
  end

  # api_spec.rb: describe '.route' context 'format', format in ids, 'format :json'
  def self.formats
    src = "api_spec.rb"
    [
      api(src, ".route format allows .json and .txt", %w[/abc /abc.json /abc.txt /abc.xml /abc.]) { get("/abc") { "abc" } },
      api(src, ".route allows for format without corrupting a param", %w[/awesome.json /awesome /awesome.txt /a.b.json]) do
        get("/:id") { { "id" => params[:id] } }
      end,
      api(src, ".route allows for format in namespace with no path", %w[/abc.json /abc /abc.xml]) do
        namespace(:abc) { get { ["json"] } }
      end,
      api(src, "format includes extension in format", %w[/baz.bar /baz /baz.bar.qux]) { get(":id") { params[:format] } },
      api(src, "format (json) does not include extension in id", %w[/baz.bar /baz /baz.json /baz.txt]) do
        format :json
        get(":id") { params }
      end
    ]
  end

  # api_spec.rb: describe '.mount'
  def self.mounts
    src = "api_spec.rb"
    inner = lambda do |&block|
      Class.new(Grape::API, &block)
    end
    [
      api(src, ".mount with a bare rack app anchors the routes, passing all subroutes to it", %w[/rack /rack/a/b /rackx /],
          pending: "from_grape refuses the API (a Rack app mounted in Grape is a forward_match route: Grape matches it " \
                   "by string prefix, so /rackx reaches the app too)") do
        mount BARE_RACK => "/rack"
      end,
      api(src, ".mount collects the routes of the mounted api", %w[/cool/awesome /cool/sauce /cool]) do
        app = inner.call do
          get("/awesome") { "a" }
          post("/sauce") { "s" }
        end
        namespace(:cool) { mount app }
      end,
      api(src, ".mount mounts on a path", %w[/mounted/cool/awesome /cool/awesome /mounted/awesome]) do
        app = inner.call { get("/awesome") { "sauce" } }
        namespace(:cool) { mount app => "/mounted" }
      end,
      api(src, ".mount mounts on a nested path", %w[/app1/app2/nice /app2/nice /app1/nice]) do
        app2 = inner.call { get("/nice") { "play" } }
        app1 = inner.call { mount app2 => "/app2" }
        mount app1 => "/app1"
      end,
      api(src, ".mount responds to options", %w[/apples/colour /apples/pears/colour /pears/colour]) do
        app = inner.call do
          get("/colour") { "red" }
          namespace(:pears) { get("/colour") { "green" } }
        end
        namespace(:apples) { mount app }
      end,
      api(src, ".mount responds to options with path versioning", %w[/v1/apples/colour /apples/colour /v2/apples/colour]) do
        version "v1", using: :path
        app = inner.call { get("/colour") { "red" } }
        namespace(:apples) { mount app }
      end,
      api(src, ".mount mounts a versioned API with nested resources", %w[/v1/users/hello /users/hello]) do
        mount(inner.call do
          version "v1"
          resources(:users) { get(:hello) { "hello users" } }
        end)
      end,
      api(src, ".mount mounts a prefixed API with nested resources", %w[/api/users/hello /users/hello]) do
        mount(inner.call do
          prefix "api"
          resources(:users) { get(:hello) { "hello users" } }
        end)
      end,
      api(src, ".mount applies format to a mounted API with nested resources", %w[/users /users.json /users.xml]) do
        mount(inner.call do
          format :json
          resources(:users) { get { { users: true } } }
        end)
      end,
      api(src, ".mount recognizes potential versions with mounted path", %w[/one/v1/hello /two/v1/world /one/v1/world /two/v2/world]) do
        mount(inner.call do
          version :v1, using: :path
          get("/hello") { "hello" }
        end => "/one")
        mount(inner.call do
          version :v1, using: :path
          get("/world") { "world" }
        end => "/two")
      end
    ]
  end

  # spec/shared/versioning_examples.rb, as api_spec.rb's '.version using path' runs it
  def self.versioning
    src = "shared/versioning_examples.rb (using: :path)"
    path = { using: :path }
    version_api = lambda do |v|
      Class.new(Grape::API) do
        version v, path
        get("version") { v }
      end
    end
    [
      api(src, "sets the API version", %w[/v1/hello /hello /v2/hello /v1/hello.txt]) do
        format :txt
        version "v1", path
        get(:hello) { "Version: #{request.env["api.version"]}" }
      end,
      api(src, "adds the prefix before the API version", %w[/api/v1/hello /v1/api/hello /api/hello]) do
        format :txt
        prefix "api"
        version "v1", path
        get(:hello) { "Version: #{request.env["api.version"]}" }
      end,
      api(src, "is able to specify version as a nesting", %w[/v1/awesome /v2/awesome /v1/legacy /v2/legacy]) do
        version "v2", path
        get("/awesome") { "Radical" }
        version("v1", path) { get("/legacy") { "Totally" } }
      end,
      api(src, "is able to specify multiple versions", %w[/v1/awesome /v2/awesome /v3/awesome]) do
        version "v1", "v2", path
        get("awesome") { "I exist" }
      end,
      api(src, "with different versions for the same endpoint without a prefix", %w[/v1/version /v2/version /v3/version]) do
        format :txt
        version "v2", path
        get("version") { request.env["api.version"] }
        version("v1", path) { get("version") { "version #{request.env["api.version"]}" } }
      end,
      api(src, "with different versions for the same endpoint with a prefix", %w[/api/v1/version /api/v2/version /v1/version]) do
        format :txt
        prefix "api"
        version "v2", path
        get("version") { request.env["api.version"] }
        version("v1", path) { get("version") { "version #{request.env["api.version"]}" } }
      end,
      api(src, "does not overwrite version parameter with API version", %w[/v1/api_version_with_version_param?version=1 /v1/api_version_with_version_param]) do
        format :txt
        version "v1", path
        params { requires :version }
        get(:api_version_with_version_param) { params[:version] }
      end,
      api(src, "with catch-all finds endpoint and catch all", %w[/v1/version /v2/version /v1/whatever /v2/whatever /whatever /v3/version]) do
        format :txt
        mount version_api.call("v1")
        mount version_api.call("v2")
        route(:any, "*path") { params[:path] }
      end
    ]
  end

  # api_spec.rb: 'api structure with two versions and a namespace', context 'catch-all' (anchor),
  # 'adds an OPTIONS route that', '405 responses'
  def self.api_structure
    src = "api_spec.rb"
    hello = lambda do |v|
      Class.new(Grape::API) do
        version v, using: :path
        get("hello") { v }
      end
    end
    [
      api(src, "api structure with two versions and a namespace", %w[/v1/version /v2/version /p/v2/n1/n2/version /p/v1/n1/n2/version]) do
        version "v1", using: :path
        get("version") { "v1" }
        version "v2", using: :path
        prefix "p"
        namespace("n1") { namespace("n2") { get("version") { "v2" } } }
      end
    ] + [true, false].map do |anchor|
      api(src, "catch-all anchor=#{anchor}", %w[/v1/hello /v2/hello /foobar /v3/hello /v1/hello/x]) do
        mount hello.call("v1")
        mount hello.call("v2")
        route(:any, "*path", anchor: anchor) { error!("Unrecognized request path: #{params[:path]}", 404) }
      end
    end + [
      api(src, "adds an OPTIONS route that returns a 204 (with a catch-all)", %w[/example /example.json /other]) do
        params { requires :only_for_get }
        get("example") { "example" }
        route(:any, "*path") { error! :not_found, 404 }
      end,
      api(src, "405 responses includes an Content-Type header", %w[/example /example.json]) do
        get("example") { "example" }
        post("example") { "example" }
      end
    ]
  end

  # endpoint_spec.rb: 'with special requirements', context 'anchoring'; api_remount_spec.rb
  def self.endpoint_and_remount
    src = "endpoint_spec.rb"
    emails = %w[/someone@example.com /someone@example.com.pl /someone@example.com/test/1 /someone@testing.wrong/test/1
                /someone@test.com/test/wrong_number /someone@test.com/wrong_middle/1]
    anchored = %w[/example /example/and/some/more /example.json /examples]
    cases = [
      api(src, "with special requirements parses email param with provided requirements for params", emails) do
        get("/:person_email", requirements: { person_email: /.*/ }) { params[:person_email] }
      end,
      api(src, "with special requirements parses many params with provided regexps", emails) do
        get("/:person_email/test/:number", requirements: { person_email: /someone@(.*).com/, number: /[0-9]/ }) { "ok" }
      end,
      api(src, "namespace requirements (parse email param; overrides outer namespace's requirements)",
          %w[/outer/abc@example.com /outer/inner/someone@testing.wrong/test/1 /outer/inner/someone@testing.com/test/1 /outer/x@y.com]) do
        namespace :outer, requirements: { person_email: /abc@(.*).com/ } do
          get("/:person_email") { params[:person_email] }
          namespace :inner, requirements: { number: /[0-9]/, person_email: /someone@(.*).com/ } do
            get("/:person_email/test/:number") { "ok" }
          end
        end
      end
    ]
    cases += %w[delete post get head put options patch].flat_map do |verb|
      [
        api(src, "anchoring allows for the anchoring option with a #{verb.upcase} method", anchored) do
          send(verb, "/example", anchor: true) { verb }
        end,
        api(src, "anchoring responds to /example/and/some/more for the non-anchored #{verb.upcase} method", anchored) do
          send(verb, "/example", anchor: false) { verb }
        end
      ]
    end
    votes = Class.new(Grape::API) { get("/votes") { "votes" } }
    cases + [
      api("api_remount_spec.rb", "remounting an API when mounting twice", %w[/posts/votes /comments/votes /votes]) do
        mount votes => "/posts"
        mount votes => "/comments"
      end,
      api("api_remount_spec.rb", "remounting an API when mounting on namespace", %w[/posts/votes /comments/votes /votes]) do
        namespace(:posts) { mount votes }
        namespace(:comments) { mount votes }
      end
    ]
  end
end
