# frozen_string_literal: true

require "rack/test"
require "json"

# Mixed versions (issue 16 §4): learn answers and the health answer carry the cell's route table.
RSpec.describe Gitlab::Cells::Learn::RouteTable do
  include Rack::Test::Methods

  let(:plain) { Gitlab::Cells::Learn::Classifier.new(routes: File.read(File.join(CORPUS_DIR, "gitlabish-routes.json"))) }
  # A classifier with a digest, as RailsClassifier has one.
  let(:digest) { "ab" * 32 }
  let(:classifier) do
    d = digest
    plain.dup.tap { |c| c.define_singleton_method(:digest) { d } }
  end
  let(:resolver) { ->(_entity) { "cell_1" } }

  describe "the learn answer" do
    it "carries the digest and version, written by the native core" do
      endpoint = Gitlab::Cells::Learn::Endpoint.new(classifier: classifier, resolver: resolver, routes_version: 1_764_000_000)
      json = endpoint.learn_json("GET", "/gitlab-org/gitlab-test/-/issues")
      expect(json).to eq('{"path":"/gitlab-org/gitlab-test","cell":"cell_1","source":"routable",' \
                         "\"routes_digest\":\"#{digest}\",\"routes_version\":1764000000}")
    end

    it "leaves both out when the cell knows neither, as before" do
      endpoint = Gitlab::Cells::Learn::Endpoint.new(classifier: plain, resolver: resolver)
      expect(endpoint.learn("GET", "/gitlab-org/gitlab-test")).to eq("path" => "/gitlab-org/gitlab-test", "cell" => "cell_1",
                                                                     "source" => "routable")
    end

    it "refuses a version the router could not order" do
      [-1, 2**63, 1.5, "v2", ""].each do |bad|
        expect { Gitlab::Cells::Learn::Endpoint.new(classifier: plain, resolver: resolver, routes_version: bad) }
          .to raise_error(ArgumentError, /routes_version must be an Integer from 0/), bad.inspect
      end
      expect(described_class.new(plain, "42").version).to eq(42)
    end
  end

  describe "the health answer" do
    let(:inner) { ->(_env) { [200, { "content-type" => "application/json" }, ['{"status":"ok"}']] } }
    let(:app) do
      Rack::Lint.new(Gitlab::Cells::Learn::Middleware.new(Rack::Lint.new(inner), classifier: classifier, resolver: resolver,
                                                                                 cell: "cell_1", routes_version: 7))
    end

    it "reports the route table on the readiness path only" do
      get "/-/readiness"
      expect(last_response.status).to eq(200)
      expect(last_response.headers[described_class::VERSION_HEADER]).to eq("7")
      expect(last_response.headers[described_class::DIGEST_HEADER]).to eq(digest)
      get "/gitlab-org/gitlab-test"
      expect(last_response.headers[described_class::VERSION_HEADER]).to be_nil
    end
  end
end
