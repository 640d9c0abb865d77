# frozen_string_literal: true

require "open3"
require "rack/mock"

# The learn answer is decided once, in the core (`LearnResponse::decide`): the gem's Endpoint and
# `cells-learn learn` must write the same JSON for every kind of answer — a claimed entity, an
# entity no cell claims, fixed paths, unknown routes — field for field.
RSpec.describe "one learn answer for the Endpoint and the CLI" do
  cli = File.expand_path("../target/release/cells-learn", __dir__)
  routes = File.join(CORPUS_DIR, "gitlabish-routes.json")
  directory = { "gitlab-org" => "cell_us0", "eu-corp" => "cell_eu0" }

  let(:endpoint) do
    classifier = Gitlab::Cells::Learn::Classifier.new(routes: File.read(routes))
    resolver = ->(entity) { directory.find { |k, _| entity.key == k || entity.key.start_with?("#{k}/") }&.last }
    Gitlab::Cells::Learn::Endpoint.new(classifier: classifier, resolver: resolver)
  end

  def endpoint_body(method, path)
    query = Rack::Utils.build_query("method" => method, "path_info" => path)
    status, _headers, body = endpoint.call(Rack::MockRequest.env_for("/api/v4/cells/learn?#{query}"))
    expect(status).to eq(200)
    body.join
  end

  def cli_body(cli, routes, directory, method, path)
    resolve = directory.flat_map { |k, c| ["--resolve", "#{k}=#{c}"] }
    out, err, status = Open3.capture3(cli, "learn", "--routes", routes, *resolve, method, path)
    expect(status).to be_success, err
    JSON.parse(out).fetch("response")
  end

  before { skip "build target/release/cells-learn first (script/test does)" unless File.executable?(cli) }

  {
    "a claimed project" => ["GET", "/gitlab-org/gitlab/-/issues", "routable"],
    "an entity no cell claims" => ["GET", "/nobody/nothing/-/issues", "routable"],
    "a fixed exact path" => ["GET", "/-/profile", "fixed"],
    "the root, never cached" => ["GET", "/", "fixed"],
    "an unknown route" => ["GET", "/api/v4/unknown", "default"]
  }.each do |what, (method, path, source)|
    it "writes the same JSON for #{what} (#{method} #{path})" do
      body = endpoint_body(method, path)
      expect(JSON.parse(body)["source"]).to eq(source)
      expect(JSON.parse(body)).to eq(cli_body(cli, routes, directory, method, path))
      expect(body).to start_with('{"path":'), "the seed's field order: path, cell, source, then exact and cacheable"
    end
  end

  it "keeps an unclaimed entity routable, on the default cell, uncached" do
    expect(JSON.parse(endpoint_body("GET", "/nobody/nothing"))).to eq(
      "path" => "/nobody/nothing", "cell" => endpoint.default_cell, "source" => "routable", "cacheable" => false
    )
  end
end
