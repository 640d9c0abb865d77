# frozen_string_literal: true

require "rails"
require "action_dispatch"
require "action_controller"
require "rack/mock"

# Where the gem used to disagree with Rails (issue 15, section 2), checked against Rails' router
# serving the same requests: each route's Rack app answers its own name.
RSpec.describe "Rails fidelity" do
  def self.answer(name)
    ->(_env) { [200, { "Content-Type" => "text/plain" }, [name]] }
  end

  # What Rails serves: the answering route's name, :bad_request (Rails' 400 for parameters that
  # are not UTF-8) or nil (404 with X-Cascade: pass).
  def served(route_set, method, path, host: "www.example.com")
    env = Rack::MockRequest.env_for("/", "REQUEST_METHOD" => method, "HTTP_HOST" => host)
    env["PATH_INFO"] = path
    status, headers, body = route_set.call(env)
    text = +""
    body.each { |part| text << part }
    status == 404 && headers["X-Cascade"] == "pass" ? nil : text
  rescue ActionController::BadRequest
    :bad_request
  end

  # The same question asked of the gem: the route's name, :bad_request or nil.
  def ours(classifier, method, path)
    classifier.recognize(method, path)&.route&.name
  rescue Gitlab::Cells::Learn::InvalidRequestError => e
    raise unless e.message.include?("Rails answers 400")

    :bad_request
  end

  describe "HEAD with request conditions" do
    let(:route_set) do
      spec = self.class
      set = ActionDispatch::Routing::RouteSet.new
      set.draw do
        match "/x", via: :head, to: spec.answer("head_admin"), as: "head_admin", constraints: { subdomain: "admin" }
        get "/x", to: spec.answer("get_x"), as: "get_x"
        match "/y", via: :head, to: spec.answer("head_lambda"), as: "head_lambda", constraints: ->(req) { req.subdomain == "admin" }
        get "/y", to: spec.answer("get_y"), as: "get_y"
        match "/z", via: :head, to: spec.answer("head_both"), as: "head_both", constraints: { subdomain: /admin|www/ }
        get "/z", to: spec.answer("get_z"), as: "get_z"
      end
      set
    end

    it "chooses the routes drawn for HEAD only when their request conditions hold, as Journey's match_head_routes" do
      %w[www.example.com admin.example.com api.example.com].each do |host|
        classifier = Gitlab::Cells::Learn::Classifier.from_rails(route_set, constraints: Gitlab::Cells::Learn::RailsConstraints.new(route_set, host: host))
        %w[/x /y /z].each do |path|
          %w[HEAD GET].each do |method|
            rails = served(route_set, method, path, host: host)
            expect(ours(classifier, method, path)).to eq(rails), "#{method} #{host}#{path}: Rails serves #{rails.inspect}"
          end
        end
      end
    end

    it "marks the routes with request conditions in the extracted table" do
      rows = Gitlab::Cells::Learn::RailsRoutes.extract(route_set)
      expect(rows.map { |r| r["request_conditions"] }).to eq([true, nil, nil, nil, true, nil])
    end

    it "asks a hand-written block the whole question when it cannot tell conditions apart" do
      classifier = Gitlab::Cells::Learn::Classifier.from_rails(route_set)
      expect(classifier.recognize("HEAD", "/x") { false }.route.name).to eq("get_x")
      expect(classifier.recognize("HEAD", "/x") { true }.route.name).to eq("head_admin")
    end
  end

  describe "paths that are not valid UTF-8" do
    let(:route_set) do
      spec = self.class
      set = ActionDispatch::Routing::RouteSet.new
      set.draw do
        get "/p/:id", to: spec.answer("p"), as: "p"
        get "/files/*path", to: spec.answer("files"), as: "files"
        get "/lit/:id", to: spec.answer("lit"), as: "lit", constraints: { id: /[a-z]+/ }
      end
      set
    end

    let(:classifier) { Gitlab::Cells::Learn::Classifier.from_rails(route_set) }

    paths = ["/p/abc", "/p/%FF", "/p/\xFF".b, "/p/%C3%A9", "/p/\xC3\xA9".b, "/p/%c3%a9", "/files/a/%FE/b", "/files/a/\xFE".b,
             "/nothing/\xFF".b, "/nothing/%FF", "/lit/\xFF".b, "/lit/abc%FF"]

    it "answers as Rails serves them: 400 for a route whose parameter is not UTF-8, else the route or none" do
      paths.each do |path|
        expect(ours(classifier, "GET", path)).to eq(served(route_set, "GET", path)), path.inspect
      end
    end

    it "gives classify the same behaviour as recognize" do
      paths.each do |path|
        case ours(classifier, "GET", path)
        when :bad_request
          expect { classifier.learn("GET", path) }.to raise_error(Gitlab::Cells::Learn::InvalidRequestError, /Rails answers 400/)
        when nil
          result = classifier.learn("GET", path)
          expect([result.source, result.reason, result.cacheable?]).to eq([:default, :no_route, false])
          expect(result.path).to be_valid_encoding
        else
          expect(classifier.learn("GET", path).route&.name).to eq(classifier.recognize("GET", path).route.name)
        end
      end
    end

    it "names the invalid bytes of an unrouted path percent-encoded" do
      expect(classifier.learn("GET", "/nothing/\xFF\xC3\xA9".b).path).to eq("/nothing/%FFé")
    end
  end

  describe "mounted Rack apps (X-Cascade: pass)" do
    let(:route_set) do
      spec = self.class
      cascading = ->(env) { env["PATH_INFO"].start_with?("/mine") ? [200, {}, ["monitor"]] : [404, { "X-Cascade" => "pass" }, []] }
      set = ActionDispatch::Routing::RouteSet.new
      set.draw do
        mount cascading, at: "/-/monitor", as: "monitor"
        get "/-/monitor/*rest", to: spec.answer("after_mount"), as: "after_mount"
      end
      set
    end

    it "asks the constraint host for a mount, and falls through to later routes when it declines" do
      mounts = ->(_route, _params, req) { req.path_info.start_with?("/-/monitor/mine") }
      classifier = Gitlab::Cells::Learn::Classifier.from_rails(route_set, constraints: Gitlab::Cells::Learn::RailsConstraints.new(route_set, mounts: mounts))
      %w[/-/monitor/mine /-/monitor/other].each do |path|
        rails = served(route_set, "GET", path)
        expect(ours(classifier, "GET", path)).to eq(rails == "monitor" ? "monitor" : rails), path
      end
    end
  end
end
