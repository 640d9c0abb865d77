# frozen_string_literal: true

# Grape 1.6's own routing specs, ported (spec/support/grape_suite_apis.rb): every example's API is
# read with Classifier.from_grape, and for every path the Grape example requests, under every verb,
# plus the near-misses RoutesRequests generates from the API's routes, the gem must pick the route
# Grape's router picks, with the same parameters; where Grape answers 405 or has no route, the gem
# has none either; where Grape answers OPTIONS itself, the gem picks that pattern's OPTIONS route.
RSpec.describe "Grape's own routing specs, ported" do
  verbs = %w[GET HEAD POST PUT PATCH DELETE OPTIONS]
  totals = { apis: 0, compiled: 0, requests: 0, agreed: 0 }

  after(:context) do
    puts format("\n  [grape suite port] %<apis>d apis, %<compiled>d compiled; %<requests>d requests, %<agreed>d agree with Grape", totals)
  end

  GrapeSuiteApis.all.each do |c|
    it "#{c.source} #{c.name}" do
      pending("known disagreement: #{c.known_disagreement}") if c.known_disagreement
      totals[:apis] += 1
      classifier = Gitlab::Cells::Learn::Classifier.from_grape(c.api)
      totals[:compiled] += 1
      requests = verbs.product(c.requests)
      requests += RoutesRequests.for_table(Gitlab::Cells::Learn::GrapeRoutes.extract(c.api)).map { |r| [r.method, r.path] }
      disagreements = requests.uniq.filter_map do |method, path|
        totals[:requests] += 1
        answer = GrapeOracle.ask(c.api, method, path)
        found = GrapeOracle.disagreement(method, path, answer, classifier.recognize(method, path))
        totals[:agreed] += 1 unless found
        found
      end
      expect(disagreements).to be_empty, disagreements.first(15).join("\n")
    end
  end
end
