# frozen_string_literal: true

require "rails"
require "action_dispatch"
require "set"

# constraints: :rails — routes with dynamic constraints decided by their own Rails objects — checked
# against Rails' router serving the same requests (each route's Rack app answers its own name).

# GitLab's GroupUrlConstrainer, in miniature: reads request.params and looks the group up.
class RailsConstraintsSpecGroups
  EXISTING = Set["gitlab-org", "acme"].freeze

  def matches?(request)
    EXISTING.include?(request.params[:id])
  end
end

RSpec.describe Gitlab::Cells::Learn::RailsConstraints do
  def self.answer(name)
    ->(_env) { [200, { "Content-Type" => "text/plain" }, [name]] }
  end

  let(:route_set) do
    spec = self.class
    set = ActionDispatch::Routing::RouteSet.new
    set.draw do
      get "/:id", to: spec.answer("group"), as: "group", constraints: RailsConstraintsSpecGroups.new
      get "/:id", to: spec.answer("project_lambda"), as: "project_lambda", constraints: ->(req) { req.params[:id].start_with?("p-") }
      get "/:id", to: spec.answer("json_only"), as: "json_only", constraints: ->(req) { req.format == :json }
      get "/:id", to: spec.answer("never"), as: "never", constraints: -> { false }
      get "/:id", to: spec.answer("user"), as: "user"
      get "/admin/x", to: spec.answer("admin_subdomain"), as: "admin_subdomain", constraints: { subdomain: "admin" }
      get "/admin/x", to: spec.answer("admin"), as: "admin"
      mount spec.answer("monitor"), at: "/-/monitor", as: "monitor"
      get "/-/monitor/status", to: spec.answer("status"), as: "status"
    end
    set
  end

  # The route Rails serves: the body names it.
  def rails_serves(set, method, path, host)
    env = Rack::MockRequest.env_for("http://#{host}#{path}", method: method)
    status, _headers, body = set.call(env)
    text = +""
    body.each { |chunk| text << chunk }
    status == 404 ? nil : text
  end

  paths = %w[/gitlab-org /acme /p-web /p-web.json /alice.json /alice /nobody.xml /admin/x /admin/x.json /-/monitor/status]

  %w[www.example.com admin.example.com].each do |host|
    it "names the route Rails serves for each request to #{host}" do
      classifier = Gitlab::Cells::Learn::Classifier.from_rails(route_set,
                                                               constraints: described_class.new(route_set, host: host))
      paths.product(%w[GET HEAD]).each do |path, method|
        expected = rails_serves(route_set, method, path, host)
        expect(classifier.recognize(method, path)&.route&.name).to eq(expected), "#{method} #{host}#{path}"
      end
      # The learn answer uses the same decision.
      expect(classifier.learn("GET", "/gitlab-org").route.name).to eq("group")
    end
  end

  it "asks mounted Rack apps through mounts:, since only running them would tell" do
    refusing = described_class.new(route_set, mounts: ->(route, _params, req) { route.name != "monitor" || req.path_info != "/-/monitor/status" })
    classifier = Gitlab::Cells::Learn::Classifier.from_rails(route_set, constraints: refusing)
    expect(classifier.recognize("GET", "/-/monitor/status").route.name).to eq("status")
    expect(classifier.recognize("GET", "/-/monitor/other").route.name).to eq("monitor")
    expect(Gitlab::Cells::Learn::Classifier.from_rails(route_set, constraints: :rails).recognize("GET", "/-/monitor/status").route.name)
      .to eq("monitor")
  end

  it "gives way to a block, and without constraints every dynamic route holds" do
    rails = Gitlab::Cells::Learn::Classifier.from_rails(route_set, constraints: :rails)
    expect(rails.constraints).to be_a(described_class)
    expect(rails.recognize("GET", "/nobody").route.name).to eq("user")
    expect(rails.recognize("GET", "/nobody") { |route, _| route.name == "never" }.route.name).to eq("never")
    expect(Gitlab::Cells::Learn::Classifier.from_rails(route_set).recognize("GET", "/nobody").route.name).to eq("group")
  end

  it "refuses what it cannot use" do
    expect { Gitlab::Cells::Learn::Classifier.from_rails(route_set, constraints: :grape) }.to raise_error(ArgumentError, /:rails, a RailsConstraints or nil/)
    expect { described_class.new(route_set, host: nil) }.to raise_error(ArgumentError, /host must be a String/)
    expect { described_class.new(route_set, mounts: "yes") }.to raise_error(ArgumentError, /mounts must be/)
    other = Gitlab::Cells::Learn::Classifier.new(routes: Array.new(20) { |i| { "verb" => "GET", "path" => "/r#{i}", "dynamic_constraints" => true } },
                                                 constraints: described_class.new(route_set))
    expect { other.recognize("GET", "/r15") }.to raise_error(Gitlab::Cells::Learn::Error, /route 15 is not in the route set/)
  end

  it "turns a constraint's exception into a 503 from the learn endpoint" do
    spec = self.class
    set = ActionDispatch::Routing::RouteSet.new
    set.draw { get "/:id", to: spec.answer("group"), as: "group", constraints: ->(_req) { raise IOError, "database down" } }
    classifier = Gitlab::Cells::Learn::Classifier.from_rails(set, constraints: :rails)
    expect { classifier.recognize("GET", "/g") }.to raise_error(Gitlab::Cells::Learn::Endpoint::ConstraintFailure) { |e| expect(e.original).to be_a(IOError) }
    endpoint = Gitlab::Cells::Learn::Endpoint.new(classifier: classifier, resolver: ->(_) { "cell_1" })
    status, _headers, body = endpoint.call(Rack::MockRequest.env_for("/?method=GET&path_info=/g"))
    expect(status).to eq(503)
    expect(JSON.parse(body.join)).to include("error" => "constraint_failed")
  end
end
